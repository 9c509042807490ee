// The typed API client, generated from the service's OpenAPI schema (frontend/openapi.json ->
// src/api/schema.d.ts by `npm run gen:api`); nothing here is written by hand but the base URL.
import createClient from "openapi-fetch";
import type { paths } from "./schema";

/** Same origin by default: `smalltts run` serves this page, and `npm run dev` proxies the API. */
export const API_BASE_URL: string = import.meta.env.VITE_API_URL ?? globalThis.location?.origin ?? "";

export const api = createClient<paths>({ baseUrl: API_BASE_URL });
export type ApiClient = typeof api;
