// The typed API client, generated from the service's OpenAPI schema (frontend/openapi.json ->
// src/api/schema.d.ts by `npm run gen:api`); nothing here is written by hand but the base URL and the URL of
// the one route the page loads as an <audio> src instead of fetching it.
import createClient from "openapi-fetch";
import type { paths } from "./schema";

/** Same origin by default: `smalltts run` serves this page, and `npm run dev` proxies the API. */
export const API_BASE_URL: string = import.meta.env.VITE_API_URL ?? globalThis.location?.origin ?? "";

export const api = createClient<paths>({ baseUrl: API_BASE_URL });
export type ApiClient = typeof api;

// `satisfies` ties the path to the generated schema: typecheck fails if the route is renamed or removed.
const VOICE_AUDIO_PATH = "/v1/voices/{voice_id}/audio" satisfies keyof paths;

/** Where a saved voice's reference recording plays from (GET /v1/voices/{voice_id}/audio, audio/wav, free). */
export function voiceAudioUrl(voiceId: string): string {
  return `${API_BASE_URL}${VOICE_AUDIO_PATH.replace("{voice_id}", encodeURIComponent(voiceId))}`;
}
