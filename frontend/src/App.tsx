// The page: reference voice, text, duration and live price, the wallet, one paid synthesis per click, then
// the audio with its receipt; samples and "how it works" below.
import { useEffect, useState, type FormEvent } from "react";
import type { Address, Chain } from "viem";
import { USDC_DECIMALS, useQuote, type PaymentTermsInfo } from "./api/payment";
import { useSaveVoice, useVoices, type ServiceConfig } from "./api/queries";
import { DurationControl, type DurationMode } from "./components/DurationControl";
import { formatToken } from "./components/format";
import { HowItWorks } from "./components/HowItWorks";
import { ReferenceVoice, type Reference } from "./components/ReferenceVoice";
import { Result, type SynthesisResult } from "./components/Result";
import { Samples } from "./components/Samples";
import { TextInput } from "./components/TextInput";
import { WalletPanel } from "./components/WalletPanel";
import { useDebounced } from "./hooks/useDebounced";
import { useSynthesize, type SynthesisStage } from "./hooks/useSynthesize";
import type { WalletOption } from "./wallet/connectors";
import { usePayer } from "./wallet/payer";
import { useTokenBalance } from "./wallet/useTokenBalance";

// A sentence the bundled demo model reads well (PER measured in model/demo/eval/everyday.json); the published
// weights read anything.
export const DEFAULT_TEXT = "The meeting has been moved to Tuesday.";

export interface PaymentSetup {
  chain: Chain;
  chainName: string;
  /** Extension-free wallets offered next to the browser's (none on the dev chain). */
  wallets: WalletOption[];
}

interface AppProps {
  config: ServiceConfig;
  terms: PaymentTermsInfo;
  /** null when the service runs with payments off: no wallet, nothing to pay. */
  payment: PaymentSetup | null;
}

const STAGE_TEXT: Record<Exclude<SynthesisStage, "idle">, string> = {
  asking: "Asking the server for the payment terms…",
  signing: "Waiting for the wallet to sign the payment…",
  generating: "Payment signed; generating the speech…",
};

