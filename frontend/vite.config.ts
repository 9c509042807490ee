import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// `npm run dev` serves the page on :5173 and forwards the API to a running `smalltts run` (same origin, so the
// browser can read the x402 headers without CORS). Point it elsewhere with SMALLTTS_API_URL.
const apiUrl = process.env.SMALLTTS_API_URL ?? "http://127.0.0.1:8000";
const apiPaths = ["/synthesize", "/v1", "/health", "/ready", "/metrics", "/.well-known", "/openapi.json", "/docs"];

export default defineConfig({
  plugins: [react()],
  server: {
    host: "127.0.0.1",
    proxy: Object.fromEntries(apiPaths.map((path) => [path, { target: apiUrl, changeOrigin: true }])),
  },
  build: {
    outDir: "dist",
    // viem + wagmi + x402 make one ~600 kB chunk; splitting it would not make the first paint faster.
    chunkSizeWarningLimit: 1500,
  },
});
