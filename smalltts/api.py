"""The Python API: `SmallTTS` over the torch-free ONNX runtime (model.runtime), with cached voices and real batches.

>>> from smalltts import SmallTTS
>>> tts = SmallTTS()                    # --model / $SMALLTTS_MODEL_DIR, fetched weights, else the bundled demo
>>> speech = tts.say("Hello there.", seed=7)
>>> speech.seed, speech.sample_rate == tts.sample_rate
(7, True)
>>> speech.duration > 0
True
>>> [a.seed for a in tts.say_many(["One.", Utterance("Two.", seed=3)])][1]
3

Limits (duration, steps, reference length) are the service's, from `SMALLTTS_*` settings (service/settings.py),
so whatever the API accepts the HTTP service accepts too.

Errors: a user's mistake raises `model.errors.InputError` (a ValueError naming the field); a bad argument of
this API (an unknown device, a missing file) raises ValueError or FileNotFoundError.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf

from model.errors import InputError
from model.runtime.assets import AssetError, resolve_model_dir
from model.runtime.audio import decode_reference, encode_audio, read_reference, write_audio
from model.runtime.graph import CPU_PROVIDER, CUDA_PROVIDER
from model.runtime.limits import RuntimeLimits
from model.runtime.synthesizer import SynthesisRequest, Synthesizer
from model.text import estimate_duration_s, tokenize

Device = Literal["auto", "cpu", "cuda"]
AudioFormat = Literal["wav", "flac", "ogg"]
# A model folder may ship a default voice (the bundled demo does).
DEFAULT_REFERENCE = "reference.wav"
MAX_SEED = 2**31 - 1


def random_seed() -> int:
    """A fresh seed for a request that gave none; it is reported on the Speech so the audio can be remade."""
    return secrets.randbelow(MAX_SEED + 1)


@dataclass(frozen=True)
class Voice:
    """A reference voice as codec latents (r c); made by `SmallTTS.voice`, reusable across calls."""

    latents: np.ndarray = field(repr=False)
    source: str

    @property
    def num_frames(self) -> int:
        return int(self.latents.shape[0])


@dataclass(frozen=True)
class Speech:
    """Synthesized audio: mono float32 `samples` at `sample_rate` Hz, and how it was made."""

    samples: np.ndarray = field(repr=False)
    sample_rate: int
    seed: int
    text: str
    warnings: tuple[str, ...] = ()  # unknown tags, characters the vocabulary lacks

    @property
    def duration(self) -> float:
        """Seconds of audio."""
        return float(self.samples.shape[0] / self.sample_rate)

    def save(self, path: str | Path) -> Path:
        """Writes a .wav, .flac or .ogg file (by the suffix), creating parent folders; returns the path."""
        return write_audio(path, self.samples, self.sample_rate)

    def to_bytes(self, format: AudioFormat = "wav") -> bytes:
        """The file's bytes: wav or flac (16-bit PCM) or ogg (Vorbis)."""
        return encode_audio(self.samples, self.sample_rate, format)


@dataclass(frozen=True)
class Utterance:
    """One item of `SmallTTS.say_many`: what `say` takes, as data."""

    text: str
    voice: Voice | str | Path | None = None
    duration: float | None = None  # seconds; None: estimated from the text
    seed: int | None = None  # None: random, reported on the Speech
    steps: int | None = None  # None: the model's own count
    transcription: str | None = None  # what the reference says; its phonemes go before the text's


@dataclass(frozen=True)
class PreparedUtterance:
    """An utterance checked and turned into a runtime request (see `SmallTTS.prepare`)."""

    utterance: Utterance
    request: SynthesisRequest
    duration_estimated: bool
    warnings: tuple[str, ...]


