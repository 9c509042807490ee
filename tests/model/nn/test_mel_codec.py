from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

import model.nn.mel_codec as mel_codec
from model.config import CodecConfig, preset_config
from model.export import export_codec
from model.nn.mel_codec import (
    DEMO_CODEC,
    GriffinLimDecoder,
    InverseStft,
    MelCodec,
    MelSpec,
    Stft,
    VocosDecoder,
    load_mel_codec,
    mel_filterbank,
    save_mel_codec,
)

HOP = DEMO_CODEC.hop_samples
RATE = DEMO_CODEC.sample_rate_hz
SMALL_VOCODER = replace(DEMO_CODEC, hidden_dim=16)


def speech_like(num_frames: int, seed: int = 0) -> torch.Tensor:
    """(1 1 m) a voiced signal: harmonics of a gliding pitch under a slow amplitude envelope."""
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(num_frames * HOP, dtype=torch.float64) / RATE
    pitch_hz = 120 + 40 * torch.sin(2 * math.pi * 1.5 * t)
    phase = 2 * math.pi * torch.cumsum(pitch_hz, 0) / RATE
    audio = sum(torch.sin(h * phase) / h for h in range(1, 12))
    envelope = 0.5 + 0.5 * torch.sin(2 * math.pi * 3 * t) ** 2
    audio = audio * envelope * 0.1 + 1e-3 * torch.randn(t.shape, generator=generator, dtype=torch.float64)
    return audio.float()[None, None]


def test_demo_preset_uses_the_demo_codec() -> None:
    assert preset_config("demo").codec == replace(DEMO_CODEC, hidden_dim=preset_config("demo").codec.hidden_dim)
    spec = MelSpec.from_codec(DEMO_CODEC)
    assert (spec.stft_hop, spec.n_fft, spec.n_mels) == (320, 1024, 64)
    assert DEMO_CODEC.frame_rate_hz == 25.0


def test_mel_spec_and_codec_refuse_bad_configs() -> None:
    with pytest.raises(ValueError, match="divisible"):
        MelSpec.from_codec(replace(DEMO_CODEC, hop_samples=641))
    with pytest.raises(ValueError, match="kind 'mel'"):
        MelCodec(replace(DEMO_CODEC, kind="standin"))
    with pytest.raises(ValueError, match="hidden_dim > 0"):
        VocosDecoder(DEMO_CODEC)


def test_filterbank_triangles_rise_with_frequency() -> None:
    filters = mel_filterbank(MelSpec.from_codec(DEMO_CODEC))
    assert filters.shape == (64, 513)
    assert (filters >= 0).all()
    peaks = filters.argmax(dim=1)
    assert (peaks[1:] >= peaks[:-1]).all() and peaks[-1] > peaks[0]
    assert (filters.sum(dim=1) > 0).all()  # no empty filter


