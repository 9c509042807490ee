import { useId } from "react";

export type DurationMode = "auto" | "manual";

interface DurationControlProps {
  mode: DurationMode;
  onModeChange: (mode: DurationMode) => void;
  manualS: number;
  onManualChange: (durationS: number) => void;
  /** The server's estimate for the current text (seconds), or null while there is none. */
  estimateS: number | null;
  minS: number;
  maxS: number;
  stepS?: number;
}

/** Automatic duration (the server's estimate from the text) or a manual slider within the server's bounds. */
export function DurationControl(props: DurationControlProps) {
  const { mode, onModeChange, manualS, onManualChange, estimateS, minS, maxS, stepS = 0.5 } = props;
  const id = useId();
  return (
    <fieldset className="field duration">
      <legend>Duration</legend>
      <div className="choices">
        <label>
          <input
            type="radio"
            name={`${id}-mode`}
            value="auto"
            checked={mode === "auto"}
            onChange={() => onModeChange("auto")}
          />
          Automatic{" "}
          <span className="muted">
            {estimateS === null ? "(estimated from the text)" : `(about ${estimateS.toFixed(1)} s for this text)`}
          </span>
        </label>
        <label>
          <input
            type="radio"
            name={`${id}-mode`}
            value="manual"
            checked={mode === "manual"}
            onChange={() => onModeChange("manual")}
          />
          Manual
        </label>
      </div>
      {mode === "manual" && (
        <div className="slider">
          <label htmlFor={`${id}-slider`}>Length in seconds</label>
          <input
            id={`${id}-slider`}
            type="range"
            min={minS}
            max={maxS}
            step={stepS}
            value={manualS}
            onChange={(event) => onManualChange(Number(event.target.value))}
            aria-valuetext={`${manualS} seconds`}
          />
          <output htmlFor={`${id}-slider`}>{manualS.toFixed(1)} s</output>
        </div>
      )}
    </fieldset>
  );
}
