"""The offline codec's training: fixed log-mel statistics, then the Vocos-style vocoder (model/nn/mel_codec.py).

    smalltts train vocoder --manifest data/synth/manifest.jsonl --out runs/vocoder [--steps N] [--resume latest]
    CPU smoke test: smalltts train vocoder --manifest data/synth/manifest.jsonl --out /tmp/v --steps 20 --cpu

A fresh run first fits the encoder's per-bin log-mel mean and std on `stats_clips` clips and exports the codec
folder RUN/codec/ at once (encoder.onnx + the still untrained vocoder), so `smalltts dataset build
--codec-dir RUN/codec` can start while the vocoder trains: the encoder never changes after that. Every
checkpoint re-exports RUN/codec/decoder.onnx with the current vocoder weights and writes RUN/codec.pt (the
whole codec, small enough to commit so another machine can resume or export).

Objective (no discriminator: a GAN is too slow to train on a CPU): L1 between log-mel spectrograms of the
output and the target at the codec's own resolution, plus a multi-resolution STFT loss (spectral convergence
and log-magnitude L1 at three FFT sizes), which also constrains the phase through the overlap-add.

Legend:
    b  batch
    m  audio samples of a training segment
    k  frequency bins
    s  STFT frames
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch
import torch.nn.functional as F
from torch import Tensor

from model.config import CodecConfig, ModelConfig, preset_config, write_sidecar
from model.nn.mel_codec import MelCodec, load_mel_codec, save_mel_codec
from training.config import VocoderConfig, vocoder_config_for
from training.loop import TrainLoop, TrainResult, build_optimizer, prepare_run_dir, step_generator
from training.precision import create_accelerator

CODEC_WEIGHTS = "codec.pt"
RESOLUTIONS: tuple[tuple[int, int], ...] = ((512, 128), (1024, 256), (2048, 512))  # (n_fft, hop) of the STFT loss


@dataclass(frozen=True)
class ManifestClip:
    audio: Path
    speaker: str


def read_clips(manifest: str | Path) -> list[ManifestClip]:
    from training.dataset import read_manifest

    return [ManifestClip(source.audio, source.speaker) for source in read_manifest(manifest)]


def pick_clips(clips: Sequence[ManifestClip], limit: int, seed: int) -> list[ManifestClip]:
    """Up to `limit` clips, round-robin over speakers so every voice is represented; deterministic in seed."""
    by_speaker: dict[str, list[ManifestClip]] = {}
    for clip in clips:
        by_speaker.setdefault(clip.speaker, []).append(clip)
    rng = random.Random(seed)
    queues = [rng.sample(items, len(items)) for _, items in sorted(by_speaker.items())]
    picked: list[ManifestClip] = []
    while len(picked) < limit and any(queues):
        for queue in queues:
            if queue and len(picked) < limit:
                picked.append(queue.pop())
    return picked


def load_audio(path: Path, sample_rate_hz: int) -> np.ndarray:
    samples, source_rate_hz = sf.read(str(path), dtype="float32", always_2d=True)  # (n ch)
    mono = samples.mean(axis=1)
    if source_rate_hz != sample_rate_hz:
        mono = soxr.resample(mono, source_rate_hz, sample_rate_hz, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def fit_codec_statistics(codec: MelCodec, clips: Sequence[np.ndarray]) -> None:
    with torch.no_grad():
        log_mels = [codec.encoder.log_mel(torch.from_numpy(clip)[None, None])[0] for clip in clips]
    codec.encoder.fit_statistics(log_mels)
    codec.sync_statistics()


def export_codec_dir(codec: MelCodec, out_dir: str | Path, *, trained: bool, model_id: str) -> Path:
    """Writes out_dir/{encoder,decoder}.onnx with sidecars (the codec of a model folder)."""
    from model.export import (
        CODEC_DECODER_INPUTS,
        CODEC_DECODER_OUTPUTS,
        CODEC_ENCODER_INPUTS,
        CODEC_ENCODER_OUTPUTS,
        OPSET_VERSION,
        export_codec,
    )

    codec.eval()
    encoder, decoder = export_codec(codec, out_dir)
    cfg = ModelConfig(preset="codec", codec=codec.config())
    common = {"opset": OPSET_VERSION, "trained": trained, "model_id": model_id}
    for graph_path in (encoder, decoder):
        dedupe_constants(graph_path)
    write_sidecar(encoder, cfg, graph="codec_encoder", inputs=list(CODEC_ENCODER_INPUTS),
                  outputs=list(CODEC_ENCODER_OUTPUTS), **common)  # fmt: skip
    write_sidecar(decoder, cfg, graph="codec_decoder", inputs=list(CODEC_DECODER_INPUTS),
                  outputs=list(CODEC_DECODER_OUTPUTS), **common)  # fmt: skip
    return Path(out_dir)


def dedupe_constants(path: str | Path) -> int:
    """Merges identical Constant nodes of an ONNX file in place; returns how many were removed.

    The tracer inlines a fixed buffer (the DFT bases) as a new Constant at every use, so the unrolled Griffin-Lim
    graph would hold 66 copies of each basis (139 MB instead of 9 MB).
    """
    import hashlib

    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    first_output: dict[str, str] = {}
    renamed: dict[str, str] = {}
    kept = []
    for node in graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].HasField("t"):
            tensor = node.attribute[0].t
            key = hashlib.sha256(
                tensor.data_type.to_bytes(4, "little") + bytes(str(list(tensor.dims)), "ascii") + tensor.raw_data
            ).hexdigest()
            if tensor.raw_data and key in first_output:
                renamed[node.output[0]] = first_output[key]
                continue
            first_output.setdefault(key, node.output[0])
        kept.append(node)
    if not renamed:
        return 0
    for node in kept:
        for i, name in enumerate(node.input):
            if name in renamed:
                node.input[i] = renamed[name]
    for output in graph.output:
        if output.name in renamed:
            raise ValueError(f"{path}: a graph output is a duplicated constant; not deduplicating")
    del graph.node[:]
    graph.node.extend(kept)
    onnx.save(model, str(path))
    return len(renamed)


# --- the objective ------------------------------------------------------------------------------------------


def _stft_magnitude(audio: Tensor, n_fft: int, hop: int) -> Tensor:
    window = torch.hann_window(n_fft, device=audio.device)
    spectrum = torch.stft(audio, n_fft, hop, window=window, return_complex=True)  # (b k s)
    return spectrum.abs().clamp_min(1e-6)


def vocoder_loss(codec: MelCodec, predicted: Tensor, target: Tensor) -> dict[str, Tensor]:
    """predicted, target (b 1 m) -> {"loss", "mel_loss", "stft_loss"}."""
    mel_loss = F.l1_loss(codec.encoder.log_mel(predicted), codec.encoder.log_mel(target))
    stft_loss = predicted.new_zeros(())
    for n_fft, hop in RESOLUTIONS:
        pred_mag = _stft_magnitude(predicted[:, 0], n_fft, hop)
        target_mag = _stft_magnitude(target[:, 0], n_fft, hop)
        convergence = torch.linalg.norm(target_mag - pred_mag) / torch.linalg.norm(target_mag)
        stft_loss = stft_loss + convergence + F.l1_loss(pred_mag.log(), target_mag.log())
    stft_loss = stft_loss / len(RESOLUTIONS)
    return {"loss": mel_loss + stft_loss, "mel_loss": mel_loss, "stft_loss": stft_loss}


def segment_batch(
    clips: Sequence[np.ndarray], batch_size: int, segment_samples: int, generator: torch.Generator
) -> Tensor:
    """(b 1 m) random segments (zero padded when a clip is shorter), chosen by this step's generator."""
    batch = torch.zeros(batch_size, 1, segment_samples)
    picks = torch.randint(len(clips), (batch_size,), generator=generator).tolist()
    for row, index in enumerate(picks):
        clip = clips[index]
        start_max = max(clip.shape[0] - segment_samples, 0)
        start = int(torch.randint(start_max + 1, (1,), generator=generator))
        piece = clip[start : start + segment_samples]
        batch[row, 0, : piece.shape[0]] = torch.from_numpy(piece)
    return batch


