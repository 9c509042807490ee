"""The training-loop pieces every trainer shares: accelerate setup, EMA, LR schedule, per-step RNG, checkpoints.

One run folder per training run:

    RUN/config.json                    the component config (TeacherConfig, ...) and the model config
    RUN/metrics.jsonl, RUN/loss.png    scalars (see training.metrics); RUN/tensorboard/ when installed
    RUN/checkpoints/step_000100/       config.json (the step + the run's config.json), state.pt (every module,
                                       optimizer, scheduler, EMA, step, config), rng_rank<r>.pt (each process's
                                       RNG states) and the weight files the next stage reads (teacher.pt,
                                       teacher_ema.pt, student.pt, asr.pt, sv.pt)
    RUN/checkpoints/latest             the name of the newest complete checkpoint

Exact resume: every random draw of a step (batch choice, reference crops, t, noise, CFG dropout) comes from
generators seeded by (seed, step, rank), and the saved state restores weights, optimizer moments, the LR
schedule and the EMA, so the step after a resume computes what the uninterrupted run computed.

Multi-GPU: `accelerate launch` starts one process per GPU; `Accelerator` wraps the trained modules in DDP, each
rank reads its own batches (BatchStream takes global batch step * world + rank) and the main process writes.
"""

from __future__ import annotations

import copy
import json
import math
import platform
import random
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from model.config import preset_config
from training.config import MixedPrecision, config_to_dict
from training.loader import BatchStream, ClipDataset
from training.metrics import MetricsLogger

STATE_FILE = "state.pt"
CONFIG_FILE = "config.json"
LATEST_FILE = "latest"


class TrainingError(RuntimeError):
    """A run cannot start or resume (wrong folder, mismatched checkpoint)."""


def cpu_facts() -> dict[str, Any]:
    """This CPU's model name and whether it has bf16 matrix units (AMX tiles, AVX-512 bf16), from /proc/cpuinfo."""
    model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    return {"cpu": model, "amx_bf16": "amx_bf16" in flags, "avx512_bf16": "avx512_bf16" in flags}


def resolve_mixed_precision(value: MixedPrecision, *, cpu: bool) -> str:
    """auto = bf16 on a GPU that supports it, and on a CPU with bf16 matrix units (measured on one with AMX:
    a demo teacher step 1.5x faster, `python -m training.precision_bench`); fp32 elsewhere, where bf16 is
    emulated and slower."""
    if value == "auto":
        on_gpu = not cpu and torch.cuda.is_available()
        if on_gpu:
            return "bf16" if torch.cuda.is_bf16_supported() else "no"
        facts = cpu_facts()
        return "bf16" if facts["amx_bf16"] or facts["avx512_bf16"] else "no"
    return value


def create_accelerator(mixed_precision: MixedPrecision, *, cpu: bool = False) -> Any:
    """An Accelerator (imported lazily: accelerate is a train-only dependency). cpu=True forces the CPU."""
    from accelerate import Accelerator

    return Accelerator(cpu=cpu, mixed_precision=resolve_mixed_precision(mixed_precision, cpu=cpu))


def step_generator(seed: int, step: int, rank: int, stream: int = 0) -> torch.Generator:
    """A CPU generator for one step's random draws, independent of everything that happened before."""
    # A fixed polynomial of small integers: distinct streams for distinct (seed, step, rank, stream).
    mixed = ((seed * 1_000_003 + step) * 8191 + rank) * 131 + stream
    return torch.Generator().manual_seed(mixed % (2**63 - 1))


