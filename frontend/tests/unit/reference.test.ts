import { describe, expect, it } from "vitest";
import { checkReferenceDuration, checkReferenceFile, formatBytes } from "../../src/audio/reference";
import { encodeWav } from "../../src/audio/wav";

const limits = { maxUploadBytes: 2 * 1024 * 1024, minReferenceS: 0.5, maxReferenceS: 30 };

describe("checkReferenceFile", () => {
  it("accepts an audio file within the size limit", () => {
    expect(checkReferenceFile(new File(["RIFF"], "voice.wav", { type: "audio/wav" }), limits)).toBeNull();
    // Browsers often give no MIME type; the extension decides then.
    expect(checkReferenceFile(new File(["fLaC"], "voice.FLAC", { type: "" }), limits)).toBeNull();
  });

  it("refuses a file over the server's limit, naming both sizes", () => {
    const big = new File([new Uint8Array(limits.maxUploadBytes + 1)], "long.wav", { type: "audio/wav" });
    expect(checkReferenceFile(big, limits)).toBe("long.wav is 2 MiB; the limit is 2 MiB.");
    const bigger = new File([new Uint8Array(3 * 1024 * 1024)], "long.wav", { type: "audio/wav" });
    expect(checkReferenceFile(bigger, limits)).toBe("long.wav is 3 MiB; the limit is 2 MiB.");
  });

  it("refuses files that are not audio, and empty files", () => {
    expect(checkReferenceFile(new File(["hi"], "notes.txt", { type: "text/plain" }), limits)).toMatch(
      /not a supported audio file/,
    );
    expect(checkReferenceFile(new File([], "empty.wav", { type: "audio/wav" }), limits)).toBe("empty.wav is empty.");
  });
});

describe("checkReferenceDuration", () => {
  it("accepts lengths within the limits and names the limit otherwise", () => {
    expect(checkReferenceDuration(5, limits)).toBeNull();
    expect(checkReferenceDuration(0.2, limits)).toMatch(/at least 0.5 s/);
    expect(checkReferenceDuration(31, limits)).toMatch(/the limit is 30 s/);
  });
});

describe("formatBytes", () => {
  it("uses binary units as the limits are set", () => {
    expect([formatBytes(512), formatBytes(1536), formatBytes(2 * 1024 * 1024)]).toEqual([
      "512 bytes",
      "2 KiB",
      "2 MiB",
    ]);
  });
});

describe("encodeWav", () => {
  it("writes a 16-bit mono RIFF/WAVE file with the given rate and clipped samples", async () => {
    const wav = encodeWav(new Float32Array([0, 0.5, -1, 2]), 24_000);
    const view = new DataView(await wav.arrayBuffer());
    const ascii = (offset: number) =>
      String.fromCharCode(...[0, 1, 2, 3].map((i) => view.getUint8(offset + i)));
    expect([ascii(0), ascii(8), ascii(12), ascii(36)]).toEqual(["RIFF", "WAVE", "fmt ", "data"]);
    expect(view.getUint16(22, true)).toBe(1); // channels
    expect(view.getUint32(24, true)).toBe(24_000);
    expect(view.getUint16(34, true)).toBe(16);
    expect(view.getUint32(40, true)).toBe(8);
    expect([0, 1, 2, 3].map((i) => view.getInt16(44 + 2 * i, true))).toEqual([0, 16383, -32768, 32767]);
    expect(wav.type).toBe("audio/wav");
  });
});
