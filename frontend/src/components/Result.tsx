import { useState } from "react";
import { Waveform } from "./Waveform";

export interface SynthesisResult {
  /** The WAV file itself (its waveform is drawn from these bytes) and an object URL for it. */
  audio: Blob;
  audioUrl: string;
  fileName: string;
  durationS: number | null;
  seed: string | null;
  modelId: string | null;
  processingMs: number | null;
  /** Settlement tx hash from PAYMENT-RESPONSE, when the request was paid. */
  transaction: string | null;
  paidAtomic: string | null;
}

interface ResultProps {
  result: SynthesisResult;
  priceText: string | null;
  explorerTxUrl: string | null;
}

/** The generated audio (its waveform above the player) with a download link and the payment receipt. */
export function Result({ result, priceText, explorerTxUrl }: ResultProps) {
  const [player, setPlayer] = useState<HTMLAudioElement | null>(null);
  return (
    <section className="card result" aria-labelledby="result-heading">
      <h2 id="result-heading">Your audio</h2>
      <Waveform audio={result.audio} player={player} />
      <audio ref={setPlayer} controls src={result.audioUrl} data-testid="result-audio" aria-label="Generated speech" />
      <p>
        <a className="button" href={result.audioUrl} download={result.fileName}>
          Download {result.fileName}
        </a>
      </p>
      <dl className="details">
        {result.durationS !== null && (
          <>
            <dt>Length</dt>
            <dd>{result.durationS.toFixed(2)} s</dd>
          </>
        )}
        {result.seed !== null && (
          <>
            <dt>Seed</dt>
            <dd>{result.seed}</dd>
          </>
        )}
        {result.processingMs !== null && (
          <>
            <dt>Server time</dt>
            <dd>{Math.round(result.processingMs)} ms</dd>
          </>
        )}
        {result.modelId !== null && (
          <>
            <dt>Model</dt>
            <dd>{result.modelId}</dd>
          </>
        )}
        {priceText !== null && (
          <>
            <dt>Paid</dt>
            <dd>{priceText}</dd>
          </>
        )}
        {result.transaction !== null && (
          <>
            <dt>Settlement transaction</dt>
            <dd>
              <code data-testid="tx-hash" title={result.transaction}>
                {explorerTxUrl ? (
                  <a href={explorerTxUrl} target="_blank" rel="noreferrer">
                    {result.transaction}
                  </a>
                ) : (
                  result.transaction
                )}
              </code>
            </dd>
          </>
        )}
      </dl>
    </section>
  );
}
