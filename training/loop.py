"""The training-loop pieces every trainer shares: EMA, LR schedule, per-step RNG, checkpoints (precision:
training.precision).

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
Every rank writes its RNG state into the checkpoint folder, so several nodes need one shared filesystem for RUN/.

Per step the loop never reads a value back from the device: losses stay tensors and are summed on the device,
then averaged, reduced over ranks and printed only at log steps, with steps/s, step time, frames/s and peak
memory. SIGTERM (a preempted job) finishes the current step, writes a checkpoint and returns
(`TrainResult.preempted`); `--resume latest` continues exactly.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import random
import resource
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch
from torch import nn

from model.config import preset_config
from training.config import (
    AsrConfig,
    DistillConfig,
    OptimizerConfig,
    RunConfig,
    SvConfig,
    TeacherConfig,
    config_to_dict,
)
from training.errors import TrainingBaseError
from training.loader import Batch, BatchStream, ClipDataset, prefetch_steps
from training.metrics import MetricsLogger
from training.precision import MixedPrecision, create_accelerator, resolve_precision

STATE_FILE = "state.pt"
CONFIG_FILE = "config.json"
LATEST_FILE = "latest"
OPTIONAL_STATES = frozenset({"loss_scale"})  # fp16's loss scale; checkpoints written before it had none


class TrainingError(TrainingBaseError, RuntimeError):
    """A run cannot start or resume (wrong folder, mismatched checkpoint)."""


def sync_unless(accelerator: Any, model: nn.Module, sync: bool) -> contextlib.AbstractContextManager[Any]:
    """DDP's gradient all-reduce only on the last micro-batch of an accumulated update."""
    if sync or accelerator.num_processes == 1:
        return contextlib.nullcontext()
    return accelerator.no_sync(model)  # type: ignore[no-any-return]


