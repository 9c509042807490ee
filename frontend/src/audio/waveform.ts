// The result's waveform: its samples read straight from the WAV bytes the service returned (no AudioContext,
// so it also works where Web Audio is missing), then the lowest and highest sample per pixel column.

export interface PcmAudio {
  /** Mono samples in -1..1; the channels of a multi-channel file are averaged. */
  samples: Float32Array;
  sampleRateHz: number;
}

export interface Peaks {
  /** The lowest sample of each column. */
  min: Float32Array;
  /** The highest sample of each column. */
  max: Float32Array;
}

const PCM = 1;
const IEEE_FLOAT = 3;
const EXTENSIBLE = 0xfffe;

/** The samples of a RIFF/WAVE file holding 8-, 16-, 24- or 32-bit integer PCM or 32-bit float. */
export function decodeWav(bytes: ArrayBuffer): PcmAudio {
  const view = new DataView(bytes);
  const ascii = (offset: number) =>
    String.fromCharCode(view.getUint8(offset), view.getUint8(offset + 1), view.getUint8(offset + 2), view.getUint8(offset + 3));
  if (bytes.byteLength < 12 || ascii(0) !== "RIFF" || ascii(8) !== "WAVE") throw new Error("not a RIFF/WAVE file");

  let format: { code: number; channels: number; sampleRateHz: number; bitsPerSample: number } | null = null;
  let offset = 12;
  while (offset + 8 <= bytes.byteLength) {
    const id = ascii(offset);
    const size = view.getUint32(offset + 4, true);
    const body = offset + 8;
    if (id === "fmt " && size >= 16) {
      let code = view.getUint16(body, true);
      if (code === EXTENSIBLE && size >= 26) code = view.getUint16(body + 24, true); // the sub-format GUID's first two bytes
      format = {
        code,
        channels: view.getUint16(body + 2, true),
        sampleRateHz: view.getUint32(body + 4, true),
        bitsPerSample: view.getUint16(body + 14, true),
      };
    } else if (id === "data") {
      if (format === null) throw new Error("the WAV data comes before its format");
      // A writer that streams may leave the size at 0 or 0xFFFFFFFF: take what is there.
      const end = Math.min(body + size, bytes.byteLength);
      return { samples: readSamples(view, body, end, format), sampleRateHz: format.sampleRateHz };
    }
    offset = body + size + (size % 2); // chunks are padded to an even length
  }
  throw new Error("the WAV file has no data");
}

function readSamples(
  view: DataView,
  start: number,
  end: number,
  format: { code: number; channels: number; bitsPerSample: number },
): Float32Array {
  const { code, channels, bitsPerSample } = format;
  const bytesPerSample = bitsPerSample / 8;
  const read = sampleReader(view, code, bitsPerSample);
  if (read === null || channels < 1) {
    throw new Error(`unsupported WAV encoding (format ${code}, ${bitsPerSample} bits, ${channels} channels)`);
  }
  const frameBytes = bytesPerSample * channels;
  const frames = Math.floor((end - start) / frameBytes);
  const samples = new Float32Array(frames);
  for (let frame = 0; frame < frames; frame++) {
    let sum = 0;
    for (let channel = 0; channel < channels; channel++) sum += read(start + frame * frameBytes + channel * bytesPerSample);
    samples[frame] = sum / channels;
  }
  return samples;
}

function sampleReader(view: DataView, code: number, bits: number): ((at: number) => number) | null {
  if (code === IEEE_FLOAT && bits === 32) return (at) => view.getFloat32(at, true);
  if (code !== PCM) return null;
  switch (bits) {
    case 8:
      return (at) => (view.getUint8(at) - 128) / 128; // 8-bit PCM is unsigned
    case 16:
      return (at) => view.getInt16(at, true) / 0x8000;
    case 24:
      return (at) => ((view.getInt8(at + 2) << 16) | (view.getUint8(at + 1) << 8) | view.getUint8(at)) / 0x800000;
    case 32:
      return (at) => view.getInt32(at, true) / 0x80000000;
    default:
      return null;
  }
}

/** Split `samples` into `columns` slices of (nearly) equal length and keep each slice's lowest and highest
 * sample. With fewer samples than columns, neighbouring columns share a sample; no samples give flat zeros. */
export function computePeaks(samples: Float32Array, columns: number): Peaks {
  const count = Math.max(0, Math.floor(columns));
  const min = new Float32Array(count);
  const max = new Float32Array(count);
  const n = samples.length;
  if (n === 0) return { min, max };
  for (let column = 0; column < count; column++) {
    const start = Math.min(Math.floor((column * n) / count), n - 1);
    const end = Math.max(Math.floor(((column + 1) * n) / count), start + 1);
    let low = Infinity;
    let high = -Infinity;
    for (let i = start; i < end; i++) {
      const value = samples[i] ?? 0;
      if (value < low) low = value;
      if (value > high) high = value;
    }
    min[column] = low;
    max[column] = high;
  }
  return { min, max };
}

/** The largest absolute value among the peaks (0 when there are none). */
export function loudestPeak(peaks: Peaks): number {
  let loudest = 0;
  for (let i = 0; i < peaks.min.length; i++) {
    loudest = Math.max(loudest, Math.abs(peaks.min[i] ?? 0), Math.abs(peaks.max[i] ?? 0));
  }
  return loudest;
}
