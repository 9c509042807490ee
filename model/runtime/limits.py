"""What the runtime accepts from a user: duration, text length, reference audio and step bounds.

One frozen dataclass shared by `audio.py` (reference checks) and `synthesizer.py` (request checks), so the
service and the CLI enforce the same numbers and can report them (`smalltts info`, the service's /health).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RuntimeLimits:
    min_duration_s: float = 0.1  # one latent frame is 0.133 s; below this a request is surely a mistake
    max_duration_s: float = 60.0
    max_tokens: int = 2048  # the text encoder's RoPE table stops at 4096 positions (spec §8, bug 11)
    min_reference_s: float = 0.5
    max_reference_s: float = 30.0  # the style encoder stops at 4096 frames; 30 s is plenty for a voice
    # A reference whose peak stays below this (-60 dBFS) carries no voice to clone.
    silence_peak: float = 1e-3
    max_steps: int = 64

    def __post_init__(self) -> None:
        if not 0 < self.min_duration_s <= self.max_duration_s:
            raise ValueError("RuntimeLimits: need 0 < min_duration_s <= max_duration_s")
        if not 0 < self.min_reference_s <= self.max_reference_s:
            raise ValueError("RuntimeLimits: need 0 < min_reference_s <= max_reference_s")
        if self.max_tokens < 1 or self.max_steps < 1:
            raise ValueError("RuntimeLimits: max_tokens and max_steps must be >= 1")
