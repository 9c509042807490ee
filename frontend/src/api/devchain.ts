// The dev chain's facts, from GET /v1/devchain. That route exists only while the service takes payment on
// its local anvil chain, so it is not in the production OpenAPI schema and is read here with a runtime
// check. The page asks only when the discovery document names the devchain network (so a real deployment
// never sees a 404 in its console); a 404 still means "not a dev chain".
import { useQuery } from "@tanstack/react-query";
import { API_BASE_URL } from "./client";

export interface DevchainInfo {
  rpc_url: string;
  chain_id: number;
  network: string;
  token_address: string;
  pay_to: string;
  payer_address: string;
  /** anvil's public test key of the funded dev payer: worthless anywhere but on the local chain. */
  payer_key: string;
}

const HEX_ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const HEX_KEY = /^0x[0-9a-fA-F]{64}$/;

export function parseDevchainInfo(body: unknown): DevchainInfo {
  const value = body as Partial<Record<keyof DevchainInfo, unknown>>;
  const ok =
    typeof value === "object" &&
    value !== null &&
    typeof value.rpc_url === "string" &&
    typeof value.chain_id === "number" &&
    typeof value.network === "string" &&
    typeof value.token_address === "string" &&
    HEX_ADDRESS.test(value.token_address) &&
    typeof value.pay_to === "string" &&
    typeof value.payer_address === "string" &&
    HEX_ADDRESS.test(value.payer_address) &&
    typeof value.payer_key === "string" &&
    HEX_KEY.test(value.payer_key);
  if (!ok) throw new Error("GET /v1/devchain answered with an unexpected shape");
  return value as DevchainInfo;
}

/** The dev chain's facts, or null when the service runs on a real network. */
export async function fetchDevchain(fetchFn: typeof fetch = fetch): Promise<DevchainInfo | null> {
  const response = await fetchFn(`${API_BASE_URL}/v1/devchain`, { headers: { Accept: "application/json" } });
  if (response.status === 404) return null;
  if (!response.ok) throw new Error(`GET /v1/devchain answered HTTP ${response.status}`);
  return parseDevchainInfo(await response.json());
}

/** The dev chain's facts when `networkName` (from /.well-known/x402) is "devchain", else null. */
export function useDevchain(networkName: string | null | undefined) {
  const enabled = networkName === "devchain";
  const query = useQuery({ queryKey: ["devchain"], queryFn: () => fetchDevchain(), staleTime: Infinity, retry: 1, enabled });
  return { ...query, data: enabled ? query.data : null, isPending: networkName === undefined || (enabled && query.isPending) };
}
