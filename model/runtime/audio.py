"""Audio in and out: reference clips of any common format -> mono float32 at the codec rate, and back to files.

Decoding uses soundfile (libsndfile: WAV, FLAC, OGG Vorbis/Opus, MP3, ...) and resampling soxr. Every way a
reference can be unusable raises `InputError(field="audio")` with a stable code:

    audio_empty        no bytes, or no samples
    audio_undecodable  not an audio file libsndfile can read, or samples that are not finite
    audio_too_short    shorter than limits.min_reference_s
    audio_too_long     longer than limits.max_reference_s (checked from the header before decoding)
    audio_silent       peak below limits.silence_peak
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import soxr

from model.errors import InputError
from model.runtime.limits import RuntimeLimits

AudioFormat = Literal["wav", "flac", "ogg"]
AUDIO_FORMATS: tuple[AudioFormat, ...] = ("wav", "flac", "ogg")
# (libsndfile format, subtype) per output format; 16-bit PCM like the original's published samples.
_WRITE_FORMATS: dict[str, tuple[str, str]] = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
}


def _audio_error(message: str, code: str) -> InputError:
    return InputError(message, field="audio", code=code)


def decode_reference(data: bytes, sample_rate_hz: int, limits: RuntimeLimits | None = None) -> np.ndarray:
    """Encoded audio bytes -> (n,) float32 mono at sample_rate_hz; raises InputError when unusable."""
    limits = limits or RuntimeLimits()
    if not data:
        raise _audio_error("reference audio is empty (0 bytes)", "audio_empty")
    try:
        with sf.SoundFile(io.BytesIO(data)) as handle:
            source_rate_hz = int(handle.samplerate)
            # The header's frame count lets an over-long upload fail before it is decoded (MP3 counts are
            # estimates, hence the second check after decoding).
            if handle.frames > 0 and handle.frames / source_rate_hz > limits.max_reference_s * 1.05:
                raise _too_long(handle.frames / source_rate_hz, limits)
            samples = handle.read(dtype="float32", always_2d=True)  # (n, channels)
    except sf.SoundFileError as exc:
        raise _audio_error(f"reference audio could not be decoded: {_first_line(exc)}", "audio_undecodable") from None
    if samples.size == 0:
        raise _audio_error("reference audio has no samples", "audio_empty")
    if not np.isfinite(samples).all():
        raise _audio_error("reference audio contains NaN or infinite samples", "audio_undecodable")
    mono = samples.mean(axis=1, dtype=np.float32)  # (n,)
    duration_s = mono.shape[0] / source_rate_hz
    if duration_s > limits.max_reference_s:
        raise _too_long(duration_s, limits)
    if duration_s < limits.min_reference_s:
        raise _audio_error(
            f"reference audio is {duration_s:.2f} s long; it must be at least {limits.min_reference_s:g} s",
            "audio_too_short",
        )
    if float(np.abs(mono).max()) < limits.silence_peak:
        raise _audio_error("reference audio is silent; record a voice to clone", "audio_silent")
    if source_rate_hz != sample_rate_hz:
        mono = soxr.resample(mono, source_rate_hz, sample_rate_hz, quality="HQ").astype(np.float32)
    return np.ascontiguousarray(mono, dtype=np.float32)


def read_reference(path: str | Path, sample_rate_hz: int, limits: RuntimeLimits | None = None) -> np.ndarray:
    """Reads an audio file and decodes it as `decode_reference` does."""
    return decode_reference(Path(path).read_bytes(), sample_rate_hz, limits)


def _too_long(duration_s: float, limits: RuntimeLimits) -> InputError:
    return _audio_error(
        f"reference audio is {duration_s:.1f} s long; the limit is {limits.max_reference_s:g} s", "audio_too_long"
    )


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    # libsndfile's messages name the file object (`<_io.BytesIO object at 0x..>`), which says nothing.
    return text[-1].split(": ", 1)[-1] if text else type(exc).__name__


def format_from_path(path: str | Path) -> AudioFormat:
    """`out.wav` -> "wav"; raises InputError(field="out") for a suffix we cannot write."""
    suffix = Path(path).suffix.lower().lstrip(".")
    for name in AUDIO_FORMATS:
        if suffix == name:
            return name
    raise InputError(
        f"cannot write {str(path)!r}: the output file must end in .wav, .flac or .ogg", field="out", code="out_format"
    )


def encode_audio(audio: np.ndarray, sample_rate_hz: int, audio_format: AudioFormat = "wav") -> bytes:
    """(n,) float audio -> file bytes: WAV/FLAC 16-bit PCM or OGG Vorbis, mono."""
    if audio_format not in _WRITE_FORMATS:
        raise ValueError(f"unknown audio format {audio_format!r}; choose one of {', '.join(AUDIO_FORMATS)}")
    container, subtype = _WRITE_FORMATS[audio_format]
    # libsndfile wraps rather than clips values beyond full scale when converting to integers.
    clipped = np.clip(np.asarray(audio, dtype=np.float32).reshape(-1), -1.0, 1.0)
    buffer = io.BytesIO()
    sf.write(buffer, clipped, sample_rate_hz, format=container, subtype=subtype)
    return buffer.getvalue()


def write_audio(path: str | Path, audio: np.ndarray, sample_rate_hz: int) -> Path:
    """Writes audio in the format named by the path's suffix, creating parent folders."""
    path = Path(path)
    data = encode_audio(audio, sample_rate_hz, format_from_path(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
