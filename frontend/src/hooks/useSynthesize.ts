// One paid synthesis per click: build the form, pay through the single-use paying fetch, read the audio and
// the receipt. TanStack's mutation never retries (retry: 0), and the paying fetch refuses a second call, so
// an ambiguous failure is shown to the user instead of being paid for twice.
import { useMutation } from "@tanstack/react-query";
import type { ClientEvmSigner } from "@x402/evm";
import { useState } from "react";
import { api, type ApiClient } from "../api/client";
import { errorFromException, errorFromResponse, SynthesisError } from "../api/errors";
import type { SynthesisResult } from "../components/Result";
import { createPayingFetch, readReceipt, type FetchLike, type PaymentTerms } from "../payment/payingFetch";

export type SynthesisStage = "idle" | "asking" | "signing" | "generating";

export type ReferenceInput = { kind: "file"; blob: Blob; fileName: string } | { kind: "voice"; voiceId: string };

export interface SynthesizeInput {
  reference: ReferenceInput;
  text: string;
  /** The quoted duration: the request asks for exactly what was priced. */
  durationS: number;
  /** Who pays and under which terms; null when the service runs with payments off. */
  payment: { signer: ClientEvmSigner; terms: PaymentTerms } | null;
}

export interface SynthesizeDeps {
  client?: ApiClient;
  /** The network fetch under the paying fetch (tests pass a fake server). */
  baseFetch?: FetchLike;
}

/** Run one paid synthesis; `onStage` reports asking -> signing -> generating. */
export async function synthesizeOnce(
  input: SynthesizeInput,
  onStage: (stage: SynthesisStage) => void,
  deps: SynthesizeDeps = {},
): Promise<SynthesisResult> {
  const client = deps.client ?? api;
  const baseFetch: FetchLike = deps.baseFetch ?? ((request, init) => globalThis.fetch(request, init));
  let signed = false;
  let requestFetch = baseFetch;
  if (input.payment) {
    const { signer: wallet, terms } = input.payment;
    const signer: ClientEvmSigner = {
      address: wallet.address,
      signTypedData: async (data) => {
        onStage("signing");
        const signature = await wallet.signTypedData(data);
        signed = true;
        onStage("generating");
        return signature;
      },
    };
    requestFetch = createPayingFetch(signer, terms, baseFetch);
  }
  const form = new FormData();
  form.append("text", input.text);
  if (input.reference.kind === "file") form.append("audio", input.reference.blob, input.reference.fileName);

  onStage(input.payment ? "asking" : "generating");
  let outcome: { data?: Blob; error?: unknown; response: Response };
  try {
    outcome = await client.POST("/synthesize", {
      params: {
        query: {
          duration: input.durationS,
          format: "wav",
          ...(input.reference.kind === "voice" ? { voice: input.reference.voiceId } : {}),
        },
      },
      // The schema types the multipart fields; the browser's FormData is the real body.
      body: form as never,
      bodySerializer: (body: unknown) => body as FormData,
      headers: { Accept: "audio/wav, application/json" },
      parseAs: "blob",
      fetch: (request: Request) => requestFetch(request),
    });
  } catch (error) {
    const failure = errorFromException(error);
    if (signed && failure.kind === "network") {
      throw new SynthesisError(
        "network",
        "The connection broke after your wallet signed, so the payment may have gone through. " +
          "Check your balance before trying again.",
      );
    }
    throw failure;
  }
  const { data: audio, response } = outcome;
  if (!response.ok || !audio) throw errorFromResponse(response, outcome.error);

  const receipt = readReceipt(response);
  const header = (name: string) => response.headers.get(name);
  const numberHeader = (name: string) => {
    const value = header(name);
    return value === null || value === "" || Number.isNaN(Number(value)) ? null : Number(value);
  };
  const seed = header("X-Smalltts-Seed");
  return {
    audio,
    audioUrl: URL.createObjectURL(audio),
    fileName: `smalltts-${seed ?? "output"}.wav`,
    durationS: numberHeader("X-Smalltts-Duration-S"),
    seed,
    modelId: header("X-Smalltts-Model-Id"),
    processingMs: numberHeader("X-Smalltts-Processing-Ms"),
    transaction: receipt?.success ? receipt.transaction : null,
    paidAtomic: receipt?.success && input.payment ? input.payment.terms.amountAtomic : null,
  };
}

/** The page's synthesize action: a mutation that never retries, with the current stage for the progress text. */
export function useSynthesize(deps: SynthesizeDeps = {}) {
  const [stage, setStage] = useState<SynthesisStage>("idle");
  const mutation = useMutation<SynthesisResult, SynthesisError, SynthesizeInput>({
    mutationFn: (input) => synthesizeOnce(input, setStage, deps).catch((error: unknown) => {
      throw errorFromException(error);
    }),
    retry: 0,
    onSettled: () => setStage("idle"),
  });
  return { ...mutation, stage };
}
