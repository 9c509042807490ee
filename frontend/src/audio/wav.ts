// 16-bit PCM mono WAV encoding, and turning any browser-decodable recording into one.
//
// The microphone gives WebM/Opus in Chromium, which the service's decoder (libsndfile) does not read, so a
// recording is decoded by the browser, mixed to mono, resampled to the model's 24 kHz and sent as WAV.

export const MODEL_SAMPLE_RATE_HZ = 24_000;

/** A RIFF/WAVE file holding `samples` (-1..1, mono) as 16-bit PCM. */
export function encodeWav(samples: Float32Array, sampleRateHz: number): Blob {
  const dataBytes = samples.length * 2;
  const buffer = new ArrayBuffer(44 + dataBytes);
  const view = new DataView(buffer);
  const writeAscii = (offset: number, text: string) => {
    for (let i = 0; i < text.length; i++) view.setUint8(offset + i, text.charCodeAt(i));
  };
  writeAscii(0, "RIFF");
  view.setUint32(4, 36 + dataBytes, true);
  writeAscii(8, "WAVE");
  writeAscii(12, "fmt ");
  view.setUint32(16, 16, true); // fmt chunk size
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, sampleRateHz, true);
  view.setUint32(28, sampleRateHz * 2, true); // byte rate
  view.setUint16(32, 2, true); // block align
  view.setUint16(34, 16, true); // bits per sample
  writeAscii(36, "data");
  view.setUint32(40, dataBytes, true);
  for (let i = 0; i < samples.length; i++) {
    const clamped = Math.max(-1, Math.min(1, samples[i] ?? 0));
    view.setInt16(44 + i * 2, clamped < 0 ? clamped * 0x8000 : clamped * 0x7fff, true);
  }
  return new Blob([buffer], { type: "audio/wav" });
}

/** Decode `blob` with the browser, mix to mono, resample to 24 kHz and encode it as WAV. */
export async function toModelWav(blob: Blob): Promise<{ wav: Blob; durationS: number }> {
  const decoded = await decodeAudio(blob);
  const frames = Math.max(1, Math.ceil(decoded.duration * MODEL_SAMPLE_RATE_HZ));
  const offline = new OfflineAudioContext(1, frames, MODEL_SAMPLE_RATE_HZ);
  const source = offline.createBufferSource();
  source.buffer = decoded; // a mono destination down-mixes the channels
  source.connect(offline.destination);
  source.start();
  const rendered = await offline.startRendering();
  return { wav: encodeWav(rendered.getChannelData(0), MODEL_SAMPLE_RATE_HZ), durationS: decoded.duration };
}

/** The duration of a browser-decodable audio file in seconds, or null when the browser cannot decode it. */
export async function probeDurationS(blob: Blob): Promise<number | null> {
  try {
    return (await decodeAudio(blob)).duration;
  } catch {
    return null;
  }
}

async function decodeAudio(blob: Blob): Promise<AudioBuffer> {
  if (typeof AudioContext === "undefined") throw new Error("this browser cannot decode audio");
  const context = new AudioContext();
  try {
    return await context.decodeAudioData(await blob.arrayBuffer());
  } finally {
    void context.close();
  }
}