def randn(shape: tuple[int, ...] | torch.Size, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Gaussian noise drawn on the CPU (so it is the same on every device) and moved to `device`."""
    return torch.randn(tuple(shape), generator=generator).to(device)


def rand(shape: tuple[int, ...] | torch.Size, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(tuple(shape), generator=generator).to(device)


def warmup_cosine_lambda(total_steps: int, warmup_steps: int, lr: float, min_lr: float) -> Callable[[int], float]:
    """LR factor: linear warmup from ~0 to 1, then cosine down to min_lr / lr at total_steps (spec §4.2)."""
    floor = min(1.0, min_lr / lr) if lr > 0 else 0.0

    def factor(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return max(1e-6, step / warmup_steps)
        decay_steps = max(1, total_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / decay_steps)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


class Ema(nn.Module):
    """Exponential moving average of a module's weights (buffers are copied).

    The decay ramps up as 1 - (1 + step)^-power (capped at beta), like ema_pytorch's default, so early
    averages are not dominated by the random initialisation; `shadow` is an ordinary module to evaluate/export.
    """

    def __init__(self, model: nn.Module, beta: float, power: float = 2.0 / 3.0) -> None:
        super().__init__()
        self.beta = beta
        self.power = power
        self.shadow = copy.deepcopy(model).eval().requires_grad_(False)
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.int64))

    def decay(self) -> float:
        return min(self.beta, 1.0 - (1.0 + float(self.num_updates)) ** -self.power)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = self.decay()
        for ema_param, param in zip(self.shadow.parameters(), model.parameters(), strict=True):
            ema_param.lerp_(param.detach().to(ema_param.dtype), 1.0 - decay)
        for ema_buffer, buffer in zip(self.shadow.buffers(), model.buffers(), strict=True):
            ema_buffer.copy_(buffer)
        self.num_updates += 1


def capture_rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class TrainResult:
    run_dir: Path
    final_step: int
    last_metrics: dict[str, float]
    checkpoint_dir: Path | None


class TrainLoop:
    """Runs `step_fn(step) -> scalars` from the start (or resume) step to `steps`, logging and checkpointing.

    Trainers register everything with state (`stateful`: modules, optimizers, schedulers, EMAs) and a
    `write_weights(checkpoint_dir)` callback that writes the weight files the next stage consumes.
    """

    def __init__(
        self,
        *,
        name: str,
        config: Any,
        model_config: Mapping[str, Any] | None,
        run_dir: str | Path,
        accelerator: Any,
        steps: int,
        log_every: int,
        checkpoint_every: int,
        keep_checkpoints: int,
        stateful: Mapping[str, Any],
        write_weights: Callable[[Path], None],
        data_dir: str | Path | None = None,
    ) -> None:
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        self.name = name
        self.config = config
        self.model_config = dict(model_config) if model_config is not None else None
        self.run_dir = Path(run_dir)
        self.accelerator = accelerator
        self.steps = steps
        self.log_every = max(1, log_every)
        self.checkpoint_every = checkpoint_every
        self.keep_checkpoints = keep_checkpoints
        self.stateful = dict(stateful)
        self.write_weights = write_weights
        # Recorded so that later stages (export's codec, eval) can find the dataset and its codec.
        self.data_dir = str(Path(data_dir).resolve()) if data_dir is not None else None
        self.is_main = bool(accelerator.is_main_process)
        self.metrics = MetricsLogger(self.run_dir, enabled=self.is_main)
        self.checkpoint_root = self.run_dir / "checkpoints"
        self.start_step = 0

    # --- checkpoints -------------------------------------------------------------------------------------

    def config_payload(self) -> dict[str, Any]:
        return {
            "trainer": self.name,
            "kind": type(self.config).__name__,
            "config": config_to_dict(self.config),
            "model": self.model_config,
            "data_dir": self.data_dir,
        }

    def latest_checkpoint(self) -> Path | None:
        return find_latest_checkpoint(self.run_dir)

    def save_checkpoint(self, step: int) -> Path:
        ckpt = self.checkpoint_root / f"step_{step:07d}"
        self.accelerator.wait_for_everyone()
        if self.is_main:
            ckpt.mkdir(parents=True, exist_ok=True)
            state = {
                "step": step,
                "trainer": self.name,
                "config": self.config_payload(),
                "state": {name: obj.state_dict() for name, obj in self.stateful.items()},
            }
            (ckpt / CONFIG_FILE).write_text(json.dumps({"step": step, **self.config_payload()}, indent=2) + "\n")
            torch.save(state, ckpt / f"{STATE_FILE}.tmp")
            (ckpt / f"{STATE_FILE}.tmp").replace(ckpt / STATE_FILE)
            self.write_weights(ckpt)
        self.accelerator.wait_for_everyone()
        ckpt.mkdir(parents=True, exist_ok=True)  # every rank writes its own RNG file
        torch.save(capture_rng_state(), ckpt / f"rng_rank{self.accelerator.process_index}.pt")
        self.accelerator.wait_for_everyone()
        if self.is_main:
            (self.checkpoint_root / LATEST_FILE).write_text(ckpt.name + "\n")
            self._prune()
        return ckpt

    def _prune(self) -> None:
        if self.keep_checkpoints <= 0:
            return
        done = sorted(p for p in self.checkpoint_root.glob("step_*") if (p / STATE_FILE).is_file())
        for old in done[: -self.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)

    def resume(self, checkpoint: str | Path) -> int:
        """Restores everything from a checkpoint folder ("latest" = this run's newest); returns its step."""
        ckpt = self.latest_checkpoint() if str(checkpoint) == "latest" else Path(checkpoint)
        if ckpt is None:
            raise TrainingError(f"{self.run_dir} has no checkpoint to resume from")
        state_path = ckpt / STATE_FILE
        if not state_path.is_file():
            raise TrainingError(f"{ckpt} is not a checkpoint folder (no {STATE_FILE})")
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        if state.get("trainer") != self.name:
            raise TrainingError(f"{ckpt} is a {state.get('trainer')!r} checkpoint, not {self.name!r}")
        saved_model = state["config"].get("model")
        if self.model_config is not None and saved_model is not None and saved_model != self.model_config:
            raise TrainingError(f"{ckpt} was trained with another model config (preset {saved_model.get('preset')!r})")
        for name, obj in self.stateful.items():
            if name not in state["state"]:
                raise TrainingError(f"{ckpt} lacks the state of {name!r}")
            obj.load_state_dict(state["state"][name])
        rng_path = ckpt / f"rng_rank{self.accelerator.process_index}.pt"
        if rng_path.is_file():
            restore_rng_state(torch.load(rng_path, map_location="cpu", weights_only=False))
        self.start_step = int(state["step"])
        return self.start_step

    # --- the loop ---------------------------------------------------------------------------------------

    def run(self, step_fn: Callable[[int], Mapping[str, float]]) -> TrainResult:
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.json").write_text(json.dumps(self.config_payload(), indent=2) + "\n")
        window: dict[str, list[float]] = {}
        last: dict[str, float] = {}
        last_ckpt: Path | None = None
        window_started = time.perf_counter()
        window_steps = 0
        for step in range(self.start_step, self.steps):
            scalars = step_fn(step)
            for key, value in scalars.items():
                window.setdefault(key, []).append(float(value))
            window_steps += 1
            done = step + 1
            if done % self.log_every == 0 or done == self.steps:
                last = self._reduce({key: sum(values) / len(values) for key, values in window.items()})
                last["steps_per_s"] = window_steps / max(time.perf_counter() - window_started, 1e-9)
                self.metrics.log(step, last)
                window, window_steps, window_started = {}, 0, time.perf_counter()
            if self.checkpoint_every > 0 and done % self.checkpoint_every == 0 and done < self.steps:
                last_ckpt = self.save_checkpoint(done)
        if self.steps > self.start_step or last_ckpt is None:
            last_ckpt = self.save_checkpoint(self.steps)
        self.metrics.close(title=f"{self.name} ({self.run_dir.name})")
        return TrainResult(self.run_dir, self.steps, last, last_ckpt)

    def _reduce(self, scalars: Mapping[str, float]) -> dict[str, float]:
        """Mean over processes (a no-op on one process)."""
        if self.accelerator.num_processes == 1 or not scalars:
            return dict(scalars)
        keys = sorted(scalars)
        values = torch.tensor([scalars[key] for key in keys], device=self.accelerator.device)
        reduced = self.accelerator.reduce(values, reduction="mean")
        return {key: float(value) for key, value in zip(keys, reduced.tolist(), strict=True)}


def find_latest_checkpoint(run_dir: str | Path) -> Path | None:
    root = Path(run_dir) / "checkpoints"
    latest = root / LATEST_FILE
    if latest.is_file():
        candidate = root / latest.read_text().strip()
        if (candidate / STATE_FILE).is_file():
            return candidate
    done = sorted(p for p in root.glob("step_*") if (p / STATE_FILE).is_file())
    return done[-1] if done else None


def resolve_checkpoint_dir(path: str | Path) -> Path:
    """A checkpoint folder, or a run folder (-> its latest checkpoint)."""
    path = Path(path)
    if (path / STATE_FILE).is_file():
        return path
    latest = find_latest_checkpoint(path)
    if latest is None:
        raise TrainingError(f"{path} is neither a checkpoint folder nor a run folder with checkpoints")
    return latest


def prepare_run_dir(run_dir: str | Path, resume: str | None) -> None:
    """Refuses to start a fresh run on top of an old one's checkpoints (that would mix two runs)."""
    if resume is None and find_latest_checkpoint(run_dir) is not None:
        raise TrainingError(
            f"{run_dir} already holds checkpoints; pass --resume latest to continue, or choose a new --out"
        )


def read_checkpoint_config(checkpoint_dir: str | Path) -> dict[str, Any]:
    """The run facts saved with a checkpoint: step, trainer, config, model config, data_dir."""
    path = Path(checkpoint_dir) / CONFIG_FILE
    if not path.is_file():
        raise TrainingError(f"{checkpoint_dir} has no {CONFIG_FILE}")
    payload: dict[str, Any] = json.loads(path.read_text())
    return payload


class SupervisedRun(NamedTuple):
    """What a single-model trainer (ASR, SV) steps with: the prepared model, its optimizer and the loop."""

    accelerator: Any
    stream: BatchStream
    model: nn.Module  # prepared by accelerate (DDP-wrapped when distributed)
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    loop: TrainLoop


def start_supervised_run(
    name: str,
    cfg: Any,
    dataset: ClipDataset,
    build_model: Callable[[], nn.Module],
    write_weights: Callable[[Path, Any], None],  # (checkpoint dir, the unwrapped model)
    *,
    data_dir: str | Path,
    run_dir: str | Path,
    resume: str | None,
    cpu: bool,
) -> SupervisedRun:
    """AdamW + warmup-cosine on one model, prepared by accelerate, with a TrainLoop resumed when asked.

    `cfg` is an AsrConfig or SvConfig (the same optimizer and loop fields). The model is built after seeding,
    so its initial weights depend on `cfg.seed` alone.
    """
    accelerator = create_accelerator(cfg.mixed_precision, cpu=cpu)
    stream = BatchStream(dataset, cfg.loader, rank=accelerator.process_index, world_size=accelerator.num_processes)
    torch.manual_seed(cfg.seed)
    model = build_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine_lambda(cfg.steps, cfg.warmup_steps, cfg.lr, cfg.min_lr)
    )
    model, optimizer = accelerator.prepare(model, optimizer)
    raw_model = accelerator.unwrap_model(model)
    loop = TrainLoop(
        name=name,
        config=cfg,
        model_config=preset_config(cfg.preset).to_dict(),
        run_dir=run_dir,
        accelerator=accelerator,
        steps=cfg.steps,
        log_every=cfg.log_every,
        checkpoint_every=cfg.checkpoint_every,
        keep_checkpoints=cfg.keep_checkpoints,
        stateful={"model": raw_model, "optimizer": optimizer, "scheduler": scheduler},
        write_weights=lambda ckpt: write_weights(ckpt, raw_model),
        data_dir=data_dir,
    )
    if resume is not None:
        loop.resume(resume)
    return SupervisedRun(accelerator, stream, model, optimizer, scheduler, loop)
