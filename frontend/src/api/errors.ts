// Every way a synthesis can fail, in plain words for the page. One class so the UI has one thing to show.
import { describePaymentReason, isInsufficientFunds } from "../payment/reasons";
import { readPaymentRefusal, readReceipt, type Receipt } from "../payment/payingFetch";

export type SynthesisErrorKind =
  | "payment" // 402: the payment was refused or its settlement failed
  | "insufficient_funds" // 402 with a balance reason: shown on its own so the page can point at the balance
  | "input" // 4xx: something in the request is wrong; the server's message says what
  | "busy" // 503: queue full or model not ready
  | "timeout" // 504
  | "server" // 5xx
  | "wallet" // the wallet refused or could not sign
  | "network"; // the request never got an answer

export class SynthesisError extends Error {
  readonly kind: SynthesisErrorKind;
  readonly status: number | null;
  readonly field: string | null;
  /** The settlement receipt, when one came back (a failed settlement still names its transaction). */
  readonly receipt: Receipt | null;

  constructor(
    kind: SynthesisErrorKind,
    message: string,
    options: { status?: number | null; field?: string | null; receipt?: Receipt | null } = {},
  ) {
    super(message);
    this.name = "SynthesisError";
    this.kind = kind;
    this.status = options.status ?? null;
    this.field = options.field ?? null;
    this.receipt = options.receipt ?? null;
  }
}

interface ErrorBody {
  error?: { code?: string; message?: string; field?: string | null };
}

/** Turn a failed response and its parsed body (openapi-fetch's `error`) into a SynthesisError. */
export function errorFromResponse(response: Response, errorBody: unknown): SynthesisError {
  const status = response.status;
  if (status === 402) {
    const reason = readPaymentRefusal(response);
    const kind = isInsufficientFunds(reason) ? "insufficient_funds" : "payment";
    return new SynthesisError(kind, describePaymentReason(reason), { status, receipt: readReceipt(response) });
  }
  // Not our JSON shape (a proxy's error page, an empty body): the status alone has to do.
  const body: ErrorBody = typeof errorBody === "object" && errorBody !== null ? (errorBody as ErrorBody) : {};
  const detail = body.error?.message;
  const field = body.error?.field ?? null;
  if (status === 503) {
    const retryAfter = response.headers.get("Retry-After");
    const wait = retryAfter ? ` Try again in ${retryAfter} s.` : " Try again in a moment.";
    return new SynthesisError("busy", `The server is busy and did not run your request; nothing was charged.${wait}`, {
      status,
    });
  }
  if (status === 504) {
    return new SynthesisError("timeout", "The server took too long and gave up; nothing was charged.", { status });
  }
  if (status >= 400 && status < 500) {
    const what = detail ? capitalize(detail) : `The request was refused (HTTP ${status}).`;
    return new SynthesisError("input", `${what}${what.endsWith(".") ? "" : "."} Nothing was charged.`, {
      status,
      field,
    });
  }
  return new SynthesisError(
    "server",
    `The server failed (HTTP ${status})${detail ? `: ${detail}` : ""}. Nothing was charged.`,
    { status },
  );
}

/** Turn an exception from the paying fetch (wallet refused, spend cap, no network) into a SynthesisError. */
export function errorFromException(error: unknown): SynthesisError {
  if (error instanceof SynthesisError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (/user rejected|user denied|rejected the request|4001/i.test(message)) {
    return new SynthesisError("wallet", "You declined the signature in your wallet; nothing was charged.");
  }
  if (/spendControls/.test(message)) {
    return new SynthesisError(
      "payment",
      "The server asked for a different amount or token than the quoted price, so the page did not sign. " +
        "Nothing was charged; reload the price and try again.",
    );
  }
  if (/Failed to create payment payload/.test(message)) {
    return new SynthesisError("wallet", `Your wallet could not sign the payment: ${stripPrefix(message)}`);
  }
  if (/Failed to parse payment requirements/.test(message)) {
    return new SynthesisError("payment", "The server asked for payment in a form this page cannot read.");
  }
  return new SynthesisError("network", `The request did not get an answer (${message}). Check your connection.`);
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function stripPrefix(message: string): string {
  return message.replace(/^Failed to create payment payload:\s*/, "");
}
