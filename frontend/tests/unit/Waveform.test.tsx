import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { encodeWav } from "../../src/audio/wav";
import { Waveform } from "../../src/components/Waveform";

const SAMPLE_RATE_HZ = 24_000;

/** 2 s: a quiet first second, a loud second one. */
function clip(): Blob {
  const samples = Float32Array.from({ length: 2 * SAMPLE_RATE_HZ }, (_, i) =>
    (i < SAMPLE_RATE_HZ ? 0.1 : 0.8) * Math.sin(i / 10),
  );
  return encodeWav(samples, SAMPLE_RATE_HZ);
}

/** A stand-in for the <audio> element: jsdom plays nothing. */
function fakePlayer() {
  const listeners = new Map<string, () => void>();
  return {
    currentTime: 0,
    duration: 2,
    paused: true,
    addEventListener: (type: string, listener: () => void) => listeners.set(type, listener),
    removeEventListener: (type: string) => listeners.delete(type),
    emit: (type: string) => listeners.get(type)?.(),
  };
}

/** jsdom has no layout and no 2D canvas: give the canvas a width and record what is painted. */
function fakeCanvas(cssWidth: number) {
  const rects: { x: number; y: number; w: number; h: number; color: string }[] = [];
  const context = {
    fillStyle: "",
    clearRect: () => rects.splice(0),
    fillRect(x: number, y: number, w: number, h: number) {
      rects.push({ x, y, w, h, color: String(this.fillStyle) });
    },
  };
  vi.spyOn(HTMLCanvasElement.prototype, "clientWidth", "get").mockReturnValue(cssWidth);
  vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockReturnValue(context as unknown as CanvasRenderingContext2D);
  vi.spyOn(HTMLCanvasElement.prototype, "getBoundingClientRect").mockReturnValue(new DOMRect(10, 0, cssWidth, 72));
  return rects;
}

describe("Waveform", () => {
  it("draws one column per pixel, louder where the audio is louder, with the playhead", async () => {
    const rects = fakeCanvas(100);
    const player = fakePlayer();
    render(<Waveform audio={clip()} player={player as unknown as HTMLAudioElement} />);

    const canvas = await screen.findByRole("slider", { name: "Waveform: click to seek" });
    await waitFor(() => expect(rects.length).toBe(101)); // 100 columns and the playhead
    expect((canvas as HTMLCanvasElement).width).toBe(100);
    const columns = rects.slice(0, 100);
    const height = (column: number) => columns[column]!.h;
    expect(height(75)).toBeGreaterThan(4 * height(25)); // the loud second half stands taller
    expect(columns.every((rect) => rect.color === "#b4b4b4")).toBe(true); // nothing played yet
    expect(rects[100]).toMatchObject({ x: 0, color: "#1a5fd0" });

    player.currentTime = 1;
    player.emit("timeupdate");
    expect(rects.filter((rect) => rect.color === "#111")).toHaveLength(50); // the first half is played
    expect(rects[100]).toMatchObject({ x: 50 });
  });

  it("seeks the player where it is clicked, and with the arrow keys", async () => {
    fakeCanvas(200);
    const player = fakePlayer();
    render(<Waveform audio={clip()} player={player as unknown as HTMLAudioElement} />);
    const canvas = await screen.findByRole("slider");

    fireEvent.pointerDown(canvas, { clientX: 10 + 150 }); // three quarters along the 200 px canvas
    expect(player.currentTime).toBeCloseTo(1.5);
    expect(canvas.getAttribute("aria-valuenow")).toBe("1.5");
    fireEvent.keyDown(canvas, { key: "ArrowLeft" });
    expect(player.currentTime).toBeCloseTo(1.4);
    fireEvent.keyDown(canvas, { key: "End" });
    expect(player.currentTime).toBe(2);
  });

  it("draws nothing for bytes it cannot read; the player stays", async () => {
    fakeCanvas(100);
    render(<Waveform audio={new Blob(["not audio"])} player={null} />);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(screen.queryByRole("slider")).toBeNull();
  });
});
