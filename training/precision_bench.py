"""fp32 vs bf16 autocast on this machine's CPU, side by side in one run: a square matmul and one teacher training
step (forward + backward + AdamW) of a preset, so `--mixed-precision` is chosen by measurement, not by habit.

    python -m training.precision_bench --preset demo --json bench/precision.json

Prints a table and writes JSON naming the CPU (model name and whether it has AMX / AVX-512 bf16 units). Timings
are medians of interleaved repeats (fp32, bf16, fp32, ...) so a noisy neighbour hurts both columns alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from training.precision import cpu_facts


def _median_ms(fn: Callable[[], None], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def _teacher_step(preset: str, batch: int, frames: int, bf16: bool) -> Callable[[], None]:
    from model.config import preset_config
    from model.nn.dit import DiTModel

    torch.manual_seed(0)
    cfg = preset_config(preset)
    model = DiTModel(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(batch, frames, cfg.latent_dim)
    ref = torch.randn(batch, 64, cfg.latent_dim)
    ref_len = torch.full((batch,), 64)
    mask = torch.ones(batch, frames, dtype=torch.bool)
    phonemes = torch.randint(10, 170, (batch, frames // 3))
    ph_mask = torch.ones_like(phonemes, dtype=torch.bool)
    t = torch.rand(batch)

    def step() -> None:
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
        with ctx:
            v = model(x, ref, ref_len, mask, phonemes, ph_mask, t)
            loss = (v.float() - x).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def run(preset: str, batch: int, frames: int, repeats: int) -> dict[str, Any]:
    a32 = torch.randn(2048, 2048)
    a16 = a32.to(torch.bfloat16)
    cases: dict[str, dict[str, Callable[[], None]]] = {
        "matmul 2048^3": {"fp32": lambda: (a32 @ a32, None)[1], "bf16": lambda: (a16 @ a16, None)[1]},
        f"{preset} teacher step b{batch} n{frames}": {
            "fp32": _teacher_step(preset, batch, frames, bf16=False),
            "bf16": _teacher_step(preset, batch, frames, bf16=True),
        },
    }
    rows = []
    for name, fns in cases.items():
        for fn in fns.values():
            fn()  # warm-up (oneDNN kernels are built on first use)
        timings: dict[str, list[float]] = {"fp32": [], "bf16": []}
        for _ in range(repeats):
            for kind, fn in fns.items():
                timings[kind].append(_median_ms(fn, 1))
        fp32, bf16 = statistics.median(timings["fp32"]), statistics.median(timings["bf16"])
        rows.append(
            {"case": name, "fp32_ms": round(fp32, 2), "bf16_ms": round(bf16, 2), "speedup": round(fp32 / bf16, 2)}
        )
    return {"machine": {**cpu_facts(), "threads": torch.get_num_threads()}, "torch": torch.__version__, "rows": rows}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=80)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    report = run(args.preset, args.batch, args.frames, args.repeats)
    print(f"{report['machine']['cpu']} ({report['machine']['threads']} threads), torch {report['torch']}")
    print(f"{'case':<40} {'fp32 ms':>9} {'bf16 ms':>9} {'speedup':>8}")
    for row in report["rows"]:
        print(f"{row['case']:<40} {row['fp32_ms']:>9} {row['bf16_ms']:>9} {row['speedup']:>7}x")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
