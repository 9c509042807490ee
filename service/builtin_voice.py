"""The built-in voice 'default', spoken by espeak-ng, so clients can speak before uploading a voice of their own.

create_builtin_voice(store)   blocking (espeak-ng, then the codec); the lifespan runs it in a thread once
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

from model.errors import InputError
from model.runtime.audio import decode_reference
from service.voices import BUILTIN_VOICE_ID, VoiceStore

logger = logging.getLogger("smalltts.service")

BUILTIN_VOICE_TEXT = "This is a reference voice for cloning. It speaks clearly, at an even pace."


def create_builtin_voice(store: VoiceStore) -> bool:
    """Stores the voice 'default' from espeak-ng speech.

    Returns False (and logs why) when espeak-ng is missing or its output is unusable; the service still runs.
    """
    binary = shutil.which("espeak-ng")
    if binary is None:
        logger.warning("espeak-ng not found: no built-in voice 'default'; upload one with POST /v1/voices")
        return False
    with tempfile.TemporaryDirectory() as folder:
        wav_path = Path(folder) / "reference.wav"
        completed = subprocess.run(
            [binary, "-v", "en-us", "-s", "155", "-w", str(wav_path), BUILTIN_VOICE_TEXT],
            capture_output=True,
            timeout=60,
            check=False,
        )
        if completed.returncode != 0 or not wav_path.is_file():
            logger.warning("espeak-ng failed (%s): no built-in voice", completed.stderr.decode(errors="replace")[:200])
            return False
        try:
            audio = decode_reference(wav_path.read_bytes(), store.sample_rate_hz)
        except InputError as exc:
            logger.warning("espeak-ng reference unusable (%s): no built-in voice", exc)
            return False
    store.create(audio, name="built-in (espeak-ng)", voice_id=BUILTIN_VOICE_ID)
    logger.info("created the built-in voice 'default'")
    return True
