// Checks on a reference recording before it is uploaded, against the limits the service publishes.

export interface ReferenceLimits {
  maxUploadBytes: number;
  minReferenceS: number;
  maxReferenceS: number;
}

/** Containers the service's decoder (libsndfile) reads; the browser's MIME type is often empty, so we also
 * look at the file name. */
export const ACCEPTED_EXTENSIONS = [".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3"] as const;
const ACCEPTED_MIME_TYPES = new Set([
  "audio/wav",
  "audio/x-wav",
  "audio/wave",
  "audio/vnd.wave",
  "audio/flac",
  "audio/x-flac",
  "audio/ogg",
  "audio/opus",
  "audio/mpeg",
  "audio/mp3",
]);
export const ACCEPT_ATTRIBUTE = [...ACCEPTED_EXTENSIONS, ...ACCEPTED_MIME_TYPES].join(",");

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1).replace(/\.0$/, "")} MiB`;
  if (bytes >= 1024) return `${Math.round(bytes / 1024)} KiB`;
  return `${bytes} bytes`;
}

/** What is wrong with `file` as a reference, in plain words, or null when it may be uploaded. */
export function checkReferenceFile(file: File, limits: ReferenceLimits): string | null {
  const name = file.name.toLowerCase();
  const knownExtension = ACCEPTED_EXTENSIONS.some((extension) => name.endsWith(extension));
  if (!knownExtension && !ACCEPTED_MIME_TYPES.has(file.type)) {
    return `${file.name} is not a supported audio file; use WAV, FLAC, Ogg or MP3.`;
  }
  if (file.size === 0) return `${file.name} is empty.`;
  if (file.size > limits.maxUploadBytes) {
    return `${file.name} is ${formatBytes(file.size)}; the limit is ${formatBytes(limits.maxUploadBytes)}.`;
  }
  return null;
}

/** What is wrong with a reference of `durationS` seconds, or null when its length is accepted. */
export function checkReferenceDuration(durationS: number, limits: ReferenceLimits): string | null {
  if (durationS < limits.minReferenceS) {
    return `The reference is ${durationS.toFixed(1)} s long; it needs at least ${limits.minReferenceS} s of speech.`;
  }
  if (durationS > limits.maxReferenceS) {
    return `The reference is ${durationS.toFixed(1)} s long; the limit is ${limits.maxReferenceS} s.`;
  }
  return null;
}