@pytest.mark.parametrize("exporting", [False, True])
def test_stft_then_inverse_is_identity(exporting: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # The conv (ONNX) and FFT (training) paths must both reconstruct the signal exactly.
    monkeypatch.setattr(mel_codec, "_exporting", lambda: exporting)
    spec = MelSpec.from_codec(DEMO_CODEC)
    audio = torch.randn(2, 1, 9 * HOP)
    spectrum = Stft(spec)(audio)
    assert spectrum.shape == (2, 2 * spec.num_bins, 18)
    torch.testing.assert_close(InverseStft(spec)(spectrum), audio, atol=1e-4, rtol=0)


def test_fft_and_conv_paths_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = MelSpec.from_codec(DEMO_CODEC)
    audio = torch.randn(1, 1, 5 * HOP)
    spectrum = torch.randn(1, 2 * spec.num_bins, 10)
    fast = Stft(spec)(audio), InverseStft(spec)(spectrum)
    monkeypatch.setattr(mel_codec, "_exporting", lambda: True)
    conv = Stft(spec)(audio), InverseStft(spec)(spectrum)
    torch.testing.assert_close(fast[0], conv[0], atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(fast[1], conv[1], atol=1e-5, rtol=1e-4)


def test_encoder_shapes_and_partial_hop() -> None:
    codec = MelCodec().eval()
    with torch.no_grad():
        assert codec.encode(torch.randn(3, 1, 4 * HOP)).shape == (3, 4, 128)
        assert codec.encode(torch.randn(1, 1, 4 * HOP + HOP - 1)).shape == (1, 4, 128)


def test_fitted_statistics_normalise_and_reach_the_griffin_lim_decoder() -> None:
    codec = MelCodec().eval()
    audio = speech_like(40)
    with torch.no_grad():
        codec.encoder.fit_statistics([codec.encoder.log_mel(audio)[0]])
        codec.sync_statistics()
        latents = codec.encode(audio)  # (1 n c)
    per_bin = latents[0].reshape(-1, 2, 64).reshape(-1, 64)
    torch.testing.assert_close(per_bin.mean(0), torch.zeros(64), atol=1e-4, rtol=0)
    assert isinstance(codec.decoder, GriffinLimDecoder)
    torch.testing.assert_close(codec.decoder.mean, codec.encoder.mean)


def test_griffin_lim_reconstruction_keeps_the_mel_spectrogram() -> None:
    codec = MelCodec().eval()
    audio = speech_like(30)
    with torch.no_grad():
        codec.encoder.fit_statistics([codec.encoder.log_mel(audio)[0]])
        codec.sync_statistics()
        latents = codec.encode(audio)
        decoded = codec.decode(latents)
        assert decoded.shape == audio.shape
        error = (codec.encode(decoded) - latents).abs().mean()
        # An unrelated signal of the same loudness is far from it: the reconstruction is not trivially close.
        other = (codec.encode(speech_like(30, seed=1).roll(HOP * 7, dims=-1) * 0.5) - latents).abs().mean()
    assert error < 0.25
    assert other > 2 * error


def test_vocoder_decoder_shape_and_is_seeded() -> None:
    a, b, c = MelCodec(SMALL_VOCODER, seed=1), MelCodec(SMALL_VOCODER, seed=1), MelCodec(SMALL_VOCODER, seed=2)
    torch.testing.assert_close(a.state_dict(), b.state_dict())
    assert not torch.equal(a.decoder.head.weight, c.decoder.head.weight)
    with torch.no_grad():
        audio = a.eval().decode(torch.randn(2, 5, 128))
    assert audio.shape == (2, 1, 5 * HOP)
    assert torch.isfinite(audio).all()


def test_save_and_load_round_trip_and_decoder_switch(tmp_path: Path) -> None:
    codec = MelCodec(SMALL_VOCODER, seed=3)
    codec.encoder.mean.fill_(-4.0)
    path = tmp_path / "codec.pt"
    save_mel_codec(codec, str(path))
    loaded = load_mel_codec(str(path))
    torch.testing.assert_close(loaded.state_dict(), codec.state_dict())
    assert loaded.config() == SMALL_VOCODER
    griffin_lim = load_mel_codec(str(path), hidden_dim=0)
    assert isinstance(griffin_lim.decoder, GriffinLimDecoder)
    assert griffin_lim.decoder.mean.eq(-4.0).all() and griffin_lim.encoder.mean.eq(-4.0).all()


@pytest.mark.parametrize("cfg", [SMALL_VOCODER, DEMO_CODEC], ids=["vocoder", "griffin-lim"])
def test_onnx_graphs_match_torch_at_several_lengths(cfg: CodecConfig, tmp_path: Path) -> None:
    codec = MelCodec(cfg, seed=0).eval()
    if isinstance(codec.decoder, GriffinLimDecoder):
        codec.decoder.iterations = 2  # the export unrolls every iteration; two prove the graph
    encoder_path, decoder_path = export_codec(codec, tmp_path)  # type: ignore[arg-type]
    encoder = ort.InferenceSession(str(encoder_path), providers=["CPUExecutionProvider"])
    decoder = ort.InferenceSession(str(decoder_path), providers=["CPUExecutionProvider"])
    for batch, frames in ((1, 1), (2, 6), (1, 17)):
        audio = speech_like(frames).repeat(batch, 1, 1)
        latents = encoder.run(None, {"audio": audio.numpy()})[0]
        decoded = decoder.run(None, {"latents": latents})[0]
        with torch.no_grad():
            expected_latents = codec.encode(audio)
            expected_audio = codec.decode(torch.from_numpy(latents))
        assert latents.shape == (batch, frames, 128)
        assert decoded.shape == (batch, 1, frames * HOP)
        np.testing.assert_allclose(latents, expected_latents.numpy(), atol=1e-3)
        np.testing.assert_allclose(decoded, expected_audio.numpy(), atol=1e-3)
