import { fireEvent, render, screen } from "@testing-library/react";
import { useState } from "react";
import { describe, expect, it } from "vitest";
import { TextInput } from "../../src/components/TextInput";

const TAGS = ["laughter", "cough", "sigh"];

function Controlled({ initial, maxChars = 20 }: { initial: string; maxChars?: number }) {
  const [text, setText] = useState(initial);
  return <TextInput value={text} onChange={setText} maxChars={maxChars} tags={TAGS} />;
}

describe("TextInput", () => {
  it("counts characters against the server's limit and flags text over it", () => {
    render(<Controlled initial="Hello" />);
    const box = screen.getByLabelText("Text to speak");
    expect(screen.getByText("5 / 20 characters")).toBeTruthy();
    expect(box.getAttribute("aria-invalid")).toBe("false");

    fireEvent.change(box, { target: { value: "x".repeat(23) } });

    expect(screen.getByText("23 / 20 characters — 3 over the limit")).toBeTruthy();
    expect(box.getAttribute("aria-invalid")).toBe("true");
  });

  it("counts code points as the server does, not UTF-16 units", () => {
    render(<Controlled initial={"héllo 👋"} />);
    expect(screen.getByText("7 / 20 characters")).toBeTruthy();
  });

  it("offers one button per tag and inserts the tag at the caret with spaces around it", () => {
    render(<Controlled initial="Hello there" maxChars={100} />);
    const box = screen.getByLabelText<HTMLTextAreaElement>("Text to speak");
    expect(screen.getAllByRole("button").map((button) => button.textContent)).toEqual([
      "[laughter]",
      "[cough]",
      "[sigh]",
    ]);

    box.setSelectionRange(5, 5); // after "Hello"
    fireEvent.click(screen.getByRole("button", { name: "[laughter]" }));

    expect(box.value).toBe("Hello [laughter] there");
  });

  it("appends a tag at the end of the text", () => {
    render(<Controlled initial="Well." maxChars={100} />);
    const box = screen.getByLabelText<HTMLTextAreaElement>("Text to speak");
    box.setSelectionRange(5, 5);
    fireEvent.click(screen.getByRole("button", { name: "[sigh]" }));
    expect(box.value).toBe("Well. [sigh]");
  });
});
