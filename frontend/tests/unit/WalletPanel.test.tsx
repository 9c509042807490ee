import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { act, fireEvent, render, screen, waitFor } from "@testing-library/react";
import type { ReactNode } from "react";
import { base, baseSepolia } from "viem/chains";
import { describe, expect, it, vi } from "vitest";
import { createConfig, http, WagmiProvider, type Config, type CreateConnectorFn } from "wagmi";
import { connect } from "wagmi/actions";
import { mock } from "wagmi/connectors";
import { WalletPanel } from "../../src/components/WalletPanel";
import type { WalletOption } from "../../src/wallet/connectors";
import { PayerProvider, type DevWallet } from "../../src/wallet/payer";

const WALLET = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";
const DEV: DevWallet = {
  address: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
  privateKey: "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
};

function mockConfig(): Config {
  return createConfig({
    chains: [baseSepolia, base],
    connectors: [mock({ accounts: [WALLET] })],
    transports: { [baseSepolia.id]: http(), [base.id]: http() },
    multiInjectedProviderDiscovery: false,
    storage: null,
  });
}

function renderPanel(config: Config, devWallet: DevWallet | null, panel: Partial<Parameters<typeof WalletPanel>[0]> = {}) {
  const wrap = (children: ReactNode) => (
    <QueryClientProvider client={new QueryClient()}>
      <WagmiProvider config={config} reconnectOnMount={false}>
        <PayerProvider requiredChainId={baseSepolia.id} devWallet={devWallet}>
          {children}
        </PayerProvider>
      </WagmiProvider>
    </QueryClientProvider>
  );
  const props = {
    chainName: "Base Sepolia",
    requiredChainId: baseSepolia.id,
    wallets: [],
    balanceAtomic: 5_000_000n,
    decimals: 6,
    priceAtomic: 334n,
    ...panel,
  };
  return render(wrap(<WalletPanel {...props} />));
}

describe("WalletPanel", () => {
  it("offers the injected wallets, and the dev wallet only on the dev chain", () => {
    const { unmount } = renderPanel(mockConfig(), null);
    expect(screen.getByRole("button", { name: "Connect Mock Connector" })).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Use dev wallet" })).toBeNull();
    unmount();

    renderPanel(mockConfig(), DEV);
    expect(screen.getByRole("button", { name: "Use dev wallet" })).toBeTruthy();
  });

  it("uses the dev wallet: its address and balance, then disconnects", () => {
    renderPanel(mockConfig(), DEV, { balanceAtomic: 999_999_666n });

    fireEvent.click(screen.getByRole("button", { name: "Use dev wallet" }));

    expect(screen.getByTestId("payer-address").getAttribute("title")).toBe(DEV.address);
    expect(screen.getByText("dev wallet (local test key)")).toBeTruthy();
    expect(screen.getByTestId("balance").textContent).toBe("999.999666 USDC");
    fireEvent.click(screen.getByRole("button", { name: "Disconnect" }));
    expect(screen.getByRole("button", { name: "Use dev wallet" })).toBeTruthy();
  });

  it("connects an injected wallet on the payment chain", async () => {
    renderPanel(mockConfig(), null);
    fireEvent.click(screen.getByRole("button", { name: "Connect Mock Connector" }));
    await waitFor(() => expect(screen.getByTestId("payer-address").getAttribute("title")).toBe(WALLET));
    expect(screen.getByText("Base Sepolia")).toBeTruthy();
    expect(screen.queryByRole("alert")).toBeNull();
  });

  it("asks to switch a wallet that is on another network, and switches it", async () => {
    const config = mockConfig();
    await connect(config, { connector: config.connectors[0]!, chainId: base.id });
    renderPanel(config, null);

    const prompt = await screen.findByRole("alert");
    expect(prompt.textContent).toMatch(/on another network. This service takes payment on Base Sepolia/);
    await act(async () => {
      fireEvent.click(screen.getByRole("button", { name: "Switch to Base Sepolia" }));
    });

    await waitFor(() => expect(screen.queryByRole("alert")).toBeNull());
    expect(config.state.chainId).toBe(baseSepolia.id);
  });

  it("builds an extension-free wallet's connector only when it is picked, then pays with it", async () => {
    // A mock that calls itself a Coinbase wallet, as the smart wallet's connector does.
    const create = vi.fn((): CreateConnectorFn => (config) => ({ ...mock({ accounts: [WALLET] })(config), type: "coinbaseWallet" }));
    const smartWallet: WalletOption = { id: "coinbaseSmartWallet", label: "Passkey Wallet", hint: "Use a passkey.", create };
    renderPanel(mockConfig(), DEV, { wallets: [smartWallet] });

    expect(screen.getByText("Use a passkey.")).toBeTruthy();
    expect(screen.getByRole("button", { name: "Use dev wallet" })).toBeTruthy();
    expect(create).not.toHaveBeenCalled();
    fireEvent.click(screen.getByRole("button", { name: "Connect Passkey Wallet" }));

    await waitFor(() => expect(screen.getByTestId("payer-address").getAttribute("title")).toBe(WALLET));
    expect(create).toHaveBeenCalledTimes(1);
    expect(screen.getByText(/A smart wallet pays as a contract wallet/)).toBeTruthy();
  });

  it("warns before paying when the balance is below the price", () => {
    renderPanel(mockConfig(), DEV, { balanceAtomic: 100n, priceAtomic: 334n });
    fireEvent.click(screen.getByRole("button", { name: "Use dev wallet" }));
    expect(screen.getByText(/Your balance is below the price of this request/)).toBeTruthy();
  });
});
