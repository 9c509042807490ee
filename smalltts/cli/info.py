"""`smalltts info`: what model would run, and how (preset, precision, size, audio format, providers, batching).

smalltts info [--model DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys

from smalltts.cli.model_option import UNTRAINED_NOTE, add_model_argument, open_synthesizer, warn_if_untrained


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("info", help="describe the model that `say` and `serve` would use")
    add_model_argument(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    synthesizer = open_synthesizer(args.model)
    summary = synthesizer.summary()
    if args.json:
        sys.stdout.write(json.dumps(summary, sort_keys=True) + "\n")
        warn_if_untrained(synthesizer)
        return 0
    limits = summary["limits"]
    rows = [
        ("model", summary["model_id"]),
        ("model dir", summary["model_dir"]),
        ("trained", "yes" if summary["trained"] else f"NO, {UNTRAINED_NOTE}"),
        ("preset", summary["preset"]),
        ("precision", _precision(summary)),
        ("parameters", f"{summary['num_parameters']:,} (codec {summary['codec_num_parameters']:,})"),
        ("codec", summary["codec"]),
        ("sample rate", f"{summary['sample_rate_hz']} Hz"),
        ("hop", f"{summary['hop_samples']} samples ({summary['frame_rate_hz']:g} frames/s)"),
        ("latent dim", str(summary["latent_dim"])),
        ("providers", ", ".join(summary["providers"])),
        ("batch > 1", "yes" if summary["accepts_batch"] else "no (requests run one by one)"),
        ("sampler", f"{summary['sampler']}, {summary['default_steps']} steps unless a request says"),
        ("duration", f"{limits['min_duration_s']:g} to {limits['max_duration_s']:g} s (as the service: SMALLTTS_*)"),
        ("steps", f"1 to {limits['max_steps']}"),
        ("reference", f"{limits['min_reference_s']:g} to {limits['max_reference_s']:g} s"),
        ("max tokens", str(limits["max_tokens"])),
    ]
    width = max(len(name) for name, _ in rows)
    sys.stdout.write("".join(f"{name:<{width}}  {value}\n" for name, value in rows))
    warn_if_untrained(synthesizer)
    return 0


def _precision(summary: dict[str, object]) -> str:
    """ "int8" alone when every converted graph says so; the odd ones out named ("int8 (codec/encoder.onnx fp32)")."""
    precision = str(summary["precision"])
    graphs = summary.get("graph_precisions")
    others = {name: p for name, p in graphs.items() if p != precision} if isinstance(graphs, dict) else {}
    if not others:
        return precision
    return f"{precision} ({', '.join(f'{name} {p}' for name, p in sorted(others.items()))})"
