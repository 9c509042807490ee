interface HowItWorksProps {
  priceText: string | null;
  networkLabel: string | null;
}

export function HowItWorks({ priceText, networkLabel }: HowItWorksProps) {
  return (
    <section className="card" aria-labelledby="how-heading">
      <h2 id="how-heading">How it works</h2>
      <ol>
        <li>Give a reference voice: a few seconds of clean speech, uploaded, recorded or picked from saved voices.</li>
        <li>Type the text. Event tags such as [laughter] are performed, not read out.</li>
        <li>
          Pick the length, or let the server estimate it from the text. The price is per second of audio
          {priceText ? ` (${priceText})` : ""}, quoted before you pay.
        </li>
        <li>
          Press synthesize. The server answers <code>402 Payment Required</code>; your wallet signs a USDC
          transfer authorization for exactly the quoted amount{networkLabel ? ` on ${networkLabel}` : ""} (no gas,
          no account). The request is sent once more with the signature, the audio is generated, and only then is
          the payment settled on-chain. If generation fails, nothing is charged.
        </li>
      </ol>
      <p className="muted">
        Machine-readable terms: <a href="/.well-known/x402">/.well-known/x402</a> · API:{" "}
        <a href="/docs">/docs</a>
      </p>
    </section>
  );
}
