// Microphone recording: MediaRecorder captures, then the take is turned into 24 kHz WAV for upload.
import { useCallback, useEffect, useRef, useState } from "react";
import { toModelWav } from "./wav";

export type RecorderState =
  | { kind: "idle" }
  | { kind: "recording"; elapsedS: number }
  | { kind: "processing" }
  | { kind: "error"; message: string };

export interface Recording {
  wav: Blob;
  durationS: number;
}

/** Record from the microphone; stops by itself after `maxS` seconds and hands the WAV to `onRecorded`. */
export function useRecorder(maxS: number, onRecorded: (recording: Recording) => void) {
  const [state, setState] = useState<RecorderState>({ kind: "idle" });
  const recorderRef = useRef<MediaRecorder | null>(null);
  const timerRef = useRef<number | null>(null);
  const onRecordedRef = useRef(onRecorded);
  useEffect(() => {
    onRecordedRef.current = onRecorded;
  });

  const clearTimer = () => {
    if (timerRef.current !== null) window.clearInterval(timerRef.current);
    timerRef.current = null;
  };

  const stop = useCallback(() => {
    clearTimer();
    if (recorderRef.current?.state === "recording") recorderRef.current.stop();
  }, []);

  const start = useCallback(async () => {
    if (!navigator.mediaDevices?.getUserMedia || typeof MediaRecorder === "undefined") {
      setState({ kind: "error", message: "This browser cannot record audio; upload a file instead." });
      return;
    }
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch {
      setState({ kind: "error", message: "Microphone access was refused; allow it in the browser, or upload a file." });
      return;
    }
    const recorder = new MediaRecorder(stream);
    const chunks: Blob[] = [];
    recorder.ondataavailable = (event) => chunks.push(event.data);
    recorder.onstop = () => {
      stream.getTracks().forEach((track) => track.stop());
      setState({ kind: "processing" });
      toModelWav(new Blob(chunks, { type: recorder.mimeType }))
        .then((recording) => {
          setState({ kind: "idle" });
          onRecordedRef.current(recording);
        })
        .catch(() => setState({ kind: "error", message: "The recording could not be read; try again." }));
    };
    recorderRef.current = recorder;
    recorder.start();
    const startedAt = performance.now();
    setState({ kind: "recording", elapsedS: 0 });
    timerRef.current = window.setInterval(() => {
      const elapsedS = (performance.now() - startedAt) / 1000;
      if (elapsedS >= maxS) stop();
      else setState({ kind: "recording", elapsedS });
    }, 200);
  }, [maxS, stop]);

  useEffect(() => stop, [stop]);

  return { state, start, stop };
}
