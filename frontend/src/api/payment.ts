// The service's payment terms and live price quotes, both from free routes.
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { api } from "./client";
import { unwrap } from "./queries";
import type { components } from "./schema";

export type PaymentTermsInfo = components["schemas"]["PaymentTermsInfo"];
export type PriceQuote = components["schemas"]["PriceQuote"];

/** USDC has 6 decimals on every network the service takes (Base, Base Sepolia and the dev chain's token). */
export const USDC_DECIMALS = 6;

/** Network, token and rate, from the x402 discovery document. */
export function usePaymentTerms() {
  return useQuery({
    queryKey: ["payment-terms"],
    queryFn: async () => unwrap(await api.GET("/.well-known/x402")).payment,
    staleTime: Infinity,
  });
}

export type QuoteRequest = { kind: "duration"; durationS: number } | { kind: "text"; text: string };

/** The exact amount the paid request will ask for: for a manual duration, or for the text's estimate. */
export function useQuote(request: QuoteRequest | null) {
  return useQuery({
    queryKey: ["quote", request],
    queryFn: async ({ signal }) =>
      unwrap(
        await api.GET("/v1/price", {
          params: {
            query: request?.kind === "duration" ? { duration: String(request.durationS) } : { text: request?.text ?? "" },
          },
          signal,
        }),
      ),
    enabled: request !== null,
    placeholderData: keepPreviousData,
    staleTime: 60_000,
    retry: false,
  });
}
