import { cleanup } from "@testing-library/react";
import { afterEach } from "vitest";

// vitest runs without globals, so testing-library cannot register its own cleanup.
afterEach(() => cleanup());

// jsdom has no object URLs; the components only pass them to <audio src> and <a href>.
let nextObjectUrl = 0;
URL.createObjectURL ??= () => `blob:test/${++nextObjectUrl}`;
URL.revokeObjectURL ??= () => undefined;
