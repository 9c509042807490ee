// A fake paid route for unit tests: 402 with x402 v2 requirements until a PAYMENT-SIGNATURE arrives, then
// whatever the test's `paid` callback answers. Records every request it saw.
import { encodePaymentRequiredHeader, encodePaymentResponseHeader } from "@x402/core/http";
import type { PaymentRequired } from "@x402/core/types";
import type { FetchLike } from "../../src/payment/payingFetch";

export const TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
export const PAY_TO = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
export const TX = `0x${"ab".repeat(32)}`;

export function requirements(amount: string, error?: string): PaymentRequired {
  return {
    x402Version: 2,
    ...(error ? { error } : {}),
    resource: { url: "http://test/synthesize", description: "TTS", mimeType: "audio/wav" },
    accepts: [
      {
        scheme: "exact",
        network: "eip155:84532",
        asset: TOKEN,
        amount,
        payTo: PAY_TO,
        maxTimeoutSeconds: 120,
        extra: { name: "USDC", version: "2" },
      },
    ],
  };
}

export function paymentRequired(amount: string, error?: string): Response {
  return new Response("{}", {
    status: 402,
    headers: { "content-type": "application/json", "PAYMENT-REQUIRED": encodePaymentRequiredHeader(requirements(amount, error)) },
  });
}

export function settledAudio(payer: string, headers: Record<string, string> = {}): Response {
  return new Response(new Uint8Array([82, 73, 70, 70]), {
    status: 200,
    headers: {
      "content-type": "audio/wav",
      "PAYMENT-RESPONSE": encodePaymentResponseHeader({
        success: true,
        transaction: TX,
        network: "eip155:84532",
        payer,
      }),
      ...headers,
    },
  });
}

export function fakePaidRoute(amount: string, paid: (request: Request) => Response | Promise<Response>) {
  const requests: Request[] = [];
  const fetch: FetchLike = async (input, init) => {
    const request = new Request(input, init);
    requests.push(request.clone());
    if (!request.headers.has("PAYMENT-SIGNATURE")) return paymentRequired(amount);
    return paid(request);
  };
  return { fetch, requests };
}
