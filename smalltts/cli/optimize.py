"""`smalltts optimize`: a model folder in int8 (CPU) or fp16 (GPU), with a parity report against the source.

smalltts optimize model/demo --out models/demo-int8 --int8
smalltts optimize MODEL_DIR --out DIR --fp16 [--overwrite] [--no-eval] [--sentences 20] [--json]

The report gives the output SNR of each converted graph on the same inputs, the end-to-end audio SNR and one
batch's wall time on this CPU. For a trained model on the bundled demo codec it also speaks `--sentences` everyday
sentences (training/everyday_sentences.txt) with both folders, in the folder's own voice (reference.wav), and
scores them as `smalltts eval --pairs` does: PER by the evaluation ASR and speaker similarity to the reference.
Converting needs the `onnx` package and the eval needs torch (the train extra); both are imported here only.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from smalltts.cli.main import CliError

_SENTENCES = Path(__file__).resolve().parents[2] / "training" / "everyday_sentences.txt"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("optimize", help="convert a model folder to int8 (CPU) or fp16 (GPU)")
    parser.add_argument("model_dir", type=Path, metavar="MODEL_DIR", help="the fp32 model folder (dmd/ + codec/)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="where the converted folder goes")
    precision = parser.add_mutually_exclusive_group(required=True)
    precision.add_argument("--int8", dest="precision", action="store_const", const="int8", help="for CPUs")
    precision.add_argument("--fp16", dest="precision", action="store_const", const="fp16", help="for GPUs")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--no-eval", dest="eval", action="store_false", help="skip PER and speaker similarity")
    parser.add_argument(
        "--sentences", type=int, default=20, metavar="N", help="everyday sentences to score (default 20)"
    )
    parser.add_argument("--asr", type=Path, metavar="PATH", help="evaluation ASR (default: the shipped demo one)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from model.runtime.assets import AssetError
    from model.runtime.optimize import OptimizeError, graph_file_bytes, optimize_model_dir, parity_report

    if args.sentences < 1:
        raise CliError("--sentences must be >= 1")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime's quantizer logs advice on the root logger for every graph
    try:
        out = optimize_model_dir(args.model_dir, args.out, args.precision, overwrite=args.overwrite)
    except (OptimizeError, AssetError) as exc:
        raise CliError(str(exc)) from None
    finally:
        root.setLevel(level)
    report = parity_report(args.model_dir, out)
    note = None
    if args.eval:
        report.eval, note = _evaluate(args.model_dir, out, args.sentences, args.asr)
    sizes = {"src_bytes": graph_file_bytes(args.model_dir), "out_bytes": graph_file_bytes(out)}
    if args.json:
        sys.stdout.write(json.dumps(report.to_dict() | sizes | {"eval_note": note}) + "\n")
        return 0
    sys.stdout.write(f"wrote {out} ({args.precision})\n")
    sys.stdout.write(report.table())
    sys.stdout.write(f"  graphs on disk: {sizes['src_bytes'] / 1e6:.1f} MB -> {sizes['out_bytes'] / 1e6:.1f} MB\n")
    if note is not None:
        sys.stdout.write(f"  PER / similarity: {note}\n")
    return 0


def _evaluate(src: Path, out: Path, sentences: int, asr: Path | None) -> tuple[dict[str, Any] | None, str | None]:
    """PER and similarity of both folders on the same sentences, voice and seeds; (None, why) when it cannot."""
    from model.runtime.audio import read_reference, write_audio
    from model.runtime.facts import read_model_facts
    from model.runtime.synthesizer import SynthesisRequest, Synthesizer
    from model.text import estimate_duration_s, tokenize

    facts = read_model_facts(src)
    if not facts.trained:
        return None, "skipped: random weights (nothing to hear)"
    if asr is None and facts.config.codec.kind != "mel":
        return None, "skipped: the shipped evaluation ASR reads the demo codec only; pass --asr PATH"
    voice = src / "reference.wav"
    if not voice.is_file():
        return None, f"skipped: {voice} (the voice to speak in) is missing"
    try:
        evaluation = importlib.import_module("training.evaluation")
    except ImportError as exc:
        return None, f"skipped: needs the train extra ({exc.name or exc} is missing)"
    asr_path = asr if asr is not None else evaluation.DEFAULT_EVAL_ASR
    texts = [line.strip() for line in _SENTENCES.read_text().splitlines() if line.strip()][:sentences]
    result: dict[str, Any] = {"sentences": len(texts), "voice": str(voice)}
    with tempfile.TemporaryDirectory() as folder:
        for key, model_dir in (("src", src), ("out", out)):
            synthesizer = Synthesizer.load(model_dir)
            latents = synthesizer.encode_reference(read_reference(voice, synthesizer.sample_rate_hz))
            requests = []
            for i, text in enumerate(texts):
                tokens = tokenize(text)
                requests.append(
                    SynthesisRequest(tuple(tokens.ids), latents, duration_s=estimate_duration_s(tokens), seed=i)
                )
            rows = []
            for i, speech in enumerate(synthesizer.synthesize_batch(requests)):
                path = Path(folder) / f"{key}_{i:03d}.wav"
                write_audio(path, speech.audio, synthesizer.sample_rate_hz)
                rows.append(evaluation.PairRow(i + 1, path, texts[i], voice))
            scored = evaluation.score_pairs(rows, model_dir=src, asr=asr_path)
            result[key] = {k: scored[k] for k in ("mean_per", "corpus_per", "mean_similarity")}
    result["per_change"] = result["out"]["corpus_per"] - result["src"]["corpus_per"]
    result["similarity_change"] = result["out"]["mean_similarity"] - result["src"]["mean_similarity"]
    return result, None
