// Example texts that show what the model does with punctuation and event tags; one click loads one.
export const SAMPLE_TEXTS: readonly { title: string; text: string }[] = [
  { title: "A greeting", text: "Hello! This is smalltts, a small model that speaks in the voice you give it." },
  { title: "Laughing", text: "I told him the joke twice [laughter] and he still did not get it." },
  { title: "A cough and a sigh", text: "Sorry [cough] excuse me. [sigh] Long day. Where was I?" },
  { title: "A question", text: "Wait, you paid for this with a signature? No gas, no account, just one request?" },
];

interface SamplesProps {
  onUse: (text: string) => void;
  /** Only offer tags the server knows; samples that use another tag are left out. */
  knownTags: readonly string[];
}

export function Samples({ onUse, knownTags }: SamplesProps) {
  const known = new Set(knownTags);
  const usable = SAMPLE_TEXTS.filter((sample) =>
    [...sample.text.matchAll(/\[([^\]]+)\]/g)].every((match) => known.has(match[1] ?? "")),
  );
  return (
    <section className="card" aria-labelledby="samples-heading">
      <h2 id="samples-heading">Samples</h2>
      <p className="muted">Load an example text, then pay and listen. Tags in brackets are performed, not read.</p>
      <ul className="samples">
        {usable.map((sample) => (
          <li key={sample.title}>
            <p>
              <strong>{sample.title}:</strong> {sample.text}
            </p>
            <button type="button" onClick={() => onUse(sample.text)}>
              Use this text
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}
