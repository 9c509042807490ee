// The whole page over a stubbed service: what it loads, what it refuses to send, and the free path
// (payments off) end to end. The paid path in a real browser is frontend/tests/e2e/paid-flow.mjs.
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DEFAULT_TEXT } from "../../src/App";

const CONFIG = {
  model_id: "random-tiny-seed0",
  trained: false,
  sample_rate_hz: 24000,
  max_text_chars: 100,
  max_upload_bytes: 4096,
  min_duration_s: 0.5,
  max_duration_s: 30,
  min_reference_s: 0.5,
  max_reference_s: 30,
  max_steps: 8,
  default_steps: 4,
  sampler: "student",
  tags: ["laughter", "cough", "sigh"],
  tags_performed: true,
  formats: ["wav", "flac", "ogg"],
  voices_enabled: true,
};

function terms(mode: "off" | "local") {
  return {
    mode,
    network: mode === "off" ? null : "eip155:84532",
    network_name: mode === "off" ? null : "base-sepolia",
    asset: mode === "off" ? null : "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
    token_name: mode === "off" ? null : "USDC",
    pay_to: mode === "off" ? null : "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    price_per_minute_usd: "0.01",
    price_per_second_atomic: 167,
    max_timeout_seconds: 300,
    quote: "http://test/v1/price",
  };
}

function quote(url: URL, mode: "off" | "local") {
  const durationS = url.searchParams.get("duration") ?? "3.61";
  return {
    duration_s: durationS,
    duration_source: url.searchParams.has("duration") ? "duration" : "text",
    amount_atomic: mode === "off" ? "0" : String(Math.ceil(Number(durationS) * 167)),
    amount_usd: "0",
    price_per_minute_usd: "0.01",
    price_per_second_atomic: 167,
    payment_mode: mode,
    network: terms(mode).network,
    asset: terms(mode).asset,
    pay_to: terms(mode).pay_to,
  };
}

/** A stub of the service's free routes; /synthesize answers with audio and no payment. */
function stubService(mode: "off" | "local", config: Record<string, unknown> = CONFIG) {
  const calls: { method: string; url: URL; headers: Headers }[] = [];
  const fetchStub = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(input, init);
    const url = new URL(request.url);
    calls.push({ method: request.method, url, headers: request.headers });
    switch (url.pathname) {
      case "/v1/config":
        return Response.json(config);
      case "/.well-known/x402":
        return Response.json({ version: 1, resources: [], instructions: "", payment: terms(mode) });
      case "/v1/price":
        return Response.json(quote(url, mode));
      case "/v1/voices":
        return Response.json({ voices: [] });
      case "/synthesize":
        return new Response(new Uint8Array([82, 73, 70, 70]), {
          status: 200,
          headers: { "content-type": "audio/wav", "X-Smalltts-Duration-S": "3.610", "X-Smalltts-Seed": "7" },
        });
      default:
        return new Response("not found", { status: 404 });
    }
  });
  vi.stubGlobal("fetch", fetchStub);
  return calls;
}

async function renderPage() {
  vi.resetModules(); // the API client binds fetch when its module loads
  const { Root } = await import("../../src/Root");
  render(
    <QueryClientProvider client={new QueryClient({ defaultOptions: { queries: { retry: false } } })}>
      <Root />
    </QueryClientProvider>,
  );
  await screen.findByRole("heading", { name: "Make speech" });
}

