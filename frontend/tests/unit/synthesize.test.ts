// @vitest-environment node
// Node's own fetch, FormData and Blob: jsdom's Blob does not survive into Node's multipart encoder.
import createClient from "openapi-fetch";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { SynthesisError } from "../../src/api/errors";
import type { paths } from "../../src/api/schema";
import { synthesizeOnce, type SynthesisStage, type SynthesizeInput } from "../../src/hooks/useSynthesize";
import type { FetchLike } from "../../src/payment/payingFetch";
import { fakePaidRoute, paymentRequired, settledAudio, TOKEN, TX } from "./fakeServer";

// anvil's public account 1: only ever used on local chains.
const account = privateKeyToAccount("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
const client = createClient<paths>({ baseUrl: "http://test" });

function input(overrides: Partial<SynthesizeInput> = {}): SynthesizeInput {
  return {
    reference: { kind: "file", blob: new Blob(["RIFF"], { type: "audio/wav" }), fileName: "ref.wav" },
    text: "Hello [laughter]",
    durationS: 2,
    payment: { signer: account, terms: { network: "eip155:84532", asset: TOKEN, amountAtomic: "334" } },
    ...overrides,
  };
}

async function run(request: SynthesizeInput, fetch: FetchLike) {
  const stages: SynthesisStage[] = [];
  const outcome = await synthesizeOnce(request, (stage) => stages.push(stage), { client, baseFetch: fetch }).then(
    (result) => ({ result, error: null }),
    (error: unknown) => ({ result: null, error: error as SynthesisError }),
  );
  return { ...outcome, stages };
}

describe("synthesizeOnce", () => {
  it("sends the form with the quoted duration, pays once and returns the audio with its receipt", async () => {
    const server = fakePaidRoute("334", () =>
      settledAudio(account.address, { "X-Smalltts-Duration-S": "2.000", "X-Smalltts-Seed": "42", "X-Smalltts-Processing-Ms": "95.5" }),
    );

    const { result, error, stages } = await run(input(), server.fetch);

    expect(error).toBeNull();
    expect(stages).toEqual(["asking", "signing", "generating"]);
    expect(server.requests).toHaveLength(2);
    const paid = server.requests[1]!;
    const url = new URL(paid.url);
    expect([url.pathname, url.searchParams.get("duration"), url.searchParams.get("format")]).toEqual([
      "/synthesize",
      "2",
      "wav",
    ]);
    const form = await paid.formData();
    expect(form.get("text")).toBe("Hello [laughter]");
    const audio = form.get("audio") as File;
    expect([audio.name, await audio.text()]).toEqual(["ref.wav", "RIFF"]);
    expect(result).toMatchObject({
      transaction: TX,
      paidAtomic: "334",
      durationS: 2,
      seed: "42",
      processingMs: 95.5,
      fileName: "smalltts-42.wav",
    });
  });

  it("names a saved voice in the query and sends no file", async () => {
    const server = fakePaidRoute("334", () => settledAudio(account.address));
    await run(input({ reference: { kind: "voice", voiceId: "default" } }), server.fetch);
    const paid = server.requests[1]!;
    expect(new URL(paid.url).searchParams.get("voice")).toBe("default");
    expect((await paid.formData()).get("audio")).toBeNull();
  });

  it("reports a refused payment in plain words and never sends a third request", async () => {
    const server = fakePaidRoute("334", () => paymentRequired("334", "invalid_exact_evm_insufficient_balance"));

    const { result, error } = await run(input(), server.fetch);

    expect(result).toBeNull();
    expect(error).toBeInstanceOf(SynthesisError);
    expect(error?.kind).toBe("insufficient_funds");
    expect(error?.message).toBe("Your wallet does not hold enough USDC to pay for this request.");
    expect(server.requests).toHaveLength(2);
  });

  it("refuses to sign when the server asks more than the quote", async () => {
    const server = fakePaidRoute("335", () => settledAudio(account.address));
    const { error, stages } = await run(input(), server.fetch);
    expect(error?.kind).toBe("payment");
    expect(error?.message).toMatch(/different amount or token than the quoted price/);
    expect(stages).not.toContain("signing");
    expect(server.requests).toHaveLength(1);
  });

  it("shows the server's message for a refused input; nothing is charged", async () => {
    const server = fakePaidRoute("334", () =>
      Response.json(
        { error: { code: "text_too_long", message: "text has 1200 characters; the limit is 1000", field: "text" } },
        { status: 422 },
      ),
    );
    const { error } = await run(input(), server.fetch);
    expect(error?.kind).toBe("input");
    expect(error?.field).toBe("text");
    expect(error?.message).toBe("Text has 1200 characters; the limit is 1000. Nothing was charged.");
  });

  it("says the server is busy on 503, with the wait it asked for", async () => {
    const server = fakePaidRoute("334", () =>
      Response.json({ error: { code: "queue_full", message: "queue full" } }, { status: 503, headers: { "Retry-After": "7" } }),
    );
    const { error } = await run(input(), server.fetch);
    expect(error?.kind).toBe("busy");
    expect(error?.message).toBe("The server is busy and did not run your request; nothing was charged. Try again in 7 s.");
  });

  it("warns that the payment may have gone through when the connection breaks after signing", async () => {
    const server = fakePaidRoute("334", () => {
      throw new TypeError("Failed to fetch");
    });
    const { error } = await run(input(), server.fetch);
    expect(error?.kind).toBe("network");
    expect(error?.message).toMatch(/may have gone through. Check your balance before trying again/);
    expect(server.requests).toHaveLength(2);
  });

  it("says plainly when the user declines the signature", async () => {
    const server = fakePaidRoute("334", () => settledAudio(account.address));
    const declining = {
      address: account.address,
      signTypedData: async () => {
        throw Object.assign(new Error("User rejected the request."), { code: 4001 });
      },
    };
    const { error } = await run(
      input({ payment: { signer: declining, terms: { network: "eip155:84532", asset: TOKEN, amountAtomic: "334" } } }),
      server.fetch,
    );
    expect(error?.kind).toBe("wallet");
    expect(error?.message).toBe("You declined the signature in your wallet; nothing was charged.");
    expect(server.requests).toHaveLength(1);
  });

  it("sends no payment at all when the service runs free", async () => {
    const requests: Request[] = [];
    const free: FetchLike = async (request, init) => {
      requests.push(new Request(request, init));
      return new Response(new Uint8Array([1]), { status: 200, headers: { "content-type": "audio/wav" } });
    };
    const { result } = await run(input({ payment: null }), free);
    expect(requests).toHaveLength(1);
    expect(requests[0]!.headers.has("PAYMENT-SIGNATURE")).toBe(false);
    expect(result?.transaction).toBeNull();
    expect(result?.paidAtomic).toBeNull();
  });
});
