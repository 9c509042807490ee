// The one chain the service takes payment on, as a viem chain, from its CAIP-2 network id.
import { defineChain, type Chain } from "viem";
import { base, baseSepolia } from "viem/chains";

const KNOWN_CHAINS: readonly Chain[] = [base, baseSepolia];

/** 84532 from "eip155:84532"; throws on anything that is not an EVM CAIP-2 id. */
export function chainIdOf(network: string): number {
  const match = /^eip155:(\d+)$/.exec(network);
  if (!match?.[1]) throw new Error(`not an EVM network id: ${network}`);
  return Number(match[1]);
}

/** The payment chain. On the dev chain the id is Base Sepolia's but the RPC is the local anvil. */
export function paymentChain(network: string, devRpcUrl?: string): Chain {
  const chainId = chainIdOf(network);
  const known = KNOWN_CHAINS.find((chain) => chain.id === chainId);
  if (devRpcUrl !== undefined) {
    return defineChain({
      id: chainId,
      name: "smalltts dev chain",
      nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
      rpcUrls: { default: { http: [devRpcUrl] } },
      testnet: true,
    });
  }
  if (known) return known;
  throw new Error(`the service takes payment on ${network}, which this page does not know`);
}

/** "Base Sepolia" for eip155:84532, for messages; falls back to the raw id. */
export function networkName(network: string): string {
  try {
    const chainId = chainIdOf(network);
    return KNOWN_CHAINS.find((chain) => chain.id === chainId)?.name ?? network;
  } catch {
    return network;
  }
}

export function shortAddress(address: string): string {
  return address.length > 12 ? `${address.slice(0, 6)}…${address.slice(-4)}` : address;
}
