"""VoiceStore: reference voices uploaded once and reused by id, kept on disk across restarts.

    <data_dir>/voices/<voice_id>/
        meta.json                   id, name, created_at, reference_s, sample_rate_hz
        reference.wav               the decoded reference (mono, codec rate, 16-bit), to re-encode for a new model
        latents-<model key>.npy     (r c) float32 reference latents for one model

Latents depend on the model's codec, so they are stored per model (keyed by a hash of its id) and recomputed
from reference.wav the first time another model uses the voice. The runtime also caches each voice's
cross-attention K/V by the latents' content, so a returning voice skips the style encoder too.

All methods are blocking (small file I/O, codec encoding); the routes call them through a worker thread.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from model.runtime.audio import decode_reference, encode_audio
from service.errors import UnknownVoiceError, VoiceLimitError

logger = logging.getLogger("smalltts.voices")

VOICE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
BUILTIN_VOICE_ID = "default"


@dataclass(frozen=True)
class Voice:
    id: str
    name: str
    created_at: str  # ISO 8601, UTC
    reference_s: float
    sample_rate_hz: int


class VoiceStore:
    """Voices on disk plus an in-memory cache of their latents for the loaded model."""

    def __init__(
        self,
        root: Path,
        *,
        model_id: str,
        sample_rate_hz: int,
        encode_reference: Callable[[np.ndarray], np.ndarray],
        max_voices: int = 1000,
    ) -> None:
        self.root = Path(root)
        self.sample_rate_hz = sample_rate_hz
        self.max_voices = max_voices
        self._encode_reference = encode_reference
        self._model_key = hashlib.sha256(model_id.encode()).hexdigest()[:16]
        self._voices: dict[str, Voice] = {}
        self._latents: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def load(self) -> int:
        """Reads every stored voice's metadata (called once by the lifespan); returns how many."""
        self.root.mkdir(parents=True, exist_ok=True)
        voices: dict[str, Voice] = {}
        for folder in sorted(self.root.iterdir()):
            meta_path = folder / "meta.json"
            if not (folder.is_dir() and VOICE_ID_RE.match(folder.name) and meta_path.is_file()):
                continue  # half-written folders (".tmp-...") and strangers are skipped
            try:
                voice = Voice(**json.loads(meta_path.read_text()))
            except (ValueError, TypeError) as exc:
                logger.warning("skipping voice folder %s: unreadable meta.json (%s)", folder, exc)
                continue
            voices[voice.id] = voice
        with self._lock:
            self._voices = voices
        return len(voices)

    def list(self) -> list[Voice]:
        with self._lock:
            return sorted(self._voices.values(), key=lambda v: (v.created_at, v.id))

    def get(self, voice_id: str) -> Voice:
        with self._lock:
            voice = self._voices.get(voice_id)
        if voice is None:
            raise UnknownVoiceError(f"unknown voice {voice_id!r}; create one with POST /v1/voices", field="voice")
        return voice

    def __contains__(self, voice_id: object) -> bool:
        with self._lock:
            return voice_id in self._voices

    def create(self, audio: np.ndarray, *, name: str, voice_id: str | None = None) -> tuple[Voice, np.ndarray]:
        """Stores a decoded reference (mono, codec rate) under a new id; returns the voice and its latents."""
        if voice_id is None:
            voice_id = f"v_{secrets.token_hex(8)}"
        if not VOICE_ID_RE.match(voice_id):
            raise ValueError(f"invalid voice id {voice_id!r}")
        with self._lock:
            if len(self._voices) >= self.max_voices and voice_id not in self._voices:
                raise VoiceLimitError(
                    f"the voice store is full (max_voices={self.max_voices}); delete a voice first", field="audio"
                )
        latents = self._encode_reference(audio)  # (r c)
        voice = Voice(
            id=voice_id,
            name=name,
            created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            reference_s=round(audio.shape[0] / self.sample_rate_hz, 3),
            sample_rate_hz=self.sample_rate_hz,
        )
        # Write into a temporary folder and rename it, so a crash never leaves a half voice behind.
        staging = self.root / f".tmp-{voice_id}-{secrets.token_hex(4)}"
        staging.mkdir(parents=True)
        (staging / "reference.wav").write_bytes(encode_audio(audio, self.sample_rate_hz, "wav"))
        np.save(staging / self._latents_name, latents.astype(np.float32))
        (staging / "meta.json").write_text(json.dumps(asdict(voice), indent=2) + "\n")
        target = self.root / voice_id
        with self._lock:
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
            self._voices[voice_id] = voice
            self._latents[voice_id] = latents
        return voice, latents

    def latents(self, voice_id: str) -> np.ndarray:
        """The voice's (r c) latents for the loaded model, encoding its reference once if needed."""
        self.get(voice_id)
        with self._lock:
            cached = self._latents.get(voice_id)
        if cached is not None:
            return cached
        folder = self.root / voice_id
        path = folder / self._latents_name
        latents: np.ndarray
        if path.is_file():
            latents = np.asarray(np.load(path), dtype=np.float32)
        else:  # made with another model: re-encode the stored reference for this one
            audio = decode_reference((folder / "reference.wav").read_bytes(), self.sample_rate_hz)
            latents = self._encode_reference(audio)
            np.save(path, latents.astype(np.float32))
        with self._lock:
            self._latents[voice_id] = latents
        return latents

    def reference_wav(self, voice_id: str) -> bytes:
        """The stored reference recording as WAV bytes (mono, codec rate, 16-bit), for playing it back."""
        self.get(voice_id)
        try:
            return (self.root / voice_id / "reference.wav").read_bytes()
        except FileNotFoundError as exc:  # deleted between the lookup and the read
            raise UnknownVoiceError(
                f"unknown voice {voice_id!r}; create one with POST /v1/voices", field="voice"
            ) from exc

    def delete(self, voice_id: str) -> Voice:
        voice = self.get(voice_id)
        with self._lock:
            self._voices.pop(voice_id, None)
            self._latents.pop(voice_id, None)
        shutil.rmtree(self.root / voice_id, ignore_errors=True)
        return voice

    @property
    def _latents_name(self) -> str:
        return f"latents-{self._model_key}.npy"
