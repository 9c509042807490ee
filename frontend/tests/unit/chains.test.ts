import { describe, expect, it } from "vitest";
import { chainIdOf, networkName, paymentChain, shortAddress } from "../../src/wallet/chains";

describe("paymentChain", () => {
  it("knows Base and Base Sepolia, with their explorers", () => {
    expect(paymentChain("eip155:8453").blockExplorers?.default.url).toBe("https://basescan.org");
    expect(paymentChain("eip155:84532").blockExplorers?.default.url).toBe("https://sepolia.basescan.org");
  });

  it("gives the dev chain Base Sepolia's id but the local RPC and no explorer (its transactions are local)", () => {
    const chain = paymentChain("eip155:84532", "http://127.0.0.1:8545");
    expect(chain.id).toBe(84532);
    expect(chain.rpcUrls.default.http).toEqual(["http://127.0.0.1:8545"]);
    expect(chain.blockExplorers).toBeUndefined();
  });

  it("refuses networks it cannot pay on", () => {
    expect(() => paymentChain("eip155:1")).toThrow(/does not know/);
    expect(() => chainIdOf("solana:mainnet")).toThrow(/not an EVM network/);
  });
});

describe("names", () => {
  it("names networks and shortens addresses for display", () => {
    expect(networkName("eip155:84532")).toBe("Base Sepolia");
    expect(networkName("eip155:999")).toBe("eip155:999");
    expect(shortAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")).toBe("0x7099…79C8");
  });
});
