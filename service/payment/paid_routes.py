"""The routes behind the payment layer, as data: what each sells and where its text is, for pricing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class PaidRoute:
    """A route behind the payment layer, and where to find the text that prices a request without duration."""

    method: str
    path: str
    description: str
    mime_type: str
    body_kind: Literal["form", "json"]
    text_field: str

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


PAID_ROUTES: tuple[PaidRoute, ...] = (
    PaidRoute(
        method="POST",
        path="/synthesize",
        description="smalltts: speech from text in the voice of a reference recording (WAV)",
        mime_type="audio/wav",
        body_kind="form",
        text_field="text",
    ),
    PaidRoute(
        method="POST",
        path="/v1/audio/speech",
        description="smalltts: OpenAI-compatible speech synthesis",
        mime_type="audio/wav",
        body_kind="json",
        text_field="input",
    ),
)
