import { defineConfig, mergeConfig } from "vitest/config";
import viteConfig from "./vite.config.ts";

export default mergeConfig(
  viteConfig,
  defineConfig({
    test: {
      environment: "jsdom",
      include: ["tests/unit/**/*.test.{ts,tsx}"],
      setupFiles: ["tests/unit/setup.ts"],
      restoreMocks: true,
      // The first test of a file imports wagmi + viem cold; on a loaded 2-core CI box that alone can take seconds.
      testTimeout: 30_000,
      // Bundled through Vite, so that vi.mock reaches the wallet SDKs its connectors import on demand.
      server: { deps: { inline: ["wagmi", "@wagmi/connectors"] } },
    },
  }),
);
