import { baseSepolia } from "viem/chains";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { CreateConnectorFn } from "wagmi";
import { walletOptions, type WalletSetup } from "../../src/wallet/connectors";

// The SDK itself is replaced: the test checks what the connector asks of it, without a popup or a network.
const sdk = vi.hoisted(() => ({ options: [] as unknown[] }));
vi.mock("@coinbase/wallet-sdk", () => ({
  createCoinbaseWalletSDK: (options: unknown) => {
    sdk.options.push(options);
    return { getProvider: () => ({ request: async () => [] }) };
  },
}));

const PROJECT_ID = "0123456789abcdef0123456789abcdef";
const ON_BASE_SEPOLIA: WalletSetup = {
  chainId: baseSepolia.id,
  devChain: false,
  walletConnectProjectId: null,
  contractWalletsAccepted: true,
};

const ids = (setup: WalletSetup) => walletOptions(setup).map((option) => option.id);

/** What wagmi's createConfig hands a connector function, minus anything that could start I/O. */
function build(connectorFn: CreateConnectorFn) {
  const emitter = { uid: "test", on: vi.fn(), off: vi.fn(), once: vi.fn(), emit: vi.fn(), listenerCount: () => 0 };
  return connectorFn({ chains: [baseSepolia], emitter, storage: null } as unknown as Parameters<CreateConnectorFn>[0]);
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("walletOptions", () => {
  it("offers the Coinbase Smart Wallet on Base and Base Sepolia when contract wallets may pay", () => {
    expect(ids(ON_BASE_SEPOLIA)).toEqual(["coinbaseSmartWallet"]);
    expect(ids({ ...ON_BASE_SEPOLIA, chainId: 8453 })).toEqual(["coinbaseSmartWallet"]);
  });

  it("does not offer a smart wallet the service would refuse", () => {
    expect(ids({ ...ON_BASE_SEPOLIA, contractWalletsAccepted: false })).toEqual([]);
  });

  it("adds WalletConnect only with a project id", () => {
    expect(ids({ ...ON_BASE_SEPOLIA, walletConnectProjectId: PROJECT_ID })).toEqual(["coinbaseSmartWallet", "walletConnect"]);
    expect(ids({ ...ON_BASE_SEPOLIA, contractWalletsAccepted: false, walletConnectProjectId: PROJECT_ID })).toEqual([
      "walletConnect",
    ]);
  });

  it("offers neither on the dev chain, whose anvil they cannot reach", () => {
    expect(ids({ ...ON_BASE_SEPOLIA, devChain: true, walletConnectProjectId: PROJECT_ID })).toEqual([]);
  });

  it("builds the connectors only when asked, and building one reaches no network", () => {
    const fetchSpy = vi.fn();
    const socketSpy = vi.fn();
    vi.stubGlobal("fetch", fetchSpy);
    vi.stubGlobal("WebSocket", socketSpy);
    const [smart, walletConnect] = walletOptions({ ...ON_BASE_SEPOLIA, walletConnectProjectId: PROJECT_ID });

    const coinbase = build(smart!.create());
    expect([coinbase.id, coinbase.type, coinbase.name]).toEqual(["coinbaseWalletSDK", "coinbaseWallet", "Coinbase Smart Wallet"]);
    const relay = build(walletConnect!.create());
    expect([relay.id, relay.type]).toEqual(["walletConnect", "walletConnect"]);
    expect(fetchSpy).not.toHaveBeenCalled();
    expect(socketSpy).not.toHaveBeenCalled();
    expect(sdk.options).toEqual([]); // the SDK loads when the user connects, not before
  });

  it("asks the Coinbase SDK for the smart wallet only (passkeys), with no app id", async () => {
    const coinbase = build(walletOptions(ON_BASE_SEPOLIA)[0]!.create());
    await coinbase.getProvider();
    expect(sdk.options).toEqual([
      {
        appName: "smalltts",
        appChainIds: [baseSepolia.id],
        preference: { options: "smartWalletOnly" },
      },
    ]);
  });
});
