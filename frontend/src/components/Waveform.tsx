import { useEffect, useMemo, useRef, useState, type KeyboardEvent, type PointerEvent } from "react";
import { computePeaks, decodeWav, loudestPeak, type Peaks, type PcmAudio } from "../audio/waveform";

interface WaveformProps {
  /** The WAV file the service returned. */
  audio: Blob;
  /** The <audio> element that plays it: the playhead follows it and a click seeks it. */
  player: HTMLAudioElement | null;
}

const PLAYED = "#111";
const UNPLAYED = "#b4b4b4";
const PLAYHEAD = "#1a5fd0";
// Below this the clip is silence: drawn flat rather than blown up to full height.
const SILENCE_PEAK = 1e-4;

/** The clip's waveform (min/max per pixel column, scaled to its loudest peak) with a playhead; click or use
 * the arrow keys to seek. Draws nothing when the bytes are not a WAV file it can read. */
export function Waveform({ audio, player }: WaveformProps) {
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const [pcm, setPcm] = useState<PcmAudio | null>(null);
  const [columns, setColumns] = useState(0);
  const [positionS, setPositionS] = useState(0);

  useEffect(() => {
    let current = true;
    setPcm(null);
    audio.arrayBuffer().then(
      (bytes) => {
        if (!current) return;
        try {
          setPcm(decodeWav(bytes));
        } catch {
          setPcm(null); // not a WAV this page can read: the player alone remains
        }
      },
      () => undefined,
    );
    return () => {
      current = false;
    };
  }, [audio]);

  // One column per device pixel, re-measured when the layout changes the canvas's width.
  useEffect(() => {
    const canvas = canvasRef.current;
    if (!canvas) return;
    const measure = () => setColumns(Math.round(canvas.clientWidth * (window.devicePixelRatio || 1)));
    measure();
    if (typeof ResizeObserver === "undefined") return;
    const observer = new ResizeObserver(measure);
    observer.observe(canvas);
    return () => observer.disconnect();
  }, [pcm]);

  const peaks = useMemo(() => (pcm && columns > 0 ? computePeaks(pcm.samples, columns) : null), [pcm, columns]);
  const durationS = pcm ? pcm.samples.length / pcm.sampleRateHz : 0;
  // The player's own length once it knows it; the samples' until then (the same for a WAV file).
  const lengthS = () => (player && Number.isFinite(player.duration) && player.duration > 0 ? player.duration : durationS);

  // Redraw on every frame while playing, and once after each seek, pause or new drawing.
  useEffect(() => {
    const canvas = canvasRef.current;
    if (!canvas || !peaks) return;
    const render = () => {
      const at = player?.currentTime ?? 0;
      drawWaveform(canvas, peaks, lengthS() > 0 ? at / lengthS() : 0);
      return at;
    };
    render();
    if (!player) return;
    let frame = 0;
    const tick = () => {
      render();
      frame = requestAnimationFrame(tick);
    };
    const onPlay = () => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(tick);
    };
    const onStop = () => {
      cancelAnimationFrame(frame);
      setPositionS(render());
    };
    const onMove = () => setPositionS(render());
    player.addEventListener("play", onPlay);
    player.addEventListener("pause", onStop);
    player.addEventListener("ended", onStop);
    player.addEventListener("seeked", onMove);
    player.addEventListener("timeupdate", onMove);
    player.addEventListener("loadedmetadata", onMove);
    if (!player.paused) onPlay();
    return () => {
      cancelAnimationFrame(frame);
      player.removeEventListener("play", onPlay);
      player.removeEventListener("pause", onStop);
      player.removeEventListener("ended", onStop);
      player.removeEventListener("seeked", onMove);
      player.removeEventListener("timeupdate", onMove);
      player.removeEventListener("loadedmetadata", onMove);
    };
  }, [peaks, player, durationS]);

  const seekTo = (seconds: number) => {
    if (!player) return;
    player.currentTime = Math.min(Math.max(seconds, 0), lengthS());
    setPositionS(player.currentTime);
  };
  const onPointerDown = (event: PointerEvent<HTMLCanvasElement>) => {
    const box = event.currentTarget.getBoundingClientRect();
    if (box.width > 0) seekTo(((event.clientX - box.left) / box.width) * lengthS());
  };
  const onKeyDown = (event: KeyboardEvent<HTMLCanvasElement>) => {
    const stepS = lengthS() / 20;
    const target = { ArrowLeft: positionS - stepS, ArrowRight: positionS + stepS, Home: 0, End: lengthS() }[event.key];
    if (target === undefined) return;
    event.preventDefault();
    seekTo(target);
  };

  if (!pcm) return null;
  return (
    <canvas
      ref={canvasRef}
      className="waveform"
      data-testid="result-waveform"
      width={Math.max(columns, 1)}
      height={Math.round(72 * (typeof window === "undefined" ? 1 : window.devicePixelRatio || 1))}
      role="slider"
      tabIndex={0}
      aria-label="Waveform: click to seek"
      aria-valuemin={0}
      aria-valuemax={Number(durationS.toFixed(2))}
      aria-valuenow={Number(positionS.toFixed(2))}
      aria-valuetext={`${positionS.toFixed(1)} s of ${durationS.toFixed(1)} s`}
      onPointerDown={onPointerDown}
      onKeyDown={onKeyDown}
    />
  );
}

/** Paint the peaks (one column per canvas pixel), the part already played darker, and the playhead. */
function drawWaveform(canvas: HTMLCanvasElement, peaks: Peaks, progress: number) {
  const context = canvas.getContext("2d");
  if (!context) return;
  const { width, height } = canvas;
  const middle = height / 2;
  const loudest = loudestPeak(peaks);
  const scale = loudest > SILENCE_PEAK ? (0.95 * middle) / loudest : middle;
  const playedColumns = Math.round(Math.min(Math.max(progress, 0), 1) * width);
  context.clearRect(0, 0, width, height);
  for (let column = 0; column < peaks.max.length; column++) {
    const top = middle - (peaks.max[column] ?? 0) * scale;
    const bottom = middle - (peaks.min[column] ?? 0) * scale;
    context.fillStyle = column < playedColumns ? PLAYED : UNPLAYED;
    context.fillRect(column, top, 1, Math.max(bottom - top, 1)); // silence still shows as a line
  }
  const lineWidth = Math.max(1, Math.round(window.devicePixelRatio || 1));
  context.fillStyle = PLAYHEAD;
  context.fillRect(Math.min(playedColumns, width - lineWidth), 0, lineWidth, height);
}