# --- the trainer --------------------------------------------------------------------------------------------


def train_vocoder(
    cfg: VocoderConfig, manifest: str | Path, run_dir: str | Path, *, resume: str | None = None, cpu: bool = True
) -> TrainResult:
    from training.loop import find_latest_checkpoint

    run_dir = Path(run_dir)
    prepare_run_dir(run_dir, resume)
    accelerator = create_accelerator(cpu=cpu)
    codec_cfg: CodecConfig = preset_config(cfg.preset).codec
    if codec_cfg.kind != "mel" or codec_cfg.hidden_dim <= 0:
        raise ValueError(f"preset {cfg.preset!r} has no trainable mel codec (kind mel, hidden_dim > 0)")
    all_clips = read_clips(manifest)
    if not all_clips:
        raise ValueError(f"{manifest}: no clips")
    rate = codec_cfg.sample_rate_hz

    codec = MelCodec(codec_cfg, seed=cfg.run.seed)
    fresh = resume is None or find_latest_checkpoint(run_dir) is None
    if fresh:
        stats_audio = [load_audio(c.audio, rate) for c in pick_clips(all_clips, cfg.stats_clips, cfg.run.seed + 1)]
        fit_codec_statistics(codec, stats_audio)
        export_codec_dir(codec, run_dir / "codec", trained=False, model_id=f"mel-{cfg.preset}-untrained")
        save_mel_codec(codec, str(run_dir / CODEC_WEIGHTS))
    train_audio = [load_audio(c.audio, rate) for c in pick_clips(all_clips, cfg.max_clips, cfg.run.seed)]
    segment_samples = round(cfg.segment_s * rate) // codec_cfg.hop_samples * codec_cfg.hop_samples

    # Only the decoder learns; the encoder (STFT, filterbank, statistics) is fixed.
    optimizer, scheduler = build_optimizer(codec.decoder.parameters(), cfg.optim, cfg.run.steps)

    def write_weights(ckpt: Path) -> None:
        save_mel_codec(codec, str(ckpt / CODEC_WEIGHTS))
        save_mel_codec(codec, str(run_dir / CODEC_WEIGHTS))
        trained = ckpt.name != "step_0000000"  # `--steps 0` only fixes the encoder's statistics
        export_codec_dir(codec, run_dir / "codec", trained=trained, model_id=f"mel-{cfg.preset}-{ckpt.name}")

    loop = TrainLoop(
        name="vocoder",
        config=cfg,
        model_config={"codec": asdict(codec_cfg)},
        run_dir=run_dir,
        accelerator=accelerator,
        stateful={"codec": codec, "optimizer": optimizer, "scheduler": scheduler},
        write_weights=write_weights,
    )
    if resume is not None and not fresh:
        loop.resume(resume)

    def step_fn(step: int, _: None) -> dict[str, float]:
        generator = step_generator(cfg.run.seed, step, 0)
        target = segment_batch(train_audio, cfg.batch_size, segment_samples, generator)  # (b 1 m)
        codec.train()
        with torch.no_grad():
            latents = codec.encode(target)  # (b n c)
        losses = vocoder_loss(codec, codec.decode(latents), target)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(codec.decoder.parameters(), cfg.optim.grad_clip_norm)
        optimizer.step()
        scheduler.step()
        return {**{k: float(v.detach()) for k, v in losses.items()}, "grad_norm": float(grad_norm),
                "lr": scheduler.get_last_lr()[0]}  # fmt: skip

    return loop.run(step_fn)


