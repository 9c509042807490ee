// TanStack Query hooks over the typed client: one per public route the page reads.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "./client";
import type { components } from "./schema";

export type ServiceConfig = components["schemas"]["ConfigResponse"];
export type VoiceInfo = components["schemas"]["VoiceResponse"];

/** Thrown for a non-2xx answer to a free route; `message` is the server's own words. */
export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, body: unknown) {
    const detail = (body as { error?: { message?: string } } | undefined)?.error?.message;
    super(detail ?? `the server answered HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
  }
}

/** The body of a 2xx answer from openapi-fetch, or an ApiError with the server's message. */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.data === undefined) throw new ApiError(result.response.status, result.error);
  return result.data;
}

export function useServiceConfig() {
  return useQuery({
    queryKey: ["config"],
    queryFn: async () => unwrap(await api.GET("/v1/config")),
    staleTime: Infinity,
    // /v1/config answers 503 while the model loads; keep asking until it is ready.
    retry: (failures, error) => error instanceof ApiError && error.status === 503 && failures < 30,
    retryDelay: 2000,
  });
}

export function useVoices(enabled: boolean) {
  return useQuery({
    queryKey: ["voices"],
    queryFn: async () => unwrap(await api.GET("/v1/voices")).voices,
    enabled,
  });
}

/** Store a reference as a named voice (free; the voice is reusable by id afterwards). */
export function useSaveVoice() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async ({ blob, fileName, name }: { blob: Blob; fileName: string; name: string }) => {
      const form = new FormData();
      form.append("audio", blob, fileName);
      form.append("name", name);
      return unwrap(
        await api.POST("/v1/voices", {
          body: form as never,
          bodySerializer: (body: unknown) => body as FormData,
        }),
      );
    },
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ["voices"] }),
  });
}
