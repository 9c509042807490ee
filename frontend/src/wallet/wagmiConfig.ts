// wagmi for the one payment chain. Only the injected wallets are configured (window.ethereum and every
// EIP-6963 wallet the browser announces): wagmi reconnects configured connectors at page load, and that must
// not load a wallet SDK or open a socket. The extension-free wallets (connectors.ts) are built on demand.
import { createConfig, http, type Config } from "wagmi";
import { injected } from "wagmi/connectors";
import type { Chain } from "viem";

export function createWagmiConfig(chain: Chain): Config {
  return createConfig({
    chains: [chain],
    connectors: [injected()],
    multiInjectedProviderDiscovery: true,
    transports: { [chain.id]: http() },
  });
}
