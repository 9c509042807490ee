import { describe, expect, it } from "vitest";
import { fetchDevchain } from "../../src/api/devchain";

const FACTS = {
  rpc_url: "http://127.0.0.1:8545",
  chain_id: 84532,
  network: "eip155:84532",
  token_address: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
  pay_to: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
  payer_address: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
  payer_key: "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
};

const answer = (response: Response) => (async () => response) as unknown as typeof fetch;

describe("fetchDevchain", () => {
  it("reads the dev chain's facts", async () => {
    expect(await fetchDevchain(answer(Response.json(FACTS)))).toEqual(FACTS);
  });

  it("gives null on a real network, where the route does not exist", async () => {
    expect(await fetchDevchain(answer(new Response("not found", { status: 404 })))).toBeNull();
  });

  it("refuses an answer that does not look like a dev chain", async () => {
    await expect(fetchDevchain(answer(Response.json({ ...FACTS, payer_key: "0x1234" })))).rejects.toThrow(
      /unexpected shape/,
    );
    await expect(fetchDevchain(answer(new Response("", { status: 500 })))).rejects.toThrow(/HTTP 500/);
  });
});
