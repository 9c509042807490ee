// Loads what the page needs before wallets can be set up (limits, payment terms, the dev chain if any),
// then builds wagmi for the one payment chain and renders the app.
import { useMemo } from "react";
import { WagmiProvider } from "wagmi";
import { useDevchain } from "./api/devchain";
import { usePaymentTerms } from "./api/payment";
import { useServiceConfig } from "./api/queries";
import { App } from "./App";
import { chainIdOf, networkName, paymentChain } from "./wallet/chains";
import { PayerProvider } from "./wallet/payer";
import { createWagmiConfig } from "./wallet/wagmiConfig";

export function Root() {
  const config = useServiceConfig();
  const terms = usePaymentTerms();
  const devchain = useDevchain();

  const network = terms.data?.network ?? null;
  const devRpcUrl = devchain.data?.rpc_url;
  const setup = useMemo(() => {
    if (network === null || devchain.isPending) return null;
    const chain = paymentChain(network, devRpcUrl);
    return { chain, wagmi: createWagmiConfig(chain) };
  }, [network, devRpcUrl, devchain.isPending]);

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
  if (terms.data.mode === "off" || network === null || setup === null) {
    return <App config={config.data} terms={terms.data} payment={null} />;
  }
  const devWallet = devchain.data
    ? { address: devchain.data.payer_address as `0x${string}`, privateKey: devchain.data.payer_key as `0x${string}` }
    : null;
  return (
    <WagmiProvider config={setup.wagmi}>
      <PayerProvider requiredChainId={chainIdOf(network)} devWallet={devWallet}>
        <App
          config={config.data}
          terms={terms.data}
          payment={{
            chain: setup.chain,
            chainName: devchain.data ? "the local dev chain" : networkName(network),
            isDevchain: devchain.data !== null && devchain.data !== undefined,
          }}
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
