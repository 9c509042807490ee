// Loads what the page needs before wallets can be set up (limits, payment terms, the dev chain if any),
// then builds wagmi for the one payment chain and renders the app.
import { useMemo } from "react";
import { baseSepolia } from "viem/chains";
import { WagmiProvider } from "wagmi";
import { useDevchain } from "./api/devchain";
import { usePaymentTerms } from "./api/payment";
import { useServiceConfig } from "./api/queries";
import { App } from "./App";
import { networkName, paymentChain } from "./wallet/chains";
import { walletOptions } from "./wallet/connectors";
import { PayerProvider } from "./wallet/payer";
import { createWagmiConfig } from "./wallet/wagmiConfig";

export function Root() {
  const config = useServiceConfig();
  const terms = usePaymentTerms();
  const devchain = useDevchain(terms.isError ? null : terms.data?.network_name);

  const network = terms.data?.mode === "off" ? null : (terms.data?.network ?? null);
  const devRpcUrl = devchain.data?.rpc_url;
  const chain = useMemo(
    // With payments off nothing is paid, but the wallet hooks still need a wagmi config to live in.
    () => (network === null ? baseSepolia : paymentChain(network, devRpcUrl)),
    [network, devRpcUrl],
  );
  const wagmi = useMemo(() => createWagmiConfig(chain), [chain]);

  if (config.isError || terms.isError) {
    const error = config.error ?? terms.error;
    return (
      <Shell>
        <p className="error" role="alert">
          The service is not available: {error?.message}. Reload the page in a moment.
        </p>
      </Shell>
    );
  }
  if (!config.data || !terms.data || devchain.isPending) {
    return (
      <Shell>
        <p aria-live="polite">Loading the service…</p>
      </Shell>
    );
  }
  const devWallet = devchain.data
    ? { address: devchain.data.payer_address as `0x${string}`, privateKey: devchain.data.payer_key as `0x${string}` }
    : null;
  return (
    <WagmiProvider config={wagmi}>
      <PayerProvider requiredChainId={chain.id} devWallet={devWallet}>
        <App
          config={config.data}
          terms={terms.data}
          payment={
            network === null
              ? null
              : {
                  chain,
                  chainName: devWallet ? "the local dev chain" : networkName(network),
                  wallets: walletOptions({
                    chainId: chain.id,
                    devChain: terms.data.network_name === "devchain",
                    walletConnectProjectId: config.data.walletconnect_project_id ?? null,
                    contractWalletsAccepted: config.data.contract_wallets_accepted,
                  }),
                }
          }
        />
      </PayerProvider>
    </WagmiProvider>
  );
}

export function Shell({ children }: { children: React.ReactNode }) {
  return (
    <div className="page">
      <header className="top">
        <div>
          <h1>smalltts</h1>
          <p className="tagline">Voice-cloning text to speech, paid per second with x402.</p>
        </div>
      </header>
      <main>{children}</main>
    </div>
  );
}
