import { fireEvent, render, screen } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { DurationControl } from "../../src/components/DurationControl";

const base = { manualS: 3, minS: 0.5, maxS: 30, onModeChange: () => {}, onManualChange: () => {} };

describe("DurationControl", () => {
  it("shows the server's estimate in automatic mode and hides the slider", () => {
    render(<DurationControl {...base} mode="auto" estimateS={2.34} />);
    expect(screen.getByText("(about 2.3 s for this text)")).toBeTruthy();
    expect(screen.queryByLabelText("Length in seconds")).toBeNull();
    expect(screen.getByLabelText<HTMLInputElement>(/Automatic/).checked).toBe(true);
  });

  it("switches to manual mode", () => {
    const onModeChange = vi.fn();
    render(<DurationControl {...base} mode="auto" estimateS={null} onModeChange={onModeChange} />);
    fireEvent.click(screen.getByLabelText("Manual"));
    expect(onModeChange).toHaveBeenCalledWith("manual");
  });

  it("offers a slider bounded by the server's duration limits", () => {
    const onManualChange = vi.fn();
    render(<DurationControl {...base} mode="manual" estimateS={null} onManualChange={onManualChange} />);
    const slider = screen.getByLabelText<HTMLInputElement>("Length in seconds");
    expect([slider.min, slider.max, slider.step, slider.value]).toEqual(["0.5", "30", "0.5", "3"]);
    expect(screen.getByText("3.0 s")).toBeTruthy();

    fireEvent.change(slider, { target: { value: "7.5" } });

    expect(onManualChange).toHaveBeenCalledWith(7.5);
  });
});
