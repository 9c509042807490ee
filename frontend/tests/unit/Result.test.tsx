import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { Result, type SynthesisResult } from "../../src/components/Result";

const result: SynthesisResult = {
  audio: new Blob(["RIFF"], { type: "audio/wav" }),
  audioUrl: "blob:test/1",
  fileName: "smalltts-42.wav",
  durationS: 2,
  seed: "42",
  modelId: "random-tiny-seed0",
  processingMs: 95.4,
  transaction: `0x${"ab".repeat(32)}`,
  paidAtomic: "334",
};

describe("Result", () => {
  it("plays the audio, offers the download and shows the settlement transaction", () => {
    render(<Result result={result} priceText="0.000334 USDC" explorerTxUrl={`https://sepolia.basescan.org/tx/${result.transaction}`} />);

    expect(screen.getByLabelText("Generated speech").getAttribute("src")).toBe("blob:test/1");
    const download = screen.getByRole("link", { name: "Download smalltts-42.wav" });
    expect([download.getAttribute("href"), download.getAttribute("download")]).toEqual(["blob:test/1", "smalltts-42.wav"]);
    expect(screen.getByTestId("tx-hash").textContent).toBe(result.transaction);
    expect(screen.getByRole("link", { name: result.transaction! }).getAttribute("href")).toBe(
      `https://sepolia.basescan.org/tx/${result.transaction}`,
    );
    expect(screen.getByText("0.000334 USDC")).toBeTruthy();
    expect(screen.getByText("2.00 s")).toBeTruthy();
  });

  it("shows the hash without a link on the dev chain, and nothing when nothing was paid", () => {
    const { rerender } = render(<Result result={result} priceText={null} explorerTxUrl={null} />);
    expect(screen.getByTestId("tx-hash").querySelector("a")).toBeNull();
    rerender(<Result result={{ ...result, transaction: null, paidAtomic: null }} priceText={null} explorerTxUrl={null} />);
    expect(screen.queryByTestId("tx-hash")).toBeNull();
  });
});
