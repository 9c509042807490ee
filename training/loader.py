"""Training data: the built shards in memory, length-bucketed batches, a same-speaker reference per target.

Legend:
    b  batch
    n  target latent frames
    r  reference latent frames
    p  phoneme tokens
    c  latent channels
    e  speaker-embedding channels

Shards are plain webdataset tars (`webdataset.WebDataset(urls)` reads them too); `ClipDataset.load` reads them
with tarfile. Every batch is a pure function of (seed, step, rank): `BatchStream.batch_at(step)` picks the clips from a
bucketed, shuffled epoch plan and draws each target's reference clip (another utterance of the same speaker,
as the original trained) and its crop from a generator seeded by the step. Resuming at step k therefore sees
exactly the batches an uninterrupted run would have seen, on one GPU or many (rank r of w takes global
batch k*w + r).

The clips are held in memory (latents are small: 64 float32 per 133 ms frame, ~7 MB per hour of audio).
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from training.config import LoaderConfig
from training.dataset import DatasetError, read_index


@dataclass(frozen=True)
class Clip:
    key: str
    speaker: str
    text: str
    latents: np.ndarray  # (n c) float32
    phonemes: np.ndarray  # (p,) int16
    speaker_embedding: np.ndarray | None  # (e,) float32


@dataclass
class Batch:
    latents: Tensor  # (b n c) float32, zero-padded
    latents_lengths: Tensor  # (b,) int64
    phonemes: Tensor  # (b p) int64, 0 = padding
    phonemes_lengths: Tensor  # (b,) int64
    ref_latents: Tensor  # (b r c)
    ref_latents_lengths: Tensor  # (b,) int64
    speaker_embeddings: Tensor | None  # (b e) of the target clips, when the dataset has them
    speakers: list[str]
    texts: list[str]

    @property
    def size(self) -> int:
        return int(self.latents.shape[0])

    def to(self, device: torch.device | str) -> Batch:
        def move(x: Tensor | None) -> Tensor | None:
            return x.to(device, non_blocking=True) if x is not None else None

        return Batch(
            latents=self.latents.to(device),
            latents_lengths=self.latents_lengths.to(device),
            phonemes=self.phonemes.to(device),
            phonemes_lengths=self.phonemes_lengths.to(device),
            ref_latents=self.ref_latents.to(device),
            ref_latents_lengths=self.ref_latents_lengths.to(device),
            speaker_embeddings=move(self.speaker_embeddings),
            speakers=self.speakers,
            texts=self.texts,
        )


def frame_mask(lengths: Tensor, max_len: int) -> Tensor:
    """(b,) lengths -> (b max_len) bool prefix mask."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


class ClipDataset:
    """All clips of a built dataset, read through webdataset."""

    def __init__(self, clips: list[Clip], index: dict[str, object]) -> None:
        if not clips:
            raise DatasetError("the dataset holds no clips")
        self.clips = clips
        self.index = index
        self.by_speaker: dict[str, list[int]] = {}
        for i, clip in enumerate(clips):
            self.by_speaker.setdefault(clip.speaker, []).append(i)
        self.lengths = np.array([clip.latents.shape[0] for clip in clips], dtype=np.int64)

    @property
    def latent_dim(self) -> int:
        return int(self.clips[0].latents.shape[1])

    @property
    def has_speaker_embeddings(self) -> bool:
        return all(clip.speaker_embedding is not None for clip in self.clips)

    def __len__(self) -> int:
        return len(self.clips)

    @classmethod
    def load(cls, data_dir: str | Path) -> ClipDataset:
        data_dir = Path(data_dir)
        index = read_index(data_dir)
        paths = [data_dir / shard for shard in index["shards"]]
        missing = [str(path) for path in paths if not path.is_file()]
        if missing:
            raise DatasetError(f"{data_dir}: shards missing: {missing[:3]}; finish `smalltts dataset build` first")
        clips = []
        for path in paths:
            for sample in iter_shard_samples(path):
                meta = json.loads(sample["json"])
                embedding = sample.get("speaker_embedding.npy")
                clips.append(
                    Clip(
                        key=str(sample["__key__"]),
                        speaker=meta["speaker"],
                        text=meta["text"],
                        latents=_load_npy(sample["latents.npy"]).astype(np.float32),
                        phonemes=_load_npy(sample["phonemes.npy"]).astype(np.int16),
                        speaker_embedding=_load_npy(embedding).astype(np.float32) if embedding is not None else None,
                    )
                )
        return cls(clips, index)


def iter_shard_samples(path: str | Path) -> Iterator[dict[str, bytes | str]]:
    """The samples of one webdataset tar shard: {"__key__": key, "<field>": bytes, ...}.

    The same grouping as `webdataset.WebDataset(url)` (members sharing the part of the name before the first
    dot form a sample), read with tarfile so the file is closed deterministically.
    """
    current: dict[str, bytes | str] = {}
    with tarfile.open(path, "r") as tar:
        for member in tar:
            if not member.isfile():
                continue
            key, _, field_name = Path(member.name).name.partition(".")
            if current and current["__key__"] != key:
                yield current
                current = {}
            handle = tar.extractfile(member)
            if handle is None:
                continue
            current.setdefault("__key__", key)
            current[field_name] = handle.read()
    if current:
        yield current


