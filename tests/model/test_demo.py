"""The bundled demo model (model/demo/, trained by `make train-demo`) loads, stays small and really speaks.

"Speaks" is checked by the evaluation ASR (committed in training/demo_state/; its own seed and clips, never a
training loss): it must find most of the expected phonemes of an everyday sentence that is in neither corpus
source, while on noise or silence of the same length it finds almost none. Quality figures (held-out PER, speaker
similarity, the 50 everyday sentences) are measured by `make demo-export`, not here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.config import read_sidecar
from model.runtime.assets import demo_dir, repo_root, resolve_model_dir
from model.runtime.audio import read_reference
from model.runtime.synthesizer import CODEC_ENCODER, SynthesisRequest, Synthesizer
from model.text import estimate_duration_s, tokenize

DEMO = demo_dir()
DEMO_ASR = repo_root() / "training" / "demo_state" / "asr.pt"
REFERENCE = DEMO / "reference.wav"
# An everyday sentence (training/everyday_sentences.txt: from neither corpus source), spoken by a voice the model
# never trained on (the shipped reference).
TEXT = "The weather is nice today."
MAX_MODEL_BYTES = 60 * 1024 * 1024
# The most phoneme errors the ASR may make on the demo's speech; on noise and silence it misses far more.
MAX_PER = 0.25


@pytest.fixture(scope="module")
def synthesizer() -> Synthesizer:
    return Synthesizer.load(DEMO)


@pytest.fixture(scope="module")
def asr():  # type: ignore[no-untyped-def]
    from training.asr import load_asr

    return load_asr(DEMO_ASR)


def _per(asr, synthesizer: Synthesizer, audio: np.ndarray, expected: list[int]) -> float:  # type: ignore[no-untyped-def]
    import torch

    from model.runtime.codec import CodecEncoder
    from model.runtime.graph import OnnxGraph
    from training.asr import greedy_decode, phoneme_error_rate

    encoder = CodecEncoder(OnnxGraph(DEMO / CODEC_ENCODER), synthesizer.hop_samples)
    latents = torch.from_numpy(np.ascontiguousarray(encoder.encode(audio)[None], dtype=np.float32))  # (1 n c)
    with torch.no_grad():
        log_probs, lengths = asr(latents, torch.tensor([latents.shape[1]]))
    return phoneme_error_rate(greedy_decode(log_probs, lengths), [expected])


def test_demo_model_is_shipped_trained_and_small() -> None:
    files = [path for path in DEMO.rglob("*") if path.is_file()]
    graphs = [path for path in files if path.suffix == ".onnx"]
    assert len(graphs) == 4, "model/demo/ must hold dmd/ and codec/ graphs"
    assert sum(path.stat().st_size for path in graphs) < MAX_MODEL_BYTES
    sidecar = read_sidecar(DEMO / "dmd" / "denoiser.onnx")
    assert sidecar is not None and sidecar["trained"] is True
    assert sidecar["model"]["preset"] == "demo" and sidecar["model"]["codec"]["kind"] == "mel"
    # The distilled student, sampled as it was trained: its own 4 timesteps, one denoiser pass each.
    schedule = sidecar["model"]["schedule"]
    assert (schedule["sampler"], schedule["num_steps"], schedule["guidance_scale"]) == ("student", 4, 1.0)
    assert schedule["student_timesteps"] == [1.0, 0.75, 0.5, 0.25]
    assert REFERENCE.is_file() and DEMO_ASR.is_file()


def test_demo_model_is_the_default_without_published_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMALLTTS_MODEL_DIR", raising=False)
    assert resolve_model_dir(None, models_dir=tmp_path) == DEMO


def test_demo_model_speaks_an_everyday_sentence(synthesizer: Synthesizer, asr) -> None:  # type: ignore[no-untyped-def]
    expected = [int(x) for x in tokenize(TEXT).ids]
    ref_latents = synthesizer.encode_reference(read_reference(REFERENCE, synthesizer.sample_rate_hz))
    request = SynthesisRequest(
        token_ids=tuple(expected), ref_latents=ref_latents, duration_s=estimate_duration_s(tokenize(TEXT)), seed=0
    )
    (result,) = synthesizer.synthesize_batch([request])
    audio = result.audio
    assert result.duration_s == pytest.approx(request.duration_s, abs=1 / synthesizer.frame_rate_hz)
    rms = float(np.sqrt(np.mean(audio**2)))
    assert 0.01 < rms < 0.5 and float(np.abs(audio).max()) <= 1.0
    per = _per(asr, synthesizer, audio, expected)
    rng = np.random.default_rng(0)
    noise = (rng.standard_normal(audio.shape) * rms).astype(np.float32)
    silence = np.zeros_like(audio)
    # The measure itself must discriminate: noise and silence of the same length are (almost) never understood.
    assert _per(asr, synthesizer, noise, expected) > 0.75
    assert _per(asr, synthesizer, silence, expected) > 0.75
    assert per <= MAX_PER, f"the ASR understood too little of the demo's speech: PER {per:.2f}"
