"""`smalltts eval`: intelligibility and speaker similarity of an exported model on a held-out dataset.

    smalltts eval --model models/mine --data data/heldout --asr runs/asr [--limit 50] [--json]

For each held-out clip the model speaks the clip's transcript, for the clip's duration, in the voice of another
clip of the same speaker (its latents are the reference). Then:

- phoneme error rate (PER): our CTC ASR decodes the generated audio re-encoded by the codec, against the
  clip's phoneme ids; the same ASR on the real latents gives the floor ("ground truth" row);
- speaker similarity: cosine between the pretrained speaker encoder's embedding (resemblyzer) of the
  generated audio and the reference clip's stored embedding; the target clip's own stored embedding gives
  the ceiling (same speaker, different utterance);
- speaker pairs: the share of generated clips that are closer to their own reference than to a clip of a
  different speaker (the demo model's acceptance asks for >= 80 %); "other voice sim" is that other similarity.

The dataset must be built with `--speaker-encoder resemblyzer` for the similarity columns.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.errors import TrainingBaseError


@dataclass(frozen=True)
class EvalRow:
    system: str
    num_clips: int
    per: float | None
    speaker_similarity: float | None
    other_voice_similarity: float | None = None
    pairs_closer_to_reference: float | None = None  # share of clips nearer their own reference than another voice


@dataclass(frozen=True)
class EvalReport:
    model_dir: str
    data_dir: str
    rows: tuple[EvalRow, ...]
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_dir": self.model_dir,
            "data_dir": self.data_dir,
            "rows": [asdict(row) for row in self.rows],
            "notes": list(self.notes),
        }

    def table(self) -> str:
        header = f"{'system':<24} {'clips':>5} {'PER':>7} {'spk sim':>8} {'other sim':>9} {'pairs won':>9}"
        lines = [header, "-" * len(header)]
        for row in self.rows:
            cells = [
                _cell(row.per, 7),
                _cell(row.speaker_similarity, 8),
                _cell(row.other_voice_similarity, 9),
                _cell(row.pairs_closer_to_reference, 9),
            ]
            lines.append(f"{row.system:<24} {row.num_clips:>5} " + " ".join(cells))
        return "\n".join(lines + [f"note: {note}" for note in self.notes]) + "\n"


def _cell(value: float | None, width: int) -> str:
    return f"{value:>{width}.3f}" if value is not None else f"{'n/a':>{width}}"


def _other_speaker_clip(dataset: Any, index: int, rng: np.random.Generator) -> int | None:
    speaker = dataset.clips[index].speaker
    others = [j for j, clip in enumerate(dataset.clips) if clip.speaker != speaker]
    return int(rng.choice(others)) if others else None


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def evaluate(
    model_dir: str | Path,
    data_dir: str | Path,
    *,
    asr: str | Path | None,
    limit: int = 50,
    seed: int = 0,
    speaker_encoder: str = "resemblyzer",
) -> EvalReport:
    import torch

    from model.runtime.codec import CodecEncoder
    from model.runtime.graph import OnnxGraph
    from model.runtime.synthesizer import CODEC_ENCODER, SynthesisRequest, Synthesizer
    from training.asr import greedy_decode, load_asr, phoneme_error_rate
    from training.loader import ClipDataset, choose_reference
    from training.speaker_encoder import SpeakerEncoderError, cosine_similarity, load_speaker_encoder

    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    notes: list[str] = []
    synthesizer = Synthesizer.load(model_dir)
    if not synthesizer.trained:
        notes.append("the model folder is marked untrained (random weights)")
    codec_encoder = CodecEncoder(OnnxGraph(Path(model_dir) / CODEC_ENCODER), synthesizer.hop_samples)
    dataset = ClipDataset.load(data_dir)
    if dataset.latent_dim != synthesizer.latent_dim:
        raise ValueError(f"dataset latents are {dataset.latent_dim}-dim; the model's are {synthesizer.latent_dim}")
    asr_model = load_asr(asr) if asr is not None else None
    if asr_model is None:
        notes.append("no --asr checkpoint: PER not measured")
    encoder = None
    if dataset.has_speaker_embeddings:
        try:
            encoder = load_speaker_encoder(speaker_encoder)
        except SpeakerEncoderError as exc:
            notes.append(f"speaker similarity not measured: {exc}")
    else:
        notes.append("the dataset has no stored speaker embeddings (build with --speaker-encoder): similarity n/a")

    rng = np.random.default_rng(seed)
    # Spread evenly over the dataset (ordered by speaker), so a limit below its size still covers every voice.
    indices = sorted({int(i) for i in np.linspace(0, len(dataset) - 1, min(limit, len(dataset)))})
    hyps_gen, hyps_real, refs = [], [], []
    sims_gen, sims_ceiling, sims_other, wins = [], [], [], []
    for i in indices:
        clip = dataset.clips[i]
        ref_index = choose_reference(dataset, i, rng)
        ref = dataset.clips[ref_index]
        duration_s = clip.latents.shape[0] / synthesizer.frame_rate_hz
        request = SynthesisRequest(
            token_ids=tuple(int(x) for x in clip.phonemes),
            ref_latents=ref.latents[: synthesizer.max_reference_frames],
            duration_s=min(max(duration_s, synthesizer.limits.min_duration_s), synthesizer.limits.max_duration_s),
            seed=seed + i,
        )
        (result,) = synthesizer.synthesize_batch([request])
        refs.append([int(x) for x in clip.phonemes])
        if asr_model is not None:
            generated = codec_encoder.encode(result.audio)[None]  # (1 n c)
            real = clip.latents[None]  # (1 n c)
            with torch.no_grad():
                for latents, hyps in ((generated, hyps_gen), (real, hyps_real)):
                    x = torch.from_numpy(np.ascontiguousarray(latents, dtype=np.float32))
                    log_probs, lengths = asr_model(x, torch.tensor([x.shape[1]]))
                    hyps.extend(greedy_decode(log_probs, lengths))
        if encoder is not None and ref.speaker_embedding is not None and clip.speaker_embedding is not None:
            embedding = encoder.embed(result.audio, synthesizer.sample_rate_hz)
            sims_gen.append(cosine_similarity(embedding, ref.speaker_embedding))
            other_index = _other_speaker_clip(dataset, i, rng)
            other = dataset.clips[other_index].speaker_embedding if other_index is not None else None
            if other is not None:
                sims_other.append(cosine_similarity(embedding, other))
                wins.append(1.0 if sims_gen[-1] > sims_other[-1] else 0.0)
            if ref_index != i:
                sims_ceiling.append(cosine_similarity(clip.speaker_embedding, ref.speaker_embedding))

    per_gen = phoneme_error_rate(hyps_gen, refs) if hyps_gen else None
    per_real = phoneme_error_rate(hyps_real, refs) if hyps_real else None
    rows = (
        EvalRow("generated", len(indices), per_gen, _mean(sims_gen), _mean(sims_other), _mean(wins)),
        EvalRow("ground truth (ceiling)", len(indices), per_real, _mean(sims_ceiling)),
    )
    for row in rows:
        for value in (row.per, row.speaker_similarity, row.other_voice_similarity, row.pairs_closer_to_reference):
            if value is not None and not math.isfinite(value):
                raise ValueError(f"evaluation produced a non-finite value for {row.system}")
    return EvalReport(model_dir=str(model_dir), data_dir=str(data_dir), rows=rows, notes=tuple(notes))


def write_report(report: EvalReport, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return path


# --- scoring any audio: `smalltts eval --pairs FILE.jsonl` -------------------------------------------------------

DEFAULT_EVAL_ASR = Path(__file__).with_name("demo_state") / "asr.pt"


class PairsError(TrainingBaseError, ValueError):
    """A pairs file row is unusable; the message names its line."""


@dataclass(frozen=True)
class PairRow:
    line: int
    audio: Path
    text: str
    ref: Path | None


def read_pairs(path: str | Path) -> list[PairRow]:
    """Rows {"audio": path, "text": str, "ref": optional path}; relative paths are relative to the file."""
    path = Path(path)
    if not path.is_file():
        raise PairsError(f"{path}: no such file")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PairsError(f"{path}:{number}: not JSON ({exc.msg})") from None
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("audio"), str)
            or not isinstance(data.get("text"), str)
        ):
            raise PairsError(f'{path}:{number}: a row needs "audio" (a path) and "text" (a string)')
        ref = data.get("ref")
        if ref is not None and not isinstance(ref, str):
            raise PairsError(f'{path}:{number}: "ref" must be a path when given')
        resolved = [(path.parent / p) if not Path(p).is_absolute() else Path(p) for p in (data["audio"], ref or "")]
        for key, candidate in zip(("audio", "ref"), resolved, strict=True):
            if (key == "audio" or ref) and not candidate.is_file():
                raise PairsError(f"{path}:{number}: {key} file {candidate} not found")
        rows.append(PairRow(number, resolved[0], data["text"], resolved[1] if ref else None))
    if not rows:
        raise PairsError(f"{path}: no rows")
    return rows


def score_pairs(
    rows: list[PairRow],
    *,
    model_dir: str | Path,
    asr: str | Path = DEFAULT_EVAL_ASR,
    speaker_encoder: str = "resemblyzer",
) -> dict[str, Any]:
    """PER of each row's audio by the evaluation ASR (on the model's codec latents of it) against the text's
    phonemes, and the speaker similarity to `ref` when given. Returns {"rows": [...], "mean_per": float, ...}."""
    import torch

    from model.errors import InputError
    from model.runtime.audio import read_reference
    from model.runtime.codec import CodecEncoder
    from model.runtime.graph import OnnxGraph
    from model.runtime.synthesizer import CODEC_ENCODER, Synthesizer
    from model.text import tokenize
    from model.text.vocab import is_tag_id
    from training.asr import greedy_decode, load_asr, phoneme_error_rate
    from training.speaker_encoder import cosine_similarity, load_speaker_encoder

    synthesizer = Synthesizer.load(model_dir)
    rate = synthesizer.sample_rate_hz
    codec_encoder = CodecEncoder(OnnxGraph(Path(model_dir) / CODEC_ENCODER), synthesizer.hop_samples)
    asr_model = load_asr(asr).eval()
    encoder = load_speaker_encoder(speaker_encoder) if any(row.ref is not None for row in rows) else None
    scored, hyps, refs = [], [], []
    for row in rows:
        try:
            audio = read_reference(row.audio, rate, synthesizer.limits)
            ids = [i for i in tokenize(row.text).ids if not is_tag_id(i)]
        except InputError as exc:
            raise PairsError(f"line {row.line}: {exc.message}") from None
        latents = codec_encoder.encode(audio)[None]  # (1 n c)
        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(latents, dtype=np.float32))
            log_probs, lengths = asr_model(x, torch.tensor([x.shape[1]]))
        hyp = greedy_decode(log_probs, lengths)
        per = phoneme_error_rate(hyp, [ids])
        hyps.extend(hyp)
        refs.append(ids)
        similarity = None
        if encoder is not None and row.ref is not None:
            reference = read_reference(row.ref, rate, synthesizer.limits)
            similarity = cosine_similarity(encoder.embed(audio, rate), encoder.embed(reference, rate))
        scored.append({"audio": str(row.audio), "per": per, "similarity": similarity})
    similarities = [r["similarity"] for r in scored if r["similarity"] is not None]
    return {
        "rows": scored,
        "mean_per": float(np.mean([r["per"] for r in scored])),
        "corpus_per": phoneme_error_rate(hyps, refs),  # edits over all rows / reference phonemes over all rows
        "mean_similarity": float(np.mean(similarities)) if similarities else None,
        "asr": str(asr),
        "model_dir": str(model_dir),
    }
