"""Training data: clips read from the shards on demand, length-bucketed batches, a same-speaker reference per target.

Legend:
    b  batch
    n  target latent frames
    r  reference latent frames
    p  phoneme tokens
    c  latent channels
    e  speaker-embedding channels

Shards are plain webdataset tars (`webdataset.WebDataset(urls)` reads them too). `ClipDataset.load` scans their
headers once and keeps only an index in memory: per clip its shard, the byte offsets of its members, its length
and its speaker, about 100 bytes, in numpy arrays. A clip's latents are read (`os.pread`, no shared file offset,
so DataLoader workers can share the handles) when a batch needs it, so resident memory does not grow with the
corpus: LibriTTS-R's 4 GB of latents stay on disk, and Emilia's 700 GB too. The index itself is a few hundred
MB for Emilia's tens of millions of clips.

Why an index and not a shuffle buffer over a sequential stream: every batch stays a pure function of (seed,
step, rank). `BatchStream.batch_at(step)` picks the clips from a bucketed, shuffled epoch plan and draws each
target's reference clip (another utterance of the same speaker, as the original trained) and its crop from a
generator seeded by the step. Resuming at step k therefore sees exactly the batches an uninterrupted run would
have seen, and rank r of w takes global batch k*w + r, so the ranks' streams are disjoint within an epoch on one
GPU or many. A shuffle buffer would lose both (and the same-speaker reference needs random access anyway).

`prefetch_steps` runs the reading and collating in DataLoader worker processes ahead of the step, with pinned
memory on a GPU. With gradient accumulation k, a step's batch holds k micro-batches' clips and
`BatchStream.micro_batches_at(step)` splits it in k, each trimmed to its own longest clip.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import tarfile
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor

from training.config import LoaderConfig

FIELDS = ("latents.npy", "phonemes.npy", "json", "speaker_embedding.npy")  # the members a clip may have
T = TypeVar("T")


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

    def _map(self, fn: Callable[[Tensor], Tensor]) -> Batch:
        return Batch(
            latents=fn(self.latents),
            latents_lengths=fn(self.latents_lengths),
            phonemes=fn(self.phonemes),
            phonemes_lengths=fn(self.phonemes_lengths),
            ref_latents=fn(self.ref_latents),
            ref_latents_lengths=fn(self.ref_latents_lengths),
            speaker_embeddings=fn(self.speaker_embeddings) if self.speaker_embeddings is not None else None,
            speakers=self.speakers,
            texts=self.texts,
        )

    def to(self, device: torch.device | str) -> Batch:
        return self._map(lambda x: x.to(device, non_blocking=True))

    def pin_memory(self) -> Batch:
        """Called by DataLoader(pin_memory=True): page-locked host memory, so the copy to the GPU is asynchronous."""
        return self._map(lambda x: x.pin_memory())


def frame_mask(lengths: Tensor, max_len: int) -> Tensor:
    """(b,) lengths -> (b max_len) bool prefix mask."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


