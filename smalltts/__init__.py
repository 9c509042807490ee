"""smalltts: expressive voice-cloning text-to-speech, torch-free at import.

    from smalltts import SmallTTS

    tts = SmallTTS()                                  # the default model, as `smalltts say` picks it
    tts.say("Hello there. [laughter]").save("hello.wav")

See `smalltts.api` for the whole surface (voices, batches, seeds, transcriptions). The CLI (`smalltts.cli`)
is the other half of this package; `python -m smalltts` runs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smalltts.api import SmallTTS, Speech, Utterance, Voice

__all__ = ["SmallTTS", "Speech", "Utterance", "Voice"]


def __getattr__(name: str) -> Any:
    # Lazy (PEP 562) so that `python -m smalltts fetch` does not load onnxruntime just to download files.
    if name in __all__:
        from smalltts import api

        return getattr(api, name)
    raise AttributeError(f"module 'smalltts' has no attribute {name!r}")
