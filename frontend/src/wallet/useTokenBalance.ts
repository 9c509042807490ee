// The payer's token balance, read from the payment chain (wagmi's transport: the dev chain's anvil, or the
// network's public RPC), independent of which wallet is connected.
import { erc20Abi, type Address } from "viem";
import { useReadContract } from "wagmi";

export function useTokenBalance(asset: Address | null, owner: Address | null, chainId: number) {
  return useReadContract({
    address: asset ?? undefined,
    abi: erc20Abi,
    functionName: "balanceOf",
    args: owner ? [owner] : undefined,
    chainId,
    query: { enabled: asset !== null && owner !== null, refetchInterval: 15_000 },
  });
}