class _ClipView(Sequence[Clip]):
    """`dataset.clips[i]`: each clip read from its shard when asked for."""

    def __init__(self, dataset: ClipDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Clip:  # type: ignore[override]
        return self.dataset.clip(int(index))


class ClipDataset:
    """The clips of a built dataset: an in-memory index, the clips themselves read from the shards on demand."""

    def __init__(
        self,
        shard_paths: list[Path],
        index: dict[str, Any],
        *,
        shard_ids: np.ndarray,  # (N,) int32
        keys: np.ndarray,  # (N,) bytes
        speaker_ids: np.ndarray,  # (N,) int32 into speaker_names
        speaker_names: list[str],
        lengths: np.ndarray,  # (N,) int64 latent frames
        offsets: np.ndarray,  # (N, len(FIELDS), 2) int64 (byte offset, size); -1 = absent
        latent_dim: int,
    ) -> None:
        if lengths.size == 0:
            raise _dataset_error("the dataset holds no clips")
        self.shard_paths = shard_paths
        self.index = index
        self.shard_ids = shard_ids
        self.keys = keys
        self.speaker_ids = speaker_ids
        self.speaker_names = speaker_names
        self.lengths = lengths
        self.offsets = offsets
        self._latent_dim = latent_dim
        order = np.argsort(speaker_ids, kind="stable").astype(np.int32)
        bounds = np.flatnonzero(np.diff(speaker_ids[order])) + 1
        self.by_speaker: dict[str, np.ndarray] = {
            speaker_names[int(speaker_ids[group[0]])]: group for group in np.split(order, bounds)
        }
        self._handles: dict[int, int] = {}  # shard -> file descriptor, for this process
        self._handles_pid = os.getpid()

    @property
    def latent_dim(self) -> int:
        return self._latent_dim

    @property
    def has_speaker_embeddings(self) -> bool:
        return bool((self.offsets[:, 3, 0] >= 0).all())

    @property
    def clips(self) -> Sequence[Clip]:
        return _ClipView(self)

    def __len__(self) -> int:
        return int(self.lengths.size)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_handles": {}}

    def speaker(self, index: int) -> str:
        return self.speaker_names[int(self.speaker_ids[index])]

    def _read(self, index: int, field: int) -> bytes | None:
        offset, size = (int(x) for x in self.offsets[index, field])
        if offset < 0:
            return None
        if self._handles_pid != os.getpid():  # a forked worker: its own descriptors
            self._handles, self._handles_pid = {}, os.getpid()
        shard = int(self.shard_ids[index])
        fd = self._handles.get(shard)
        if fd is None:
            fd = self._handles[shard] = os.open(self.shard_paths[shard], os.O_RDONLY)
        data = os.pread(fd, size, offset)
        if len(data) != size:
            raise _dataset_error(f"{self.shard_paths[shard]}: truncated member of clip {self.keys[index]!r}")
        return data

    def latents(self, index: int) -> np.ndarray:
        """(n c) float32."""
        return _load_npy(self._read(index, 0)).astype(np.float32, copy=False)  # type: ignore[arg-type]

    def clip(self, index: int) -> Clip:
        meta = json.loads(self._read(index, 2) or b"{}")
        embedding = self._read(index, 3)
        return Clip(
            key=self.keys[index].decode(),
            speaker=self.speaker(index),
            text=str(meta.get("text", "")),
            latents=self.latents(index),
            phonemes=_load_npy(self._read(index, 1)).astype(np.int16),  # type: ignore[arg-type]
            speaker_embedding=_load_npy(embedding).astype(np.float32) if embedding is not None else None,
        )

    def close(self) -> None:
        for fd in self._handles.values():
            os.close(fd)
        self._handles = {}

    def __del__(self) -> None:
        if getattr(self, "_handles_pid", None) == os.getpid():
            self.close()

    @classmethod
    def load(cls, data_dir: str | Path) -> ClipDataset:
        data_dir = Path(data_dir)
        from training.dataset import read_index

        index = read_index(data_dir)
        paths = [data_dir / shard for shard in index["shards"]]
        missing = [str(path) for path in paths if not path.is_file()]
        if missing:
            raise _dataset_error(f"{data_dir}: shards missing: {missing[:3]}; finish `smalltts dataset build` first")
        # Plain C arrays while scanning: a Python int or small array per clip would cost more than the index.
        shard_ids, speakers, lengths, offsets = array("i"), array("i"), array("q"), array("q")
        keys: list[bytes] = []
        speaker_index: dict[str, int] = {}
        latent_dims: set[int] = set()
        for shard, path in enumerate(paths):
            with path.open("rb") as raw:
                for key, members in _scan_shard(path):
                    if FIELDS[0] not in members or FIELDS[1] not in members or FIELDS[2] not in members:
                        continue
                    row = [x for name in FIELDS for x in members.get(name, (-1, -1))]  # (offset, size) per field
                    raw.seek(row[4])
                    meta = json.loads(raw.read(row[5]))
                    raw.seek(row[0])
                    shape = _npy_shape(raw)
                    latent_dims.add(int(shape[1]))
                    speaker = str(meta["speaker"])
                    shard_ids.append(shard)
                    keys.append(key.encode())
                    speakers.append(speaker_index.setdefault(speaker, len(speaker_index)))
                    lengths.append(int(shape[0]))
                    offsets.extend(row)
        if len(latent_dims) > 1:
            raise _dataset_error(f"{data_dir}: clips of different latent sizes {sorted(latent_dims)}")
        return cls(
            paths,
            index,
            shard_ids=np.frombuffer(shard_ids, dtype=np.int32).copy(),
            keys=np.array(keys, dtype=np.bytes_),
            speaker_ids=np.frombuffer(speakers, dtype=np.int32).copy(),
            speaker_names=list(speaker_index),
            lengths=np.frombuffer(lengths, dtype=np.int64).copy(),
            offsets=np.frombuffer(offsets, dtype=np.int64).reshape(-1, len(FIELDS), 2).copy(),
            latent_dim=latent_dims.pop() if latent_dims else 0,
        )


def _dataset_error(message: str) -> Exception:
    # Imported when needed: training.dataset pulls in audio packages (soxr) that a bare GPU machine lacks, and
    # training needs only its index reader and error type.
    from training.dataset import DatasetError

    return DatasetError(message)


def _scan_shard(path: Path) -> Iterator[tuple[str, dict[str, tuple[int, int]]]]:
    """(key, {field: (data offset, size)}) per sample of a tar shard, grouped as webdataset groups members (the
    part of the name before the first dot); only headers are read, and none are kept."""
    key: str | None = None
    members: dict[str, tuple[int, int]] = {}
    with tarfile.open(path, "r") as tar:
        while (member := tar.next()) is not None:
            tar.members.clear()  # TarFile keeps every header it has read; the index is all we need
            if not member.isfile():
                continue
            name_key, _, field_name = member.name.rpartition("/")[2].partition(".")  # no Path: it interns every name
            if key is not None and name_key != key:
                yield key, members
                members = {}
            key = name_key
            members[field_name] = (member.offset_data, member.size)
    if key is not None:
        yield key, members


def _npy_shape(handle: io.BufferedReader) -> tuple[int, ...]:
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        shape, _, _ = np.lib.format.read_array_header_1_0(handle)
    else:
        shape, _, _ = np.lib.format.read_array_header_2_0(handle)
    return tuple(shape)


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
            key, _, field_name = member.name.rpartition("/")[2].partition(".")
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
    """Deterministic batches: `batch_at(step)` for this rank, from length buckets of similar-length clips.

    With `accumulation` k a step's batch holds up to k x max_batch_size clips and k x max_frames_per_batch frames,
    the same clips a run with a k times larger batch would see; `micro_batches_at(step)` splits it in k.
    """

    def __init__(
        self, dataset: ClipDataset, cfg: LoaderConfig, *, rank: int = 0, world_size: int = 1, accumulation: int = 1
    ) -> None:
        if accumulation < 1:
            raise ValueError(f"accumulation must be >= 1, got {accumulation}")
        self.dataset = dataset
        self.cfg = cfg
        self.rank = rank
        self.world_size = world_size
        self.accumulation = accumulation
        batch_size = cfg.max_batch_size * accumulation
        frames = cfg.max_frames_per_batch * accumulation
        order = np.argsort(dataset.lengths, kind="stable")
        num_buckets = max(1, min(cfg.num_buckets, len(order)))
        self.buckets = [bucket for bucket in np.array_split(order, num_buckets) if bucket.size]
        # Batch size per bucket from its longest clip, so the number of batches per epoch never changes.
        self.bucket_batch_sizes = [
            max(1, min(batch_size, frames // int(dataset.lengths[b].max()))) for b in self.buckets
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

    def micro_batches_at(self, step: int) -> list[Batch]:
        return split_batch(self.batch_at(step), self.accumulation)


def choose_reference(dataset: ClipDataset, index: int, rng: np.random.Generator) -> int:
    """Another clip of the same speaker; the clip itself only when its speaker has a single clip."""
    group = dataset.by_speaker[dataset.speaker(index)]
    others = group[group != index]
    return int(rng.choice(others)) if others.size else index


def collate_batch(dataset: ClipDataset, indices: np.ndarray, cfg: LoaderConfig, rng: np.random.Generator) -> Batch:
    clips = [dataset.clip(int(i)) for i in indices]
    refs = []
    for i in indices:
        ref = dataset.latents(choose_reference(dataset, int(i), rng))
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


def split_batch(batch: Batch, parts: int) -> list[Batch]:
    """The batch's rows in `parts` consecutive groups (fewer when it has fewer rows), each trimmed to its own
    longest target, phoneme string and reference: the micro-batches of one accumulated update."""
    if parts == 1:
        return [batch]
    out = []
    for rows in np.array_split(np.arange(batch.size), min(parts, batch.size)):
        lo, hi = int(rows[0]), int(rows[-1]) + 1
        n = int(batch.latents_lengths[lo:hi].max())
        p = max(1, int(batch.phonemes_lengths[lo:hi].max()))
        r = max(1, int(batch.ref_latents_lengths[lo:hi].max()))
        emb = batch.speaker_embeddings
        out.append(
            Batch(
                latents=batch.latents[lo:hi, :n].contiguous(),  # (b' n' c)
                latents_lengths=batch.latents_lengths[lo:hi],
                phonemes=batch.phonemes[lo:hi, :p].contiguous(),  # (b' p')
                phonemes_lengths=batch.phonemes_lengths[lo:hi],
                ref_latents=batch.ref_latents[lo:hi, :r].contiguous(),  # (b' r' c)
                ref_latents_lengths=batch.ref_latents_lengths[lo:hi],
                speaker_embeddings=emb[lo:hi] if emb is not None else None,
                speakers=batch.speakers[lo:hi],
                texts=batch.texts[lo:hi],
            )
        )
    return out


class _Steps(torch.utils.data.Dataset[Any]):
    def __init__(self, make: Callable[[int], Any], start: int, stop: int) -> None:
        self.make, self.start, self.stop = make, start, stop

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __getitem__(self, i: int) -> Any:
        return self.make(self.start + i)


def prefetch_steps(
    make: Callable[[int], T],
    start: int,
    stop: int,
    *,
    num_workers: int = 0,
    prefetch_batches: int = 2,
    pin_memory: bool = False,
) -> Iterator[T]:
    """make(step) for step in [start, stop), in order. With workers, a DataLoader computes them ahead in worker
    processes (each keeps `prefetch_batches` ready) and pins them; without, each is made when asked for."""
    if num_workers == 0:
        for step in range(start, stop):
            item = make(step)
            yield _pin(item) if pin_memory else item
        return
    # fork: `make` is usually a closure over the stream, which spawn could not pickle.
    context = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    loader = torch.utils.data.DataLoader(
        _Steps(make, start, stop), batch_size=None, shuffle=False, num_workers=num_workers,
        prefetch_factor=prefetch_batches, pin_memory=pin_memory, multiprocessing_context=context,
    )  # fmt: skip
    yield from loader


def _pin(item: Any) -> Any:
    if isinstance(item, Batch):
        return item.pin_memory()
    if isinstance(item, list):
        return [_pin(x) for x in item]
    return item
