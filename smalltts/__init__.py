"""smalltts: expressive voice-cloning text-to-speech, torch-free at import.

    from smalltts import SmallTTS

    tts = SmallTTS()                                  # the default model, as `smalltts say` picks it
    tts.say("Hello there. [laughter]").save("hello.wav")

See `smalltts.api` for the whole surface (voices, batches, seeds, transcriptions).
"""

from __future__ import annotations

from smalltts.api import SmallTTS, Speech, Utterance, Voice

__all__ = ["SmallTTS", "Speech", "Utterance", "Voice"]
