import { describe, expect, it } from "vitest";
import { encodeWav } from "../../src/audio/wav";
import { computePeaks, decodeWav, loudestPeak } from "../../src/audio/waveform";

/** A RIFF/WAVE file with the given format fields and raw data bytes, and an extra chunk before "data". */
function wavBytes(format: { code: number; channels: number; rateHz: number; bits: number }, data: Uint8Array): ArrayBuffer {
  const extra = new TextEncoder().encode("LIST\x03\x00\x00\x00abc\x00"); // odd size: padded to an even length
  const buffer = new ArrayBuffer(12 + 24 + extra.length + 8 + data.length);
  const view = new DataView(buffer);
  const ascii = (offset: number, text: string) => [...text].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
  ascii(0, "RIFF");
  view.setUint32(4, buffer.byteLength - 8, true);
  ascii(8, "WAVE");
  ascii(12, "fmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, format.code, true);
  view.setUint16(22, format.channels, true);
  view.setUint32(24, format.rateHz, true);
  view.setUint32(28, (format.rateHz * format.channels * format.bits) / 8, true);
  view.setUint16(32, (format.channels * format.bits) / 8, true);
  view.setUint16(34, format.bits, true);
  new Uint8Array(buffer, 36, extra.length).set(extra);
  const data0 = 36 + extra.length;
  ascii(data0, "data");
  view.setUint32(data0 + 4, data.length, true);
  new Uint8Array(buffer, data0 + 8).set(data);
  return buffer;
}

describe("decodeWav", () => {
  it("reads the 16-bit mono PCM the service writes", async () => {
    const samples = Float32Array.from([0, 0.5, -0.5, 1, -1]);
    const decoded = decodeWav(await encodeWav(samples, 24_000).arrayBuffer());
    expect(decoded.sampleRateHz).toBe(24_000);
    expect([...decoded.samples].map((x) => Number(x.toFixed(3)))).toEqual([0, 0.5, -0.5, 1, -1]);
  });

  it("skips unknown chunks, averages channels and reads 8-bit, 24-bit and float samples", () => {
    const stereo8 = decodeWav(wavBytes({ code: 1, channels: 2, rateHz: 8000, bits: 8 }, Uint8Array.from([255, 128, 0, 0])));
    expect(stereo8.sampleRateHz).toBe(8000);
    expect([...stereo8.samples].map((x) => Number(x.toFixed(3)))).toEqual([0.496, -1]);

    const pcm24 = decodeWav(wavBytes({ code: 1, channels: 1, rateHz: 48_000, bits: 24 }, Uint8Array.from([0, 0, 0xc0, 0xff, 0xff, 0x3f])));
    expect([...pcm24.samples].map((x) => Number(x.toFixed(3)))).toEqual([-0.5, 0.5]);

    const float = new Uint8Array(new Float32Array([0.25, -0.75]).buffer);
    expect([...decodeWav(wavBytes({ code: 3, channels: 1, rateHz: 24_000, bits: 32 }, float)).samples]).toEqual([0.25, -0.75]);
  });

  it("refuses what it cannot read", () => {
    expect(() => decodeWav(new TextEncoder().encode("not a wav file at all").buffer)).toThrow(/not a RIFF\/WAVE/);
    expect(() => decodeWav(wavBytes({ code: 2, channels: 1, rateHz: 8000, bits: 4 }, new Uint8Array(4)))).toThrow(
      /unsupported WAV encoding/,
    );
  });
});

describe("computePeaks", () => {
  it("keeps the lowest and highest sample of each column", () => {
    const peaks = computePeaks(Float32Array.from([0.1, -0.2, 0.3, 0.4, -0.9, 0.5, 0, 0]), 4);
    expect([...peaks.min].map((x) => Number(x.toFixed(2)))).toEqual([-0.2, 0.3, -0.9, 0]);
    expect([...peaks.max].map((x) => Number(x.toFixed(2)))).toEqual([0.1, 0.4, 0.5, 0]);
    expect(loudestPeak(peaks)).toBeCloseTo(0.9);
  });

  it("covers every sample once when the columns do not divide the samples evenly", () => {
    const samples = Float32Array.from({ length: 10 }, (_, i) => i / 10);
    const peaks = computePeaks(samples, 3);
    expect([...peaks.min].map((x) => Number(x.toFixed(1)))).toEqual([0, 0.3, 0.6]);
    expect([...peaks.max].map((x) => Number(x.toFixed(1)))).toEqual([0.2, 0.5, 0.9]);
  });

  it("lets neighbouring columns share a sample when there are fewer samples than columns", () => {
    const peaks = computePeaks(Float32Array.from([0.5, -0.5]), 4);
    expect([...peaks.max]).toEqual([0.5, 0.5, -0.5, -0.5]);
  });

  it("gives flat zeros for no samples and nothing for no columns", () => {
    const empty = computePeaks(new Float32Array(0), 3);
    expect([...empty.min, ...empty.max]).toEqual([0, 0, 0, 0, 0, 0]);
    expect(loudestPeak(empty)).toBe(0);
    expect(computePeaks(Float32Array.from([1]), 0).max.length).toBe(0);
  });
});
