// wagmi for the one payment chain: injected wallets only (window.ethereum and every EIP-6963 wallet the
// browser announces), so no WalletConnect or other hosted project id is needed.
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
