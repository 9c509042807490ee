import { formatUnits } from "viem";

/** "0.003 USDC" from atomic units; at least two decimals so that prices read as money. */
export function formatToken(atomic: bigint | string, decimals: number, symbol = "USDC"): string {
  const [whole = "0", fraction = ""] = formatUnits(BigInt(atomic), decimals).split(".");
  return `${whole}.${fraction.padEnd(2, "0")} ${symbol}`;
}