class SmallTTS:
    """Text-to-speech with one model folder, loaded once.

    Args:
        model: a model folder (dmd/ + codec/); None picks the default as the CLI does: $SMALLTTS_MODEL_DIR,
            the weights `smalltts fetch` downloaded, the bundled demo model, else a random tiny model.
        device: "auto" (CUDA when this onnxruntime build has it, else CPU), "cpu" or "cuda".
        limits: what requests may ask for; None: the service's limits from `SMALLTTS_*` settings.
    """

    def __init__(
        self, model: str | Path | None = None, device: Device = "auto", *, limits: RuntimeLimits | None = None
    ) -> None:
        providers = _providers_for(device)
        try:
            model_dir = resolve_model_dir(model)
        except AssetError as exc:
            raise FileNotFoundError(str(exc)) from None
        self.synthesizer = Synthesizer.load(model_dir, providers, limits=limits or _service_limits())
        if device == "cuda" and CUDA_PROVIDER not in self.synthesizer.providers:
            raise ValueError("device 'cuda': onnxruntime could not load CUDA here; use device='cpu'")
        self._voices: dict[tuple[str, int, int], Voice] = {}

    @property
    def sample_rate(self) -> int:
        return self.synthesizer.sample_rate_hz

    @property
    def trained(self) -> bool:
        """False for random weights, whose audio is noise."""
        return self.synthesizer.trained

    def voice(self, source: str | Path | np.ndarray, sample_rate: int | None = None) -> Voice:
        """A voice from an audio file (wav, flac, ogg, mp3), a `.npy` of latents (frames, 64), or samples.

        Samples are float arrays (n,) or (n, channels) at `sample_rate` Hz. A file is read once: the same
        unchanged file gives the cached Voice again.
        """
        if isinstance(source, np.ndarray):
            if sample_rate is None:
                raise ValueError("voice(samples) needs sample_rate=")
            return Voice(self._encode_samples(source, sample_rate), source="<samples>")
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"reference file not found: {path}")
        stat = path.stat()
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        cached = self._voices.get(key)
        if cached is not None:
            return cached
        if path.suffix.lower() == ".npy":
            try:
                latents = np.load(path, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise InputError(
                    f"cannot read reference latents {path}: {exc}", field="audio", code="reference_invalid"
                ) from None
        else:
            audio = read_reference(path, self.synthesizer.sample_rate_hz, self.synthesizer.limits)
            latents = self.synthesizer.encode_reference(audio)
        voice = Voice(latents, source=str(path))
        self._voices[key] = voice
        return voice

    def default_voice(self) -> Voice:
        """The model folder's own reference.wav; ValueError when the folder ships none."""
        path = self.synthesizer.model_dir / DEFAULT_REFERENCE
        if not path.is_file():
            raise ValueError(
                f"no voice given, and the model at {self.synthesizer.model_dir} ships no {DEFAULT_REFERENCE}"
            )
        return self.voice(path)

    def say(
        self,
        text: str,
        voice: Voice | str | Path | None = None,
        duration: float | None = None,
        seed: int | None = None,
        steps: int | None = None,
        transcription: str | None = None,
    ) -> Speech:
        """Speaks `text` (which may hold [tags] such as [laughter]) in `voice` (default: the model's own)."""
        [speech] = self.say_many([Utterance(text, voice, duration, seed, steps, transcription)])
        return speech

    def say_many(self, items: Iterable[str | Utterance]) -> list[Speech]:
        """Speaks every item in one batched runtime call; result i belongs to item i. Checks all before any work."""
        prepared = [self.prepare(item if isinstance(item, Utterance) else Utterance(item)) for item in items]
        return self.render(prepared)

    def prepare(self, utterance: Utterance) -> PreparedUtterance:
        """Checks one utterance (text, voice, duration, seed, steps) and builds its request; raises InputError."""
        tokens = tokenize(utterance.text, max_tokens=self.synthesizer.max_tokens)
        token_ids = tokens.ids
        warnings = tokens.warnings
        if utterance.transcription is not None:
            # As the original's SmallTTS.forward: the reference's words, then the text's, joined directly.
            heard = tokenize(utterance.transcription, max_tokens=self.synthesizer.max_tokens)
            token_ids = heard.ids + token_ids
            warnings = heard.warnings + warnings
        voice = self._resolve_voice(utterance.voice)
        seed = utterance.seed if utterance.seed is not None else random_seed()
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise InputError(
                f"seed must be an integer from 0 to {MAX_SEED}, got {seed!r}", field="seed", code="seed_invalid"
            )
        estimated = utterance.duration is None
        # The length comes from the text alone: the transcription is heard in the reference, not spoken again.
        duration_s = estimate_duration_s(tokens) if utterance.duration is None else utterance.duration
        request = SynthesisRequest(
            token_ids=token_ids, ref_latents=voice.latents, duration_s=duration_s, seed=seed, num_steps=utterance.steps
        )
        self.synthesizer.validate(request)
        return PreparedUtterance(utterance, request, estimated, warnings)

    def render(self, prepared: Sequence[PreparedUtterance]) -> list[Speech]:
        """Runs prepared utterances as one `synthesize_batch` call."""
        if not prepared:
            return []
        results = self.synthesizer.synthesize_batch([item.request for item in prepared])
        return [
            Speech(result.audio, result.sample_rate_hz, result.seed, item.utterance.text, item.warnings)
            for item, result in zip(prepared, results, strict=True)
        ]

    def _resolve_voice(self, voice: Voice | str | Path | None) -> Voice:
        if isinstance(voice, Voice):
            return voice
        return self.default_voice() if voice is None else self.voice(voice)

    def _encode_samples(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        array = np.asarray(samples, dtype=np.float32)
        if array.ndim not in (1, 2):
            raise ValueError(f"voice samples must be (n,) or (n, channels), got shape {array.shape}")
        # Through a float WAV so raw samples pass the same checks, mixing and resampling as a file would.
        buffer = io.BytesIO()
        sf.write(buffer, array, sample_rate, format="WAV", subtype="FLOAT")
        audio = decode_reference(buffer.getvalue(), self.synthesizer.sample_rate_hz, self.synthesizer.limits)
        return self.synthesizer.encode_reference(audio)


def _providers_for(device: str) -> list[str] | None:
    if device == "auto":
        return None
    if device == "cpu":
        return [CPU_PROVIDER]
    if device == "cuda":
        import onnxruntime as ort

        if CUDA_PROVIDER not in ort.get_available_providers():
            raise ValueError("device 'cuda': this onnxruntime has no CUDA (install the gpu extra: onnxruntime-gpu)")
        return [CUDA_PROVIDER, CPU_PROVIDER]
    raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")


def _service_limits() -> RuntimeLimits:
    # Imported here: the settings pull in pydantic-settings and web3, which `import smalltts` need not pay for.
    from service.settings import Settings

    return Settings().runtime_limits()