beforeEach(() => {
  vi.stubGlobal("location", new URL("http://test/"));
});

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("the page", () => {
  it("says that the demo model performs no tags and offers none", async () => {
    stubService("off", { ...CONFIG, model_id: "local/demo", trained: true, tags_performed: false });
    await renderPage();
    expect(screen.getByText(/never heard a laugh or a sigh/)).toBeTruthy();
    expect(screen.queryByText(/It can \[cough\]/)).toBeNull();
    expect(screen.queryByRole("button", { name: /laughter/ })).toBeNull();
    expect(screen.queryByText(/Laughing:/)).toBeNull();
    expect(screen.getByText(/A greeting:/)).toBeTruthy();
  });

  it("loads limits and terms from the service and says plainly that the model is untrained", async () => {
    stubService("local");
    await renderPage();
    expect(screen.getByText(/runs an untrained model \(random-tiny-seed0\)/)).toBeTruthy();
    expect(screen.getByText("$0.01/min · USDC on Base Sepolia")).toBeTruthy();
    expect(screen.getByText(`${DEFAULT_TEXT.length} / 100 characters`)).toBeTruthy(); // the default text, against the served limit
    expect(screen.getAllByRole("button", { name: /^\[/ }).map((button) => button.textContent)).toEqual([
      "[laughter]",
      "[cough]",
      "[sigh]",
    ]);
    // The quote for the default text arrives after the debounce, with the server's estimate.
    expect((await screen.findByText("Price: 0.000603 USDC for 3.61 s")).textContent).toBeTruthy();
    expect(screen.getByText("(about 3.6 s for this text)")).toBeTruthy();
  });

  it("on a paid network, asks for a wallet and a reference before anything can be sent", async () => {
    const calls = stubService("local");
    await renderPage();
    await screen.findByText(/Price: 0.000603 USDC/);
    const pay = screen.getByRole<HTMLButtonElement>("button", { name: "Pay 0.000603 USDC and synthesize" });
    expect(pay.disabled).toBe(true);
    expect(screen.getByText("To continue: choose a reference voice, connect a wallet.")).toBeTruthy();
    expect(calls.some((call) => call.url.pathname === "/v1/devchain")).toBe(false); // not a dev chain: no 404
    expect(calls.some((call) => call.url.pathname === "/synthesize")).toBe(false);
  });

  it("offers the extension-free wallets the service allows, without reaching any other host", async () => {
    const calls = stubService("local", {
      ...CONFIG,
      walletconnect_project_id: "0123456789abcdef0123456789abcdef",
      contract_wallets_accepted: true,
    });
    await renderPage();
    expect(screen.getByRole("button", { name: "Connect Coinbase Smart Wallet" })).toBeTruthy();
    expect(screen.getByRole("button", { name: "Connect WalletConnect" })).toBeTruthy();
    expect(screen.getByText(/scan a QR code/)).toBeTruthy();
    expect(new Set(calls.map((call) => call.url.host))).toEqual(new Set(["test"]));
  });

  it("offers no extension-free wallet by default (no project id, contract wallets refused)", async () => {
    stubService("local", { ...CONFIG, walletconnect_project_id: null, contract_wallets_accepted: false });
    await renderPage();
    expect(screen.queryByRole("button", { name: /Smart Wallet|WalletConnect/ })).toBeNull();
  });

  it("with payments off, synthesizes without a wallet and shows the audio", async () => {
    const calls = stubService("off");
    await renderPage();
    expect(screen.getByText("free on this server")).toBeTruthy();
    expect(screen.queryByRole("heading", { name: "Wallet" })).toBeNull();

    fireEvent.change(screen.getByLabelText("Reference audio file"), {
      target: { files: [new File([new Uint8Array(64)], "voice.wav", { type: "audio/wav" })] },
    });
    const go = await screen.findByRole<HTMLButtonElement>("button", { name: "Synthesize" });
    await waitFor(() => expect(go.disabled).toBe(false));
    fireEvent.click(go);

    const audio = await screen.findByLabelText<HTMLAudioElement>("Generated speech");
    expect(audio.getAttribute("src")).toMatch(/^blob:/);
    const posts = calls.filter((call) => call.url.pathname === "/synthesize");
    expect(posts).toHaveLength(1);
    expect(posts[0]!.url.searchParams.get("duration")).toBe("3.61");
    expect(posts[0]!.headers.has("PAYMENT-SIGNATURE")).toBe(false);
    expect(screen.getByText("smalltts-7.wav", { exact: false })).toBeTruthy();
  });
});