def build_optimizer(
    parameters: Iterable[nn.Parameter], cfg: OptimizerConfig, total_steps: int
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW and its warmup + cosine/constant schedule (stepped once per update)."""
    optimizer = torch.optim.AdamW(parameters, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    min_lr = cfg.lr if cfg.schedule == "constant" else cfg.min_lr
    steps = max(total_steps, cfg.warmup_steps + 1) if cfg.schedule == "constant" else total_steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine_lambda(steps, cfg.warmup_steps, cfg.lr, min_lr)
    )
    return optimizer, scheduler


def maybe_compile(module: nn.Module, enabled: bool) -> nn.Module:
    """torch.compile with dynamic shapes (every batch has another length), as the original compiled its DiT."""
    return torch.compile(module, dynamic=True) if enabled else module  # type: ignore[return-value]


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
    preempted: bool = False  # stopped early by SIGTERM, after writing a checkpoint at final_step


class TrainerConfig(Protocol):
    """What the loop needs of a trainer's config (TeacherConfig, AsrConfig, ...): its run group."""

    @property
    def run(self) -> RunConfig: ...


FRAMES = "frames"  # a step_fn scalar that is counted (frames/s), not averaged


class TrainLoop:
    """Runs `step_fn(step, inputs) -> scalars` from the start (or resume) step to `cfg.run.steps`, logging and
    checkpointing. Scalars may be device tensors: they are read back only at log steps.

    Trainers register everything with state (`stateful`: modules, optimizers, schedulers, EMAs) and a
    `write_weights(checkpoint_dir)` callback that writes the weight files the next stage consumes.
    """

    def __init__(
        self,
        *,
        name: str,
        config: TrainerConfig,
        model_config: Mapping[str, Any] | None,
        run_dir: str | Path,
        accelerator: Any,
        stateful: Mapping[str, Any],
        write_weights: Callable[[Path], None],
        data_dir: str | Path | None = None,
    ) -> None:
        run = config.run
        self.name = name
        self.config = config
        self.model_config = dict(model_config) if model_config is not None else None
        self.run_dir = Path(run_dir)
        self.accelerator = accelerator
        self.steps = run.steps
        self.log_every = run.log_every
        self.checkpoint_every = run.checkpoint_every
        self.keep_checkpoints = run.keep_checkpoints
        self.stateful = dict(stateful)
        self._stop_requested = False
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
            if name not in state["state"] and name in OPTIONAL_STATES:
                continue  # a checkpoint from before this state existed
            if name not in state["state"]:
                raise TrainingError(f"{ckpt} lacks the state of {name!r}")
            obj.load_state_dict(state["state"][name])
        rng_path = ckpt / f"rng_rank{self.accelerator.process_index}.pt"
        if rng_path.is_file():
            restore_rng_state(torch.load(rng_path, map_location="cpu", weights_only=False))
        self.start_step = int(state["step"])
        return self.start_step

    # --- the loop ---------------------------------------------------------------------------------------

    def run(
        self, step_fn: Callable[[int, Any], Mapping[str, torch.Tensor | float]], inputs: Iterable[Any] | None = None
    ) -> TrainResult:
        """Steps from start_step to steps; `inputs` yields one item per step (that step's batches), else None."""
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.json").write_text(json.dumps(self.config_payload(), indent=2) + "\n")
        items: Iterator[Any] = iter(inputs) if inputs is not None else iter(lambda: None, object())
        sums: dict[str, torch.Tensor | float] = {}
        counts: dict[str, int] = {}
        last: dict[str, float] = {}
        last_ckpt: Path | None = None
        window_started = time.perf_counter()
        window_steps = 0
        done = self.start_step
        # A stop request is agreed on by all ranks; on several processes that costs an all-reduce, so it is checked
        # every few steps there, every step on one process.
        check_every = 1 if self.accelerator.num_processes == 1 else min(self.log_every, 10)
        with self._sigterm_requests_stop():
            for step in range(self.start_step, self.steps):
                scalars = step_fn(step, next(items))
                for key, value in scalars.items():
                    value = value.detach() if isinstance(value, torch.Tensor) else value
                    sums[key] = sums[key] + value if key in sums else value
                    counts[key] = counts.get(key, 0) + 1
                window_steps += 1
                done = step + 1
                stop = done % check_every == 0 and self._stop_agreed()
                if done % self.log_every == 0 or done == self.steps or stop:
                    last = self._window_metrics(sums, counts, window_steps, window_started)
                    self.metrics.log(step, last)
                    sums, counts, window_steps, window_started = {}, {}, 0, time.perf_counter()
                if stop:
                    break
                if self.checkpoint_every > 0 and done % self.checkpoint_every == 0 and done < self.steps:
                    last_ckpt = self.save_checkpoint(done)
        preempted = done < self.steps
        if done > self.start_step or last_ckpt is None:
            last_ckpt = self.save_checkpoint(done)
        self.metrics.close(title=f"{self.name} ({self.run_dir.name})")
        if preempted and self.is_main:
            print(f"{self.name}: SIGTERM; checkpoint {last_ckpt} written, continue with --resume latest", flush=True)
        return TrainResult(self.run_dir, done, last, last_ckpt, preempted=preempted)

    @contextlib.contextmanager
    def _sigterm_requests_stop(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be set from the main thread
            return

        def request_stop(signum: int, frame: FrameType | None) -> None:
            self._stop_requested = True

        previous = signal.signal(signal.SIGTERM, request_stop)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)

    def _stop_agreed(self) -> bool:
        if self.accelerator.num_processes == 1:
            return self._stop_requested
        flag = torch.tensor([1.0 if self._stop_requested else 0.0], device=self.accelerator.device)
        return bool(self.accelerator.reduce(flag, reduction="sum").item() > 0)

    def _window_metrics(
        self, sums: Mapping[str, torch.Tensor | float], counts: Mapping[str, int], steps: int, started: float
    ) -> dict[str, float]:
        """Window means, reduced over ranks in one transfer (the only device read of the window), plus speed."""
        device = self.accelerator.device
        keys = sorted(sums)
        values = [torch.as_tensor(sums[key], dtype=torch.float32, device=device).reshape(()) for key in keys]
        means = torch.stack(values) / torch.tensor([counts[key] for key in keys], dtype=torch.float32, device=device)
        if self.accelerator.num_processes > 1 and keys:
            means = self.accelerator.reduce(means, reduction="mean")
        out = dict(zip(keys, means.tolist(), strict=True)) if keys else {}
        elapsed_s = max(time.perf_counter() - started, 1e-9)  # measured after the read-back: the device is done
        frames = out.pop(FRAMES, None)
        out["steps_per_s"] = steps / elapsed_s
        out["step_time_s"] = elapsed_s / steps
        if frames is not None:  # the mean over ranks of frames per step, times the ranks
            out["frames_per_s"] = frames * steps * self.accelerator.num_processes / elapsed_s
        out.update(memory_metrics(device))
        return out


def memory_metrics(device: torch.device) -> dict[str, float]:
    """Peak memory so far: the GPU's allocator peak on CUDA, and the process's peak resident set."""
    out = {"peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}  # ru_maxrss is in KiB on Linux
    if device.type == "cuda":
        out["peak_gpu_mem_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
    return out


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
    precision: MixedPrecision
    stream: BatchStream  # batch_at(step) = the update's clips; micro_batches_at(step) splits them
    model: nn.Module  # prepared by accelerate (DDP-wrapped when distributed), compiled when asked
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    loop: TrainLoop

    def inputs(self) -> Iterator[list[Batch]]:
        """Each step's micro-batches from the loop's start step on, collated ahead by the loader's workers."""
        return step_inputs(self.stream, self.loop, self.accelerator)

    def update(
        self, micro_batches: list[Batch], loss_fn: Callable[[Batch], torch.Tensor], clip_norm: float
    ) -> dict[str, torch.Tensor | float]:
        """One optimizer update over the micro-batches (each loss weighted by its share of the clips, so k
        micro-batches of B give the gradient of one batch of kB); scalars stay on the device."""
        return accumulate_and_step(
            self.accelerator, self.precision, self.model, self.optimizer, self.scheduler, micro_batches,
            loss_fn, weights=[batch.size for batch in micro_batches], clip_norm=clip_norm,
        )  # fmt: skip


def step_inputs(stream: BatchStream, loop: TrainLoop, accelerator: Any, per_step: int = 1) -> Iterator[Any]:
    """The micro-batches of every step from loop.start_step on (a list per step; `per_step` > 1: a list of
    `per_step` such lists, global batches step * per_step + j), prepared ahead by DataLoader workers."""

    def make(step: int) -> Any:
        if per_step == 1:
            return stream.micro_batches_at(step)
        return [stream.micro_batches_at(step * per_step + j) for j in range(per_step)]

    return prefetch_steps(
        make, loop.start_step, loop.steps, num_workers=stream.cfg.num_workers,
        prefetch_batches=stream.cfg.prefetch_batches, pin_memory=accelerator.device.type == "cuda",
    )  # fmt: skip


def accumulate_and_step(
    accelerator: Any,
    precision: MixedPrecision,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    micro_batches: list[Batch],
    loss_fn: Callable[[Batch], torch.Tensor],
    *,
    weights: list[float],
    clip_norm: float,
) -> dict[str, torch.Tensor | float]:
    """Backward over every micro-batch (loss x weight / sum of weights; DDP syncs only on the last), then one
    clipped, loss-scaled optimizer step. Returns the update's loss and gradient norm as device tensors."""
    device = accelerator.device
    total = float(sum(weights))
    loss_sum = torch.zeros((), device=device)
    optimizer.zero_grad(set_to_none=True)
    for i, (micro, weight) in enumerate(zip(micro_batches, weights, strict=True)):
        with sync_unless(accelerator, model, i == len(micro_batches) - 1):
            with precision.autocast():
                loss = loss_fn(micro.to(device))
            precision.backward(loss * (weight / total), accelerator)
        loss_sum += loss.detach().float() * (weight / total)
    grad_norm = precision.step(optimizer, model.parameters(), clip_norm, accelerator)
    precision.step_scheduler(scheduler)
    scalars: dict[str, torch.Tensor | float] = {"loss": loss_sum, "lr": scheduler.get_last_lr()[0]}
    if grad_norm is not None:
        scalars["grad_norm"] = grad_norm
    scalars[FRAMES] = float(sum(int(batch.latents_lengths.sum()) for batch in micro_batches))
    return scalars


def create_stream(
    dataset: ClipDataset, cfg: TeacherConfig | AsrConfig | SvConfig | DistillConfig, accelerator: Any
) -> BatchStream:
    """This rank's stream of update batches (k = run.grad_accum_steps micro-batches each)."""
    return BatchStream(
        dataset, cfg.loader, rank=accelerator.process_index, world_size=accelerator.num_processes,
        accumulation=cfg.run.grad_accum_steps,
    )  # fmt: skip


def start_supervised_run(
    name: str,
    cfg: AsrConfig | SvConfig,
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

    `cfg` is an AsrConfig or SvConfig (the same optim/run/loader groups). The model is built after seeding,
    so its initial weights depend on `cfg.run.seed` alone.
    """
    accelerator = create_accelerator(cpu=cpu)
    precision = MixedPrecision(resolve_precision(cfg.run.precision, cpu=cpu), accelerator.device)
    stream = create_stream(dataset, cfg, accelerator)
    torch.manual_seed(cfg.run.seed)
    model = build_model()
    optimizer, scheduler = build_optimizer(model.parameters(), cfg.optim, cfg.run.steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    raw_model = accelerator.unwrap_model(model)
    loop = TrainLoop(
        name=name,
        config=cfg,
        model_config=preset_config(cfg.preset).to_dict(),
        run_dir=run_dir,
        accelerator=accelerator,
        stateful={"model": raw_model, "optimizer": optimizer, "scheduler": scheduler, "loss_scale": precision},
        write_weights=lambda ckpt: write_weights(ckpt, raw_model),
        data_dir=data_dir,
    )
    if resume is not None:
        loop.resume(resume)
    return SupervisedRun(
        accelerator, precision, stream, maybe_compile(model, cfg.run.compile), optimizer, scheduler, loop
    )
