import { useId, useRef } from "react";

interface TextInputProps {
  value: string;
  onChange: (text: string) => void;
  maxChars: number;
  /** Event tags without brackets, e.g. "laughter"; each becomes a button that inserts "[laughter]". */
  tags: readonly string[];
}

/** The text to speak, with one button per event tag and a character counter against the server's limit. */
export function TextInput({ value, onChange, maxChars, tags }: TextInputProps) {
  const id = useId();
  const textRef = useRef<HTMLTextAreaElement>(null);
  const length = [...value].length; // code points, as the server counts them
  const over = length > maxChars;

  const insertTag = (tag: string) => {
    const area = textRef.current;
    const start = area?.selectionStart ?? value.length;
    const end = area?.selectionEnd ?? value.length;
    const before = value.slice(0, start);
    const after = value.slice(end);
    const pad = before.length > 0 && !/\s$/.test(before) ? " " : "";
    const insert = `${pad}[${tag}]${after.length > 0 && !/^\s/.test(after) ? " " : ""}`;
    onChange(before + insert + after);
    requestAnimationFrame(() => {
      area?.focus();
      const caret = before.length + insert.length;
      area?.setSelectionRange(caret, caret);
    });
  };

  return (
    <div className="field">
      <label htmlFor={`${id}-text`}>Text to speak</label>
      <textarea
        id={`${id}-text`}
        ref={textRef}
        value={value}
        rows={4}
        onChange={(event) => onChange(event.target.value)}
        aria-describedby={`${id}-count`}
        aria-invalid={over}
        spellCheck
      />
      <p id={`${id}-count`} className={over ? "counter counter-over" : "counter"} aria-live="polite">
        {length} / {maxChars} characters{over ? ` — ${length - maxChars} over the limit` : ""}
      </p>
      {tags.length > 0 && (
        <div className="tags" role="group" aria-label="Insert an event tag">
          {tags.map((tag) => (
            <button key={tag} type="button" className="tag" onClick={() => insertTag(tag)}>
              [{tag}]
            </button>
          ))}
        </div>
      )}
    </div>
  );
}
