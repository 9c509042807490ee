// The paying fetch: one x402 payment for one request, capped at the price the user was shown.
//
// wrapFetchWithPayment sends the request, and on a 402 signs an EIP-3009 authorization for the server's
// requirements and sends the request once more with PAYMENT-SIGNATURE. We add two guards around it:
//  * spend controls that allow only the asset and network the service announced, and at most the quoted
//    amount, so a server that asks for more than the page showed is refused before anything is signed;
//  * a single-use wrapper, because every retry signs a fresh nonce and could pay twice (x402.md §8.11).
import type { ClientEvmSigner } from "@x402/evm";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { decodePaymentRequiredHeader, decodePaymentResponseHeader } from "@x402/core/http";
import { wrapFetchWithPayment, x402Client } from "@x402/fetch";

export type Caip2Network = `${string}:${string}`;

/** What the page agreed to pay: the network and token the service announced, and the quoted amount. */
export interface PaymentTerms {
  network: Caip2Network;
  asset: `0x${string}`;
  /** The quoted price in atomic token units: the most this fetch will sign for. */
  amountAtomic: string;
}

/** The settlement receipt from the PAYMENT-RESPONSE header of a paid response. */
export interface Receipt {
  success: boolean;
  transaction: string;
  network: string;
  payer?: string;
  errorReason?: string;
}

export type FetchLike = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

export class PaymentAlreadyAttemptedError extends Error {
  constructor() {
    super("this paying fetch was already used once; a second call could pay twice");
    this.name = "PaymentAlreadyAttemptedError";
  }
}

/** A fetch that pays for exactly one request under `terms`; a second call throws instead of paying again. */
export function createPayingFetch(
  signer: ClientEvmSigner,
  terms: PaymentTerms,
  baseFetch: FetchLike = (input, init) => globalThis.fetch(input, init),
): FetchLike {
  const client = new x402Client()
    .register(terms.network, new ExactEvmScheme(signer))
    .setSpendControls({
      allowedAssets: [{ network: terms.network, asset: terms.asset, maxAmountPerPayment: terms.amountAtomic }],
    });
  const paying = wrapFetchWithPayment(baseFetch, client);
  let used = false;
  return (input, init) => {
    if (used) return Promise.reject(new PaymentAlreadyAttemptedError());
    used = true;
    return paying(input, init);
  };
}

/** The settlement receipt of a response, or null when it carries none (unpaid, or refused before settling). */
export function readReceipt(response: Response): Receipt | null {
  const header = response.headers.get("PAYMENT-RESPONSE") ?? response.headers.get("X-PAYMENT-RESPONSE");
  if (!header) return null;
  try {
    const settle = decodePaymentResponseHeader(header);
    return {
      success: settle.success,
      transaction: settle.transaction,
      network: settle.network,
      ...(settle.payer ? { payer: settle.payer } : {}),
      ...(settle.errorReason ? { errorReason: settle.errorReason } : {}),
    };
  } catch {
    return null;
  }
}

/** The reason code of a 402: from a failed settlement's receipt, else from the requirements' `error`. */
export function readPaymentRefusal(response: Response): string | undefined {
  const receipt = readReceipt(response);
  if (receipt && !receipt.success) return receipt.errorReason ?? "transaction_failed";
  const header = response.headers.get("PAYMENT-REQUIRED");
  if (!header) return undefined;
  try {
    return decodePaymentRequiredHeader(header).error ?? undefined;
  } catch {
    return undefined;
  }
}