export function App({ config, terms, payment }: AppProps) {
  const [reference, setReference] = useState<Reference | null>(null);
  const [text, setText] = useState(DEFAULT_TEXT);
  const [mode, setMode] = useState<DurationMode>("auto");
  const [manualS, setManualS] = useState(() => clamp(3, config.min_duration_s, config.max_duration_s));
  const [result, setResult] = useState<SynthesisResult | null>(null);

  const debouncedText = useDebounced(text, 400);
  // The text's quote carries the server's duration estimate, shown in both modes; in manual mode the price
  // comes from a second quote for the slider's duration.
  const textQuote = useQuote(debouncedText.trim() ? { kind: "text", text: debouncedText } : null);
  const manualQuote = useQuote(mode === "manual" ? { kind: "duration", durationS: manualS } : null);
  const quote = mode === "manual" ? manualQuote : textQuote;
  const quoteCurrent = quote.isSuccess && !quote.isPlaceholderData && (mode === "manual" || debouncedText === text);
  const estimateS = textQuote.data && text.trim() ? Number(textQuote.data.duration_s) : null;

  const voices = useVoices(config.voices_enabled);
  const saveVoice = useSaveVoice();
  const payer = usePayer();
  const balance = useTokenBalance(
    (terms.asset as Address | null) ?? null,
    payer?.address ?? null,
    payment?.chain.id ?? 0,
  );
  const synthesize = useSynthesize();

  useEffect(() => () => revokeResult(result), [result]);
  // "Saved as …" belongs to the reference it was said about.
  const resetSaveVoice = saveVoice.reset;
  useEffect(() => resetSaveVoice(), [reference, resetSaveVoice]);

  const textLength = [...text].length;
  const priceAtomic = quote.data ? BigInt(quote.data.amount_atomic) : null;
  const priceText = priceAtomic !== null ? formatToken(priceAtomic, USDC_DECIMALS) : null;
  const needsWallet = payment !== null && terms.mode !== "off";
  const wrongChain = payer?.kind === "wagmi" && payer.chainId !== payment?.chain.id;

  const blockers: string[] = [];
  if (reference === null) blockers.push("choose a reference voice");
  if (!text.trim()) blockers.push("type some text");
  if (textLength > config.max_text_chars) blockers.push(`shorten the text to ${config.max_text_chars} characters`);
  if (needsWallet && payer === null) blockers.push("connect a wallet");
  if (needsWallet && wrongChain) blockers.push(`switch the wallet to ${payment.chainName}`);
  if (needsWallet && payer !== null && payer.signer === null && !wrongChain) blockers.push("unlock the wallet");
  if (quote.isError) blockers.push("fix what the price line names");
  else if (!quoteCurrent && text.trim()) blockers.push("wait for the price");

  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    const signer = payer?.signer;
    if (blockers.length > 0 || !quote.data || !reference || (needsWallet && !signer)) return;
    const { network, asset, amount_atomic: amountAtomic, duration_s: durationS } = quote.data;
    synthesize.mutate(
      {
        reference:
          reference.kind === "file"
            ? { kind: "file", blob: reference.blob, fileName: reference.fileName }
            : { kind: "voice", voiceId: reference.voiceId },
        text,
        durationS: Number(durationS),
        payment:
          needsWallet && signer && network && asset
            ? { signer, terms: { network: network as `${string}:${string}`, asset: asset as Address, amountAtomic } }
            : null,
      },
      {
        onSuccess: (next) => {
          setResult(next);
          void balance.refetch();
        },
        onError: () => void balance.refetch(),
      },
    );
  };

  const error = synthesize.error;
  const busy = synthesize.isPending;
  const submitLabel = needsWallet && priceText ? `Pay ${priceText} and synthesize` : "Synthesize";

  return (
    <div className="page">
      <header className="top">
        <div>
          <h1>smalltts</h1>
          <p className="tagline">
            Voice cloning from a few seconds of speech.
            {config.tags_performed ? " It can [cough], [sigh] and even [laughter]." : ""}
          </p>
        </div>
        <span className="badge" title="Price per minute of generated audio">
          {terms.mode === "off"
            ? "free on this server"
            : `$${Number(terms.price_per_minute_usd)}/min · USDC on ${payment?.chainName ?? terms.network_name}`}
        </span>
      </header>

      <main>
        {!config.trained && (
          <p className="warning" role="note">
            This server runs an untrained model ({config.model_id}): the audio will be noise, not speech.
          </p>
        )}
        {config.trained && !config.tags_performed && (
          <p className="note" role="note">
            This server runs the small demo model ({config.model_id}), trained only on synthetic espeak-ng speech: it
            reads everyday English in the voice you give it, but it has never heard a laugh or a sigh. Tags such as
            [laughter] need the published weights.
          </p>
        )}

        {needsWallet && (
          <WalletPanel
            chainName={payment.chainName}
            requiredChainId={payment.chain.id}
            wallets={payment.wallets}
            balanceAtomic={balance.data ?? null}
            decimals={USDC_DECIMALS}
            priceAtomic={priceAtomic}
          />
        )}

        <form className="card" onSubmit={onSubmit} aria-labelledby="make-heading" noValidate>
          <h2 id="make-heading">Make speech</h2>
          <ReferenceVoice
            value={reference}
            onChange={setReference}
            limits={{
              maxUploadBytes: config.max_upload_bytes,
              minReferenceS: config.min_reference_s,
              maxReferenceS: config.max_reference_s,
            }}
            voices={(voices.data ?? []).map((voice) => ({
              id: voice.id,
              name: voice.name,
              referenceS: voice.reference_s,
            }))}
          />
          {reference?.kind === "file" && config.voices_enabled && (
            <SaveVoiceRow
              pending={saveVoice.isPending}
              saved={saveVoice.isSuccess ? saveVoice.data.name : null}
              error={saveVoice.error?.message ?? null}
              onSave={(name) => saveVoice.mutate({ blob: reference.blob, fileName: reference.fileName, name })}
            />
          )}
          <TextInput
            value={text}
            onChange={setText}
            maxChars={config.max_text_chars}
            tags={config.tags_performed ? config.tags : []}
          />
          <DurationControl
            mode={mode}
            onModeChange={setMode}
            manualS={manualS}
            onManualChange={setManualS}
            estimateS={estimateS}
            minS={config.min_duration_s}
            maxS={config.max_duration_s}
          />
          <p className="price" aria-live="polite" data-testid="price">
            {quote.isError
              ? `No price: ${quote.error.message}`
              : quote.data && priceText
                ? `Price: ${priceText} for ${Number(quote.data.duration_s).toFixed(2)} s`
                : "Price: …"}
          </p>
          <div className="row">
            <button type="submit" className="primary" disabled={busy || blockers.length > 0}>
              {submitLabel}
            </button>
            {!busy && blockers.length > 0 && <span className="muted">To continue: {blockers.join(", ")}.</span>}
          </div>
          {busy && (
            <p className="progress" role="status" aria-live="polite">
              <progress aria-label="Synthesis progress" /> {STAGE_TEXT[synthesize.stage === "idle" ? "asking" : synthesize.stage]}
            </p>
          )}
          {error && (
            <div className="error" role="alert" data-testid="error">
              <p>{error.message}</p>
              {error.kind === "insufficient_funds" && balance.data !== undefined && priceText && (
                <p>
                  Balance: {formatToken(balance.data, USDC_DECIMALS)}; price: {priceText}.
                </p>
              )}
              {error.receipt?.transaction && (
                <p>
                  Transaction: <code>{error.receipt.transaction}</code>
                </p>
              )}
            </div>
          )}
        </form>

        {result && (
          <Result
            result={result}
            priceText={result.paidAtomic ? formatToken(result.paidAtomic, USDC_DECIMALS) : null}
            explorerTxUrl={explorerTxUrl(payment?.chain ?? null, result.transaction)}
          />
        )}

        <Samples onUse={setText} knownTags={config.tags_performed ? config.tags : []} />
        <HowItWorks
          priceText={terms.mode === "off" ? null : `$${Number(terms.price_per_minute_usd)} per minute`}
          networkLabel={payment?.chainName ?? null}
        />
      </main>
      <footer>
        smalltts · model {config.model_id}
        {config.trained ? "" : " (untrained)"} · <a href="/.well-known/x402">x402 discovery</a> ·{" "}
        <a href="/docs">API docs</a>
      </footer>
    </div>
  );
}

