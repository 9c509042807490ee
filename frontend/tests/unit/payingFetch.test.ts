// @vitest-environment node
import { encodePaymentRequiredHeader, encodePaymentResponseHeader, decodePaymentSignatureHeader } from "@x402/core/http";
import type { PaymentRequired } from "@x402/core/types";
import { recoverTypedDataAddress } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import {
  createPayingFetch,
  PaymentAlreadyAttemptedError,
  readPaymentRefusal,
  readReceipt,
  type FetchLike,
  type PaymentTerms,
} from "../../src/payment/payingFetch";

// anvil's public account 1: only ever used on local chains.
const account = privateKeyToAccount("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
const TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const PAY_TO = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
const TX = `0x${"ab".repeat(32)}`;
const terms: PaymentTerms = { network: "eip155:84532", asset: TOKEN, amountAtomic: "3000" };

function requirements(amount: string, asset: string = TOKEN, error?: string): PaymentRequired {
  return {
    x402Version: 2,
    ...(error ? { error } : {}),
    resource: { url: "http://test/synthesize?duration=3", description: "TTS", mimeType: "audio/wav" },
    accepts: [
      {
        scheme: "exact",
        network: "eip155:84532",
        asset,
        amount,
        payTo: PAY_TO,
        maxTimeoutSeconds: 120,
        extra: { name: "USDC", version: "2" },
      },
    ],
  };
}

/** A fake paid route: 402 without a signature, then `paid(request)` for the signed retry. */
function fakeServer(asked: PaymentRequired, paid: (request: Request) => Response) {
  const requests: Request[] = [];
  const fetch: FetchLike = async (input, init) => {
    const request = new Request(input, init);
    requests.push(request);
    if (!request.headers.has("PAYMENT-SIGNATURE")) {
      return new Response("{}", { status: 402, headers: { "PAYMENT-REQUIRED": encodePaymentRequiredHeader(asked) } });
    }
    return paid(request);
  };
  return { fetch, requests };
}

const settled = () =>
  new Response("RIFF", {
    status: 200,
    headers: {
      "content-type": "audio/wav",
      "PAYMENT-RESPONSE": encodePaymentResponseHeader({
        success: true,
        transaction: TX,
        network: "eip155:84532",
        payer: account.address,
      }),
    },
  });

describe("createPayingFetch", () => {
  it("signs one EIP-3009 authorization for exactly the quoted amount and returns the receipt", async () => {
    const server = fakeServer(requirements("3000"), settled);
    const pay = createPayingFetch(account, terms, server.fetch);

    const response = await pay("http://test/synthesize?duration=3", { method: "POST", body: "x" });

    expect(response.status).toBe(200);
    expect(server.requests).toHaveLength(2);
    const payload = decodePaymentSignatureHeader(server.requests[1]!.headers.get("PAYMENT-SIGNATURE")!);
    const authorization = (payload.payload as { authorization: Record<string, string> }).authorization;
    expect(authorization.value).toBe("3000");
    expect(authorization.to).toBe(PAY_TO);
    const signer = await recoverTypedDataAddress({
      domain: { name: "USDC", version: "2", chainId: 84532, verifyingContract: TOKEN },
      types: {
        TransferWithAuthorization: [
          { name: "from", type: "address" },
          { name: "to", type: "address" },
          { name: "value", type: "uint256" },
          { name: "validAfter", type: "uint256" },
          { name: "validBefore", type: "uint256" },
          { name: "nonce", type: "bytes32" },
        ],
      },
      primaryType: "TransferWithAuthorization",
      message: {
        from: authorization.from as `0x${string}`,
        to: authorization.to as `0x${string}`,
        value: BigInt(authorization.value!),
        validAfter: BigInt(authorization.validAfter!),
        validBefore: BigInt(authorization.validBefore!),
        nonce: authorization.nonce as `0x${string}`,
      },
      signature: (payload.payload as { signature: `0x${string}` }).signature,
    });
    expect(signer).toBe(account.address);
    expect(readReceipt(response)).toEqual({
      success: true,
      transaction: TX,
      network: "eip155:84532",
      payer: account.address,
    });
  });

  it("refuses to sign when the server asks for more than the quoted price", async () => {
    const server = fakeServer(requirements("3001"), settled);
    const pay = createPayingFetch(account, terms, server.fetch);

    await expect(pay("http://test/synthesize?duration=3", { method: "POST" })).rejects.toThrow(/spendControls/);
    expect(server.requests).toHaveLength(1); // nothing signed, nothing sent
  });

  it("refuses to sign for a token other than the one the service announced", async () => {
    const server = fakeServer(requirements("3000", "0x0000000000000000000000000000000000000001"), settled);
    const pay = createPayingFetch(account, terms, server.fetch);

    await expect(pay("http://test/synthesize?duration=3", { method: "POST" })).rejects.toThrow(/spendControls/);
    expect(server.requests).toHaveLength(1);
  });

  it("never sends a second payment: a refused payment is returned, and a second call throws", async () => {
    const refused = requirements("3000", TOKEN, "invalid_exact_evm_insufficient_balance");
    const server = fakeServer(
      requirements("3000"),
      () => new Response("{}", { status: 402, headers: { "PAYMENT-REQUIRED": encodePaymentRequiredHeader(refused) } }),
    );
    const pay = createPayingFetch(account, terms, server.fetch);

    const response = await pay("http://test/synthesize?duration=3", { method: "POST" });

    expect(response.status).toBe(402);
    expect(readPaymentRefusal(response)).toBe("invalid_exact_evm_insufficient_balance");
    expect(server.requests).toHaveLength(2);
    await expect(pay("http://test/synthesize?duration=3", { method: "POST" })).rejects.toBeInstanceOf(
      PaymentAlreadyAttemptedError,
    );
    expect(server.requests).toHaveLength(2);
  });
});

describe("readPaymentRefusal", () => {
  it("prefers the failed settlement's reason over the requirements' error", () => {
    const response = new Response("{}", {
      status: 402,
      headers: {
        "PAYMENT-RESPONSE": encodePaymentResponseHeader({
          success: false,
          errorReason: "transaction_failed",
          transaction: TX,
          network: "eip155:84532",
        }),
        "PAYMENT-REQUIRED": encodePaymentRequiredHeader(requirements("3000", TOKEN, "something_else")),
      },
    });
    expect(readPaymentRefusal(response)).toBe("transaction_failed");
    expect(readReceipt(response)?.success).toBe(false);
  });

  it("gives undefined for a 402 without x402 headers", () => {
    expect(readPaymentRefusal(new Response("{}", { status: 402 }))).toBeUndefined();
  });
});
