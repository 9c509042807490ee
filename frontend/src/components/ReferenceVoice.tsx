import { useEffect, useId, useState, type ChangeEvent } from "react";
import { voiceAudioUrl } from "../api/client";
import {
  ACCEPT_ATTRIBUTE,
  checkReferenceDuration,
  checkReferenceFile,
  formatBytes,
  type ReferenceLimits,
} from "../audio/reference";
import { useRecorder } from "../audio/useRecorder";
import { probeDurationS } from "../audio/wav";

export interface SavedVoice {
  id: string;
  name: string;
  referenceS: number;
}

/** The reference the page will send: an uploaded or recorded file, or a saved voice by id. */
export type Reference =
  | { kind: "file"; source: "upload" | "recording"; blob: Blob; fileName: string; durationS: number | null }
  | { kind: "voice"; voiceId: string; name: string };

type Source = "upload" | "record" | "saved";

interface ReferenceVoiceProps {
  value: Reference | null;
  onChange: (reference: Reference | null) => void;
  limits: ReferenceLimits;
  voices: readonly SavedVoice[];
}

/** Choose the voice to clone: upload a file, record the microphone, or pick a saved voice; then play it back. */
export function ReferenceVoice({ value, onChange, limits, voices }: ReferenceVoiceProps) {
  const id = useId();
  const [source, setSource] = useState<Source>(value?.kind === "voice" ? "saved" : "upload");
  const [problem, setProblem] = useState<string | null>(null);
  const recorder = useRecorder(limits.maxReferenceS, ({ wav, durationS }) => {
    const tooLong = checkReferenceDuration(durationS, limits);
    setProblem(tooLong);
    if (!tooLong) onChange({ kind: "file", source: "recording", blob: wav, fileName: "recording.wav", durationS });
  });

  // A file plays from an object URL in the browser; a saved voice streams its stored reference from the server.
  const previewUrl = usePreviewUrl(value?.kind === "file" ? value.blob : null);
  const playbackUrl = value?.kind === "voice" ? voiceAudioUrl(value.voiceId) : previewUrl;
  const savedVoice = value?.kind === "voice" ? voices.find((voice) => voice.id === value.voiceId) : undefined;

  const chooseSource = (next: Source) => {
    setSource(next);
    setProblem(null);
    onChange(null);
  };

  const onFile = async (event: ChangeEvent<HTMLInputElement>) => {
    const file = event.target.files?.[0];
    if (!file) return;
    const wrong = checkReferenceFile(file, limits);
    if (wrong) {
      setProblem(wrong);
      onChange(null);
      event.target.value = "";
      return;
    }
    // The browser may not decode every container the server does; then the server checks the length.
    const durationS = await probeDurationS(file);
    const badLength = durationS === null ? null : checkReferenceDuration(durationS, limits);
    setProblem(badLength);
    if (badLength) {
      onChange(null);
      event.target.value = "";
      return;
    }
    onChange({ kind: "file", source: "upload", blob: file, fileName: file.name, durationS });
  };

  return (
    <fieldset className="field">
      <legend>Reference voice</legend>
      <div className="choices" role="radiogroup" aria-label="Where the reference voice comes from">
        {(
          [
            ["upload", "Upload a file"],
            ["record", "Record"],
            ["saved", `Saved voice${voices.length ? ` (${voices.length})` : ""}`],
          ] as const
        ).map(([key, label]) => (
          <label key={key}>
            <input
              type="radio"
              name={`${id}-source`}
              value={key}
              checked={source === key}
              onChange={() => chooseSource(key)}
            />
            {label}
          </label>
        ))}
      </div>

      {source === "upload" && (
        <div>
          <label htmlFor={`${id}-file`}>Reference audio file</label>
          <input
            id={`${id}-file`}
            type="file"
            accept={ACCEPT_ATTRIBUTE}
            onChange={(event) => void onFile(event)}
            aria-describedby={`${id}-file-hint`}
          />
          <p id={`${id}-file-hint`} className="muted">
            WAV, FLAC, Ogg or MP3 with clean speech; {limits.minReferenceS}–{limits.maxReferenceS} s, at most{" "}
            {formatBytes(limits.maxUploadBytes)}.
          </p>
        </div>
      )}

      {source === "record" && (
        <div className="row">
          {recorder.state.kind === "recording" ? (
            <button type="button" onClick={recorder.stop}>
              Stop recording ({recorder.state.elapsedS.toFixed(1)} s of {limits.maxReferenceS} s)
            </button>
          ) : (
            <button type="button" onClick={() => void recorder.start()} disabled={recorder.state.kind === "processing"}>
              {value?.kind === "file" && value.source === "recording" ? "Record again" : "Start recording"}
            </button>
          )}
          <span className="muted" aria-live="polite">
            {recorder.state.kind === "processing" ? "Preparing the recording…" : ""}
            {recorder.state.kind === "recording" ? "Recording… speak now." : ""}
          </span>
          {recorder.state.kind === "error" && (
            <p className="error" role="alert">
              {recorder.state.message}
            </p>
          )}
        </div>
      )}

      {source === "saved" &&
        (voices.length === 0 ? (
          <p className="muted">No saved voices on this server yet.</p>
        ) : (
          <div>
            <label htmlFor={`${id}-voice`}>Saved voice</label>
            <select
              id={`${id}-voice`}
              value={value?.kind === "voice" ? value.voiceId : ""}
              onChange={(event) => {
                const voice = voices.find((candidate) => candidate.id === event.target.value);
                onChange(voice ? { kind: "voice", voiceId: voice.id, name: voice.name } : null);
              }}
            >
              <option value="">Choose a voice…</option>
              {voices.map((voice) => (
                <option key={voice.id} value={voice.id}>
                  {voice.name} ({voice.referenceS.toFixed(1)} s)
                </option>
              ))}
            </select>
          </div>
        ))}

      {problem && (
        <p className="error" role="alert">
          {problem}
        </p>
      )}
      {playbackUrl && (
        <div>
          <audio controls src={playbackUrl} aria-label="Reference voice playback" data-testid="reference-audio" />
          {value?.kind === "file" && value.durationS !== null && (
            <p className="muted">
              {value.source === "recording" ? "Recording" : value.fileName}: {value.durationS.toFixed(1)} s
            </p>
          )}
          {savedVoice && (
            <p className="muted">
              {savedVoice.name}: {savedVoice.referenceS.toFixed(1)} s
            </p>
          )}
        </div>
      )}
    </fieldset>
  );
}

/** An object URL for `blob`, revoked when the blob changes or the component goes away. */
function usePreviewUrl(blob: Blob | null): string | null {
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    if (!blob) {
      setUrl(null);
      return;
    }
    const objectUrl = URL.createObjectURL(blob);
    setUrl(objectUrl);
    return () => URL.revokeObjectURL(objectUrl);
  }, [blob]);
  return url;
}