def export_from_checkpoint(run_dir: str | Path) -> Path:
    """Re-creates RUN/codec/ and RUN/codec.pt from the run's latest checkpoint (after copying checkpoints in)."""
    from training.loop import STATE_FILE, TrainingError, find_latest_checkpoint

    run_dir = Path(run_dir)
    ckpt = find_latest_checkpoint(run_dir)
    if ckpt is None:
        raise TrainingError(f"{run_dir} has no checkpoint to export the codec from")
    state = torch.load(ckpt / STATE_FILE, map_location="cpu", weights_only=False)
    if state.get("trainer") != "vocoder":
        raise TrainingError(f"{ckpt} is a {state.get('trainer')!r} checkpoint, not a vocoder one")
    codec = MelCodec(CodecConfig(**state["config"]["model"]["codec"]))
    codec.load_state_dict(state["state"]["codec"])
    save_mel_codec(codec, str(run_dir / CODEC_WEIGHTS))
    return export_codec_dir(codec, run_dir / "codec", trained=int(state["step"]) > 0, model_id=f"mel-{ckpt.name}")


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Export a vocoder run's codec folder from its latest checkpoint.")
    parser.add_argument("--export-codec", type=Path, required=True, metavar="RUN", help="a `train vocoder` run folder")
    args = parser.parse_args(argv)
    print(export_from_checkpoint(args.export_codec))
    return 0


def vocoder_config(**overrides: object) -> VocoderConfig:
    """The default VocoderConfig with the given (flat) fields; None leaves a field alone."""
    return vocoder_config_for(**{k: v for k, v in overrides.items() if v is not None})


def load_trained_codec(run_dir: str | Path) -> MelCodec:
    return load_mel_codec(str(Path(run_dir) / CODEC_WEIGHTS))


if __name__ == "__main__":
    raise SystemExit(main())
