from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from model.errors import InputError
from model.runtime.audio import decode_reference, encode_audio, format_from_path, read_reference, write_audio
from model.runtime.limits import RuntimeLimits

TARGET_HZ = 24_000


def _tone(sample_rate_hz: int, seconds: float, channels: int, freq_hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(sample_rate_hz * seconds)) / sample_rate_hz
    mono = 0.4 * np.sin(2 * np.pi * freq_hz * t)
    return np.stack([mono * (1.0 - 0.3 * c) for c in range(channels)], axis=1).astype(np.float32)  # (n ch)


def _encode(samples: np.ndarray, sample_rate_hz: int, container: str, subtype: str) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, sample_rate_hz, format=container, subtype=subtype)
    return buffer.getvalue()


def _dominant_hz(audio: np.ndarray, sample_rate_hz: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.shape[0])))
    return float(np.fft.rfftfreq(audio.shape[0], 1 / sample_rate_hz)[spectrum.argmax()])


@pytest.mark.parametrize(
    ("container", "subtype", "sample_rate_hz", "channels"),
    [
        ("WAV", "PCM_16", 24_000, 1),
        ("WAV", "PCM_24", 16_000, 2),
        ("WAV", "FLOAT", 48_000, 1),
        ("FLAC", "PCM_16", 44_100, 2),
        ("OGG", "VORBIS", 22_050, 2),
        ("OGG", "OPUS", 48_000, 1),
        ("MP3", "MPEG_LAYER_III", 44_100, 2),
        ("MP3", "MPEG_LAYER_III", 16_000, 1),
    ],
)
def test_any_format_rate_and_channel_count_becomes_mono_24k(
    container: str, subtype: str, sample_rate_hz: int, channels: int
) -> None:
    data = _encode(_tone(sample_rate_hz, 2.0, channels), sample_rate_hz, container, subtype)
    audio = decode_reference(data, TARGET_HZ)
    assert audio.dtype == np.float32 and audio.ndim == 1
    # Lossy codecs add a few ms of encoder delay; the length stays within 5 % of 2 s at 24 kHz.
    assert abs(audio.shape[0] - 2 * TARGET_HZ) < 0.05 * 2 * TARGET_HZ
    assert _dominant_hz(audio, TARGET_HZ) == pytest.approx(440.0, abs=2.0)
    # Stereo is averaged: the second channel is 0.7 x the first, so the amplitude is 0.85 x 0.4. RMS over the
    # middle, because lossy codecs overshoot at the onset.
    amplitude = 0.4 * (1.0 + 0.7) / 2 if channels == 2 else 0.4
    middle = audio[TARGET_HZ // 2 : 3 * TARGET_HZ // 2]
    assert float(np.sqrt(np.mean(middle**2))) == pytest.approx(amplitude / np.sqrt(2), rel=0.1)


def test_read_reference_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "voice.flac"
    sf.write(path, _tone(24_000, 1.0, 1), 24_000)
    np.testing.assert_allclose(read_reference(path, TARGET_HZ), _tone(24_000, 1.0, 1)[:, 0], atol=1e-4)


def _code(data: bytes, limits: RuntimeLimits | None = None) -> str:
    with pytest.raises(InputError) as info:
        decode_reference(data, TARGET_HZ, limits)
    assert info.value.field == "audio"
    assert "\n" not in str(info.value)
    return info.value.code


def test_empty_undecodable_and_sample_free_references_are_input_errors() -> None:
    assert _code(b"") == "audio_empty"
    assert _code(b"this is not audio" * 50) == "audio_undecodable"
    assert _code(_encode(np.zeros((0, 1), dtype=np.float32), 24_000, "WAV", "PCM_16")) == "audio_empty"
    wav = _encode(_tone(24_000, 1.0, 1), 24_000, "WAV", "PCM_16")
    assert _code(wav[: len(wav) // 3][:30]) == "audio_undecodable"  # a header cut short


def test_nan_samples_are_rejected() -> None:
    samples = _tone(24_000, 1.0, 1)
    samples[100] = np.nan
    assert _code(_encode(samples, 24_000, "WAV", "FLOAT")) == "audio_undecodable"


def test_silent_short_and_long_references_are_rejected() -> None:
    limits = RuntimeLimits(min_reference_s=0.5, max_reference_s=3.0)
    assert _code(_encode(np.zeros((24_000, 1), dtype=np.float32), 24_000, "WAV", "PCM_16"), limits) == "audio_silent"
    quiet = _tone(24_000, 1.0, 1) * 1e-3  # peak 4e-4, under the -60 dBFS threshold
    assert _code(_encode(quiet, 24_000, "WAV", "FLOAT"), limits) == "audio_silent"
    assert _code(_encode(_tone(24_000, 0.2, 1), 24_000, "WAV", "PCM_16"), limits) == "audio_too_short"
    assert _code(_encode(_tone(16_000, 4.0, 2), 16_000, "FLAC", "PCM_16"), limits) == "audio_too_long"
    # Just under the limit passes.
    assert decode_reference(_encode(_tone(16_000, 2.9, 1), 16_000, "WAV", "PCM_16"), TARGET_HZ, limits).size > 0


def test_wav_output_is_16_bit_pcm_with_exact_length() -> None:
    audio = np.linspace(-1.5, 1.5, 23 * 3200).astype(np.float32)  # beyond full scale on purpose
    data = encode_audio(audio, 24_000, "wav")
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert len(data) == 44 + 2 * 23 * 3200  # a plain 44-byte header, 2 bytes per sample
    info = sf.info(io.BytesIO(data))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (24_000, 1, 23 * 3200, "PCM_16")
    decoded, _ = sf.read(io.BytesIO(data), dtype="float32")
    assert decoded.max() <= 1.0 and decoded.min() == -1.0  # clipped, not wrapped around
    assert decoded[-1] > 0.99


@pytest.mark.parametrize(("audio_format", "subtype"), [("flac", "PCM_16"), ("ogg", "VORBIS")])
def test_flac_and_ogg_output(audio_format: str, subtype: str) -> None:
    audio = _tone(24_000, 1.0, 1)[:, 0]
    data = encode_audio(audio, 24_000, audio_format)  # type: ignore[arg-type]
    info = sf.info(io.BytesIO(data))
    assert info.subtype == subtype and info.samplerate == 24_000
    decoded, _ = sf.read(io.BytesIO(data), dtype="float32")
    assert _dominant_hz(decoded, 24_000) == pytest.approx(440.0, abs=2.0)


def test_output_format_follows_the_suffix(tmp_path: Path) -> None:
    assert format_from_path("x/y.WAV") == "wav"
    assert format_from_path("y.flac") == "flac"
    with pytest.raises(InputError, match=r"\.wav, \.flac or \.ogg") as info:
        format_from_path("y.mp4")
    assert info.value.field == "out"
    path = write_audio(tmp_path / "deep" / "out.ogg", _tone(24_000, 0.5, 1)[:, 0], 24_000)
    assert sf.info(path).format == "OGG"
    with pytest.raises(ValueError, match="unknown audio format"):
        encode_audio(np.zeros(10), 24_000, "mp4")  # type: ignore[arg-type]
