"""Pretrained speaker encoders that give the SV model its targets and `smalltts eval` its similarity score.

    resemblyzer   works offline: the wheel ships its weights (256-d GE2E embeddings). Needs `setuptools<81`
                  because webrtcvad imports pkg_resources.
    speechbrain   spkrec-ecapa-voxceleb (192-d), the original's choice; optional: it needs torchaudio (which
                  does not load with torch 2.13) and a Hugging Face download, so it usually fails here.

`load_speaker_encoder(name)` raises SpeakerEncoderError naming what is missing and how to fix it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import soxr

from training.errors import TrainingBaseError

ENCODER_SAMPLE_RATE_HZ = 16_000


class SpeakerEncoderError(TrainingBaseError, RuntimeError):
    """The requested pretrained speaker encoder cannot be loaded."""


class SpeakerEncoder(Protocol):
    name: str
    dim: int

    def embed(self, audio: np.ndarray, sample_rate_hz: int) -> np.ndarray:
        """(n,) mono float audio -> (dim,) float32 unit-norm embedding."""
        ...

    def embed_batch(self, clips: Sequence[np.ndarray], sample_rate_hz: int) -> np.ndarray:
        """Several clips in one forward pass -> (b, dim) float32 unit-norm embeddings."""
        ...


class ResemblyzerEncoder:
    name = "resemblyzer"
    dim = 256

    def __init__(self, device: str = "cpu") -> None:
        try:
            # webrtcvad (pulled in by resemblyzer) imports pkg_resources, which warns on import.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from resemblyzer import VoiceEncoder
                from resemblyzer import audio as resemblyzer_audio
        except ImportError as exc:
            raise SpeakerEncoderError(
                f"resemblyzer is not usable ({exc}); install it with: pip install resemblyzer 'setuptools<81'"
            ) from None
        self._audio = resemblyzer_audio
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._encoder = VoiceEncoder(device, verbose=False)

    def embed(self, audio: np.ndarray, sample_rate_hz: int) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            embedding = self._encoder.embed_utterance(self._preprocess(audio, sample_rate_hz))
        return np.asarray(embedding, dtype=np.float32)

    def embed_batch(self, clips: Sequence[np.ndarray], sample_rate_hz: int) -> np.ndarray:
        """embed_utterance's partial windows of every clip through the LSTM at once, averaged per clip."""
        import torch

        mels: list[np.ndarray] = []
        owners: list[int] = []
        for i, clip in enumerate(clips):
            wav = self._preprocess(clip, sample_rate_hz)
            # As VoiceEncoder.embed_utterance: 1.6 s windows at 1.3 per second, the last one zero-padded.
            wav_slices, mel_slices = self._encoder.compute_partial_slices(len(wav), 1.3, 0.75)
            wav = np.pad(wav, (0, max(0, wav_slices[-1].stop - len(wav))))
            mel = self._audio.wav_to_mel_spectrogram(wav)
            mels.extend(mel[s] for s in mel_slices)
            owners.extend([i] * len(mel_slices))
        if not mels:
            return np.zeros((0, self.dim), dtype=np.float32)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            partials = self._encoder(torch.from_numpy(np.stack(mels)).to(self._encoder.device)).cpu().numpy()
        index = np.asarray(owners)
        out = np.stack([partials[index == i].mean(axis=0) for i in range(len(clips))])  # (b dim)
        result: np.ndarray = (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)
        return result

    def _preprocess(self, audio: np.ndarray, sample_rate_hz: int) -> np.ndarray:
        wav = np.asarray(audio, dtype=np.float32).reshape(-1)
        if sample_rate_hz != ENCODER_SAMPLE_RATE_HZ:
            # soxr, not resemblyzer's librosa path: the same filter, without a 20 s numba compile on first use.
            wav = soxr.resample(wav, sample_rate_hz, ENCODER_SAMPLE_RATE_HZ).astype(np.float32)
        wav = self._audio.normalize_volume(wav, -30, increase_only=True)
        trimmed = self._audio.trim_long_silences(wav)
        if trimmed.shape[0] >= ENCODER_SAMPLE_RATE_HZ // 4:  # VAD may eat a very short clip whole
            wav = trimmed
        return np.asarray(wav, dtype=np.float32)


class SpeechbrainEncoder:
    name = "speechbrain"
    dim = 192

    def __init__(self, device: str = "cpu") -> None:
        try:
            from speechbrain.inference.speaker import EncoderClassifier

            self._model: Any = EncoderClassifier.from_hparams(
                source="speechbrain/spkrec-ecapa-voxceleb", run_opts={"device": device}
            )
        # Any failure (ImportError, the torchaudio ABI OSError, a hub download error) means "unusable here".
        except Exception as exc:
            raise SpeakerEncoderError(
                f"speechbrain's ECAPA encoder is not usable here ({type(exc).__name__}: {str(exc)[:160]}); "
                "use --speaker-encoder resemblyzer"
            ) from None

    def embed(self, audio: np.ndarray, sample_rate_hz: int) -> np.ndarray:
        import torch

        wav = np.asarray(audio, dtype=np.float32).reshape(-1)
        if sample_rate_hz != ENCODER_SAMPLE_RATE_HZ:
            wav = soxr.resample(wav, sample_rate_hz, ENCODER_SAMPLE_RATE_HZ).astype(np.float32)
        with torch.inference_mode():
            emb = self._model.encode_batch(torch.from_numpy(wav)[None]).reshape(-1)
        emb = emb / emb.norm().clamp_min(1e-8)
        result: np.ndarray = emb.cpu().numpy().astype(np.float32)
        return result

    def embed_batch(self, clips: Sequence[np.ndarray], sample_rate_hz: int) -> np.ndarray:
        """The clips zero-padded to the longest, with relative lengths so padding is ignored."""
        import torch

        wavs = [np.asarray(c, dtype=np.float32).reshape(-1) for c in clips]
        if sample_rate_hz != ENCODER_SAMPLE_RATE_HZ:
            wavs = [soxr.resample(w, sample_rate_hz, ENCODER_SAMPLE_RATE_HZ).astype(np.float32) for w in wavs]
        if not wavs:
            return np.zeros((0, self.dim), dtype=np.float32)
        longest = max(w.shape[0] for w in wavs)
        padded = np.zeros((len(wavs), longest), dtype=np.float32)  # (b n)
        for row, wav in enumerate(wavs):
            padded[row, : wav.shape[0]] = wav
        lengths = torch.tensor([w.shape[0] / longest for w in wavs])
        with torch.inference_mode():
            emb = self._model.encode_batch(torch.from_numpy(padded), lengths).reshape(len(wavs), -1)
        emb = emb / emb.norm(dim=1, keepdim=True).clamp_min(1e-8)
        result: np.ndarray = emb.cpu().numpy().astype(np.float32)
        return result


def load_speaker_encoder(name: str, device: str = "cpu") -> SpeakerEncoder:
    if name == "resemblyzer":
        return ResemblyzerEncoder(device)
    if name == "speechbrain":
        return SpeechbrainEncoder(device)
    raise SpeakerEncoderError(f"unknown speaker encoder {name!r}; choose resemblyzer or speechbrain")


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))
