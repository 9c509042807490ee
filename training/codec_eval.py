"""Reconstruction quality of a codec folder (encoder.onnx + decoder.onnx), measured through the ONNX graphs.

    python -m training.codec_eval --codec-dir runs/vocoder/codec --manifest data/synth/heldout.jsonl \\
        --asr runs/asr [--limit 100] [--json out.json]

For each clip: audio -> encoder -> decoder -> reconstructed audio. Reported:

- mel_l1: mean |latents(reconstructed) - latents(original)| in normalised log-mel units (0 = identical);
- PER of our CTC ASR (on latents) on the reconstructed audio vs on the original audio (with --asr);
- speaker similarity (resemblyzer cosine) of the reconstruction to its own original, against the similarity of
  the original to a clip of another speaker (how far apart two voices are; the reconstruction should be much
  closer to its original than that).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def evaluate_codec(
    codec_dir: str | Path,
    manifest: str | Path,
    *,
    asr: str | Path | None = None,
    limit: int = 100,
    speaker_encoder: str | None = "resemblyzer",
    decoder_name: str = "decoder.onnx",
) -> dict[str, Any]:
    from model.config import ModelConfig, read_sidecar
    from model.runtime.codec import CodecDecoder, CodecEncoder
    from model.runtime.graph import OnnxGraph
    from model.text import tokenize
    from training.dataset import read_manifest
    from training.vocoder import load_audio, pick_clips

    codec_dir = Path(codec_dir)
    sidecar = read_sidecar(codec_dir / "encoder.onnx")
    if sidecar is None:
        raise ValueError(f"{codec_dir}/encoder.onnx has no sidecar: not one of our codecs")
    codec = ModelConfig.from_dict(sidecar["model"]).codec
    encoder = CodecEncoder(OnnxGraph(codec_dir / "encoder.onnx"), codec.hop_samples)
    decoder = CodecDecoder(OnnxGraph(codec_dir / decoder_name), codec.hop_samples)
    sources = read_manifest(manifest)
    clips = pick_clips([_Source(s.audio, s.speaker, s.text) for s in sources], limit, seed=0)

    asr_model = None
    if asr is not None:
        from training.asr import load_asr

        asr_model = load_asr(asr)
    embedder = None
    if speaker_encoder is not None:
        from training.speaker_encoder import load_speaker_encoder

        embedder = load_speaker_encoder(speaker_encoder)

    mel_l1: list[float] = []
    refs: list[list[int]] = []
    hyps: dict[str, list[list[int]]] = {"original": [], "reconstructed": []}
    embeddings: list[tuple[str, np.ndarray, np.ndarray]] = []
    for clip in clips:
        audio = load_audio(clip.audio, codec.sample_rate_hz)
        latents = encoder.encode(audio)  # (n c)
        rebuilt = decoder.decode(latents[None])[0][: audio.shape[0]]
        rebuilt_latents = encoder.encode(rebuilt)
        frames = min(latents.shape[0], rebuilt_latents.shape[0])
        mel_l1.append(float(np.abs(latents[:frames] - rebuilt_latents[:frames]).mean()))
        if asr_model is not None:
            refs.append(list(tokenize(clip.text).ids))
            for name, lat in (("original", latents), ("reconstructed", rebuilt_latents)):
                hyps[name].append(_recognise(asr_model, lat))
        if embedder is not None:
            embeddings.append(
                (
                    clip.speaker,
                    embedder.embed(audio, codec.sample_rate_hz),
                    embedder.embed(rebuilt, codec.sample_rate_hz),
                )
            )

    report: dict[str, Any] = {
        "codec_dir": str(codec_dir),
        "decoder": decoder_name,
        "codec": {
            key: getattr(codec, key) for key in ("kind", "sample_rate_hz", "hop_samples", "latent_dim", "hidden_dim")
        },
        "manifest": str(manifest),
        "num_clips": len(clips),
        "mel_l1": float(np.mean(mel_l1)),
    }
    if asr_model is not None:
        from training.asr import phoneme_error_rate

        report["per_original"] = phoneme_error_rate(hyps["original"], refs)
        report["per_reconstructed"] = phoneme_error_rate(hyps["reconstructed"], refs)
    if embeddings:
        from training.speaker_encoder import cosine_similarity

        own = [cosine_similarity(original, rebuilt) for _, original, rebuilt in embeddings]
        other = []
        for i, (speaker, original, _) in enumerate(embeddings):
            j = next(
                (k for k in range(i + 1, i + len(embeddings)) if embeddings[k % len(embeddings)][0] != speaker), None
            )
            if j is not None:
                other.append(cosine_similarity(original, embeddings[j % len(embeddings)][1]))
        report["similarity_to_original"] = float(np.mean(own))
        report["similarity_original_to_other_voice"] = float(np.mean(other)) if other else None
        report["pairs_closer_to_original_than_other_voice"] = (
            float(np.mean([a > b for a, b in zip(own, other, strict=False)])) if other else None
        )
    return report


class _Source:
    def __init__(self, audio: Path, speaker: str, text: str) -> None:
        self.audio, self.speaker, self.text = audio, speaker, text


def _recognise(asr_model: Any, latents: np.ndarray) -> list[int]:
    import torch

    from training.asr import greedy_decode

    x = torch.from_numpy(np.ascontiguousarray(latents, dtype=np.float32))[None]  # (1 n c)
    with torch.no_grad():
        log_probs, lengths = asr_model(x, torch.tensor([x.shape[1]]))
    return greedy_decode(log_probs, lengths)[0]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codec-dir", type=Path, required=True)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--asr", type=Path, help="ASR run/checkpoint for the PER columns")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--decoder", default="decoder.onnx", help="decoder graph file name in the codec folder")
    parser.add_argument("--no-speaker-similarity", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    report = evaluate_codec(
        args.codec_dir,
        args.manifest,
        asr=args.asr,
        limit=args.limit,
        speaker_encoder=None if args.no_speaker_similarity else "resemblyzer",
        decoder_name=args.decoder,
    )
    text = json.dumps(report, indent=2)
    sys.stdout.write(text + "\n")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
