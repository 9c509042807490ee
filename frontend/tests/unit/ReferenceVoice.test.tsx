import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { useState } from "react";
import { describe, expect, it, vi } from "vitest";
import { API_BASE_URL } from "../../src/api/client";
import { ReferenceVoice, type Reference, type SavedVoice } from "../../src/components/ReferenceVoice";

const limits = { maxUploadBytes: 1024, minReferenceS: 0.5, maxReferenceS: 30 };
const voices: SavedVoice[] = [
  { id: "default", name: "built-in", referenceS: 5.1 },
  { id: "v_3f2a9c0d1b4e5f60", name: "narrator", referenceS: 4.2 },
];

function Harness({ onChange }: { onChange: (reference: Reference | null) => void }) {
  const [value, setValue] = useState<Reference | null>(null);
  return (
    <ReferenceVoice
      value={value}
      onChange={(next) => {
        setValue(next);
        onChange(next);
      }}
      limits={limits}
      voices={voices}
    />
  );
}

function upload(file: File) {
  fireEvent.change(screen.getByLabelText("Reference audio file"), { target: { files: [file] } });
}

describe("ReferenceVoice", () => {
  it("refuses a file over the server's upload limit before anything is sent", async () => {
    const onChange = vi.fn();
    render(<Harness onChange={onChange} />);

    upload(new File([new Uint8Array(2048)], "big.wav", { type: "audio/wav" }));

    expect((await screen.findByRole("alert")).textContent).toBe("big.wav is 2 KiB; the limit is 1 KiB.");
    expect(onChange).toHaveBeenLastCalledWith(null);
    expect(screen.queryByLabelText("Reference voice playback")).toBeNull();
  });

  it("refuses a file that is not audio", async () => {
    render(<Harness onChange={() => {}} />);
    upload(new File(["x"], "notes.txt", { type: "text/plain" }));
    expect((await screen.findByRole("alert")).textContent).toMatch(/not a supported audio file/);
  });

  it("takes a valid file and offers to play it back", async () => {
    const onChange = vi.fn();
    render(<Harness onChange={onChange} />);
    const file = new File([new Uint8Array(100)], "voice.wav", { type: "audio/wav" });

    upload(file);

    await waitFor(() =>
      expect(onChange).toHaveBeenLastCalledWith(
        expect.objectContaining({ kind: "file", source: "upload", blob: file, fileName: "voice.wav" }),
      ),
    );
    const player = await screen.findByLabelText<HTMLAudioElement>("Reference voice playback");
    expect(player.getAttribute("src")).toMatch(/^blob:/);
    expect(screen.queryByRole("alert")).toBeNull();
  });

  it("picks a saved voice by id", () => {
    const onChange = vi.fn();
    render(<Harness onChange={onChange} />);

    fireEvent.click(screen.getByLabelText("Saved voice (2)"));
    fireEvent.change(screen.getByLabelText("Saved voice"), { target: { value: "default" } });

    expect(onChange).toHaveBeenLastCalledWith({ kind: "voice", voiceId: "default", name: "built-in" });
  });

  it("plays back a picked saved voice from the server, and stops offering it when the pick is cleared", () => {
    render(<Harness onChange={() => {}} />);
    fireEvent.click(screen.getByLabelText("Saved voice (2)"));
    expect(screen.queryByLabelText("Reference voice playback")).toBeNull();

    fireEvent.change(screen.getByLabelText("Saved voice"), { target: { value: "v_3f2a9c0d1b4e5f60" } });
    const player = screen.getByLabelText<HTMLAudioElement>("Reference voice playback");
    expect(player.tagName).toBe("AUDIO");
    expect(player.controls).toBe(true);
    expect(player.getAttribute("src")).toBe(`${API_BASE_URL}/v1/voices/v_3f2a9c0d1b4e5f60/audio`);
    expect(screen.getByText("narrator: 4.2 s")).toBeTruthy();

    fireEvent.change(screen.getByLabelText("Saved voice"), { target: { value: "default" } });
    expect(screen.getByLabelText("Reference voice playback").getAttribute("src")).toBe(
      `${API_BASE_URL}/v1/voices/default/audio`,
    );

    fireEvent.change(screen.getByLabelText("Saved voice"), { target: { value: "" } });
    expect(screen.queryByLabelText("Reference voice playback")).toBeNull();
  });

  it("explains when the browser cannot record", async () => {
    render(<Harness onChange={() => {}} />);
    fireEvent.click(screen.getByLabelText("Record"));
    fireEvent.click(screen.getByRole("button", { name: "Start recording" }));
    expect((await screen.findByRole("alert")).textContent).toBe("This browser cannot record audio; upload a file instead.");
  });
});