function SaveVoiceRow(props: {
  pending: boolean;
  saved: string | null;
  error: string | null;
  onSave: (name: string) => void;
}) {
  const [name, setName] = useState("my voice");
  return (
    <div className="row field">
      <label htmlFor="save-voice-name">Save this reference as</label>
      <input id="save-voice-name" value={name} onChange={(event) => setName(event.target.value)} maxLength={100} />
      <button type="button" onClick={() => props.onSave(name.trim() || "voice")} disabled={props.pending}>
        Save voice
      </button>
      <span aria-live="polite" className="muted">
        {props.pending ? "Saving…" : props.saved ? `Saved as “${props.saved}”.` : ""}
      </span>
      {props.error && (
        <p className="error" role="alert">
          Could not save the voice: {props.error}
        </p>
      )}
    </div>
  );
}

/** The block explorer's page for `tx` (Basescan on Base and Base Sepolia; none for the local dev chain). */
function explorerTxUrl(chain: Chain | null, tx: string | null): string | null {
  const explorer = chain?.blockExplorers?.default.url;
  return explorer && tx ? `${explorer}/tx/${tx}` : null;
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(Math.max(value, low), high);
}

function revokeResult(result: SynthesisResult | null) {
  if (result) URL.revokeObjectURL(result.audioUrl);
}