def _load_npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


class BatchStream:
    """Deterministic batches: `batch_at(step)` for this rank, from length buckets of similar-length clips."""

    def __init__(self, dataset: ClipDataset, cfg: LoaderConfig, *, rank: int = 0, world_size: int = 1) -> None:
        self.dataset = dataset
        self.cfg = cfg
        self.rank = rank
        self.world_size = world_size
        order = np.argsort(dataset.lengths, kind="stable")
        num_buckets = max(1, min(cfg.num_buckets, len(order)))
        self.buckets = [bucket for bucket in np.array_split(order, num_buckets) if bucket.size]
        # Batch size per bucket from its longest clip, so the number of batches per epoch never changes.
        self.bucket_batch_sizes = [
            max(1, min(cfg.max_batch_size, cfg.max_frames_per_batch // int(dataset.lengths[b].max())))
            for b in self.buckets
        ]
        self.batches_per_epoch = sum(
            -(-bucket.size // size) for bucket, size in zip(self.buckets, self.bucket_batch_sizes, strict=True)
        )
        self._epoch_cache: tuple[int, list[np.ndarray]] | None = None

    def epoch_plan(self, epoch: int) -> list[np.ndarray]:
        """The epoch's batches (clip indices), shuffled within buckets and in order; same on every rank."""
        if self._epoch_cache is not None and self._epoch_cache[0] == epoch:
            return self._epoch_cache[1]
        rng = np.random.default_rng([self.cfg.seed, epoch])
        batches: list[np.ndarray] = []
        for bucket, size in zip(self.buckets, self.bucket_batch_sizes, strict=True):
            shuffled = rng.permutation(bucket)
            batches.extend(shuffled[i : i + size] for i in range(0, shuffled.size, size))
        plan = [batches[i] for i in rng.permutation(len(batches))]
        self._epoch_cache = (epoch, plan)
        return plan

    def indices_at(self, step: int) -> np.ndarray:
        global_index = step * self.world_size + self.rank
        epoch, position = divmod(global_index, self.batches_per_epoch)
        return self.epoch_plan(epoch)[position]

    def batch_at(self, step: int) -> Batch:
        rng = np.random.default_rng([self.cfg.seed, step, self.rank, 1])
        return collate_batch(self.dataset, self.indices_at(step), self.cfg, rng)


def choose_reference(dataset: ClipDataset, index: int, rng: np.random.Generator) -> int:
    """Another clip of the same speaker; the clip itself only when its speaker has a single clip."""
    others = [j for j in dataset.by_speaker[dataset.clips[index].speaker] if j != index]
    return int(rng.choice(others)) if others else index


def collate_batch(dataset: ClipDataset, indices: np.ndarray, cfg: LoaderConfig, rng: np.random.Generator) -> Batch:
    clips = [dataset.clips[int(i)] for i in indices]
    refs = []
    for i in indices:
        ref = dataset.clips[choose_reference(dataset, int(i), rng)].latents
        if ref.shape[0] > cfg.max_ref_frames:  # a random window, so the model sees varied reference content
            start = int(rng.integers(0, ref.shape[0] - cfg.max_ref_frames + 1))
            ref = ref[start : start + cfg.max_ref_frames]
        refs.append(ref)
    b, c = len(clips), dataset.latent_dim
    n = max(clip.latents.shape[0] for clip in clips)
    p = max(clip.phonemes.shape[0] for clip in clips)
    r = max(ref.shape[0] for ref in refs)
    latents = np.zeros((b, n, c), dtype=np.float32)  # (b n c)
    phonemes = np.zeros((b, p), dtype=np.int64)  # (b p)
    ref_latents = np.zeros((b, r, c), dtype=np.float32)  # (b r c)
    for row, (clip, ref) in enumerate(zip(clips, refs, strict=True)):
        latents[row, : clip.latents.shape[0]] = clip.latents
        phonemes[row, : clip.phonemes.shape[0]] = clip.phonemes
        ref_latents[row, : ref.shape[0]] = ref
    embeddings = None
    if all(clip.speaker_embedding is not None for clip in clips):
        embeddings = torch.from_numpy(np.stack([clip.speaker_embedding for clip in clips]))  # type: ignore[misc]
    return Batch(
        latents=torch.from_numpy(latents),
        latents_lengths=torch.tensor([clip.latents.shape[0] for clip in clips], dtype=torch.int64),
        phonemes=torch.from_numpy(phonemes),
        phonemes_lengths=torch.tensor([clip.phonemes.shape[0] for clip in clips], dtype=torch.int64),
        ref_latents=torch.from_numpy(ref_latents),
        ref_latents_lengths=torch.tensor([ref.shape[0] for ref in refs], dtype=torch.int64),
        speaker_embeddings=embeddings,
        speakers=[clip.speaker for clip in clips],
        texts=[clip.text for clip in clips],
    )
