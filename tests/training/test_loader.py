from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from training.config import LoaderConfig
from training.gpu_train_check import write_synthetic_dataset
from training.loader import BatchStream, ClipDataset, frame_mask


def test_batches_are_a_pure_function_of_the_step(dataset_dir: Path) -> None:
    dataset = ClipDataset.load(dataset_dir)
    cfg = LoaderConfig(max_batch_size=3, num_buckets=2, max_ref_frames=8)
    a, b = BatchStream(dataset, cfg), BatchStream(dataset, cfg)
    for step in (5, 0, 17, 5):
        x, y = a.batch_at(step), b.batch_at(step)
        assert torch.equal(x.latents, y.latents) and torch.equal(x.ref_latents, y.ref_latents)
        assert x.speakers == y.speakers


def test_every_clip_appears_once_per_epoch_in_length_buckets(dataset_dir: Path) -> None:
    dataset = ClipDataset.load(dataset_dir)
    stream = BatchStream(dataset, LoaderConfig(max_batch_size=2, num_buckets=3))
    seen = np.concatenate([stream.indices_at(step) for step in range(stream.batches_per_epoch)])
    assert sorted(seen.tolist()) == list(range(len(dataset)))
    # a batch never mixes the shortest and the longest bucket
    for step in range(stream.batches_per_epoch):
        lengths = dataset.lengths[stream.indices_at(step)]
        assert lengths.max() - lengths.min() <= dataset.lengths.max() - dataset.lengths.min()


def test_the_reference_is_another_utterance_of_the_same_speaker(dataset_dir: Path) -> None:
    dataset = ClipDataset.load(dataset_dir)
    stream = BatchStream(dataset, LoaderConfig(max_batch_size=4, num_buckets=1, max_ref_frames=1000))
    for step in range(6):
        batch = stream.batch_at(step)
        for row, index in enumerate(stream.indices_at(step)):
            clip = dataset.clips[int(index)]
            ref = batch.ref_latents[row, : batch.ref_latents_lengths[row]].numpy()
            matches = [c for c in dataset.clips if c.latents.shape == ref.shape and np.array_equal(c.latents, ref)]
            assert matches and matches[0].speaker == clip.speaker and matches[0].key != clip.key


def test_long_references_are_cropped_and_padding_is_masked(dataset_dir: Path) -> None:
    dataset = ClipDataset.load(dataset_dir)
    batch = BatchStream(dataset, LoaderConfig(max_batch_size=4, num_buckets=1, max_ref_frames=5)).batch_at(0)
    assert int(batch.ref_latents_lengths.max()) <= 5
    mask = frame_mask(batch.latents_lengths, batch.latents.shape[1])
    assert float(batch.latents[~mask].abs().sum()) == 0.0
    assert torch.equal(batch.phonemes != 0, frame_mask(batch.phonemes_lengths, batch.phonemes.shape[1]))


def test_ranks_read_different_batches(dataset_dir: Path) -> None:
    dataset = ClipDataset.load(dataset_dir)
    cfg = LoaderConfig(max_batch_size=1, num_buckets=1)
    rank0, rank1 = BatchStream(dataset, cfg, rank=0, world_size=2), BatchStream(dataset, cfg, rank=1, world_size=2)
    single = BatchStream(dataset, cfg)
    assert rank0.indices_at(0).tolist() == single.indices_at(0).tolist()
    assert rank1.indices_at(0).tolist() == single.indices_at(1).tolist()


LONG_CLIPS = {"min_s": 20.0, "max_s": 26.0, "num_speakers": 20}


def resident_bytes_while_training(data_dir: Path, steps: int) -> int:
    """Peak Python/numpy heap (tracemalloc) while batches are drawn, with the loaded index still held."""
    import gc
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    try:
        dataset = ClipDataset.load(data_dir)
        stream = BatchStream(dataset, LoaderConfig(max_batch_size=8, max_frames_per_batch=10_000, num_buckets=4))
        gc.collect()  # the scan's reference cycles (tarfile's headers) are garbage, not resident
        tracemalloc.reset_peak()  # the index stays allocated, so it counts; the scan's transient lists do not
        for step in range(steps):
            stream.batch_at(step)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_resident_memory_does_not_grow_with_the_corpus(tmp_path: Path) -> None:
    # 10x the clips (each 150-195 frames, ~45 kB of latents): held in memory they would cost 10x; indexed, the
    # batches dominate and the index adds ~130 bytes a clip (measured: 1.14x here, 2.4x at 100x the clips).
    small_dir = write_synthetic_dataset(tmp_path / "small", 150, **LONG_CLIPS)
    resident_bytes_while_training(small_dir, steps=12)  # first use: imports and caches, not the loader's memory
    small = resident_bytes_while_training(small_dir, steps=12)
    large = resident_bytes_while_training(write_synthetic_dataset(tmp_path / "large", 1500, **LONG_CLIPS), steps=12)
    assert large <= 1.2 * small, (small, large)


def test_ranks_split_every_epoch_into_disjoint_streams(tmp_path: Path) -> None:
    dataset = ClipDataset.load(write_synthetic_dataset(tmp_path / "data", 64, min_s=1.0, max_s=3.0))
    cfg = LoaderConfig(max_batch_size=4, num_buckets=2)
    ranks = [BatchStream(dataset, cfg, rank=r, world_size=2) for r in (0, 1)]
    steps = ranks[0].batches_per_epoch // 2
    seen = [np.concatenate([stream.indices_at(step) for step in range(steps)]) for stream in ranks]
    assert not set(seen[0].tolist()) & set(seen[1].tolist())
    assert len(set(seen[0].tolist()) | set(seen[1].tolist())) == sum(s.size for s in seen)


def test_workers_prefetch_the_same_batches_in_order(tmp_path: Path) -> None:
    from training.loader import prefetch_steps

    dataset = ClipDataset.load(write_synthetic_dataset(tmp_path / "data", 40, min_s=1.0, max_s=3.0))
    stream = BatchStream(dataset, LoaderConfig(max_batch_size=4, num_buckets=2), accumulation=2)
    fetched = list(prefetch_steps(stream.micro_batches_at, 3, 7, num_workers=2, prefetch_batches=2))
    assert len(fetched) == 4
    for step, micro_batches in zip(range(3, 7), fetched, strict=True):
        whole = stream.batch_at(step)
        assert sum(micro.size for micro in micro_batches) == whole.size and len(micro_batches) <= 2
        rows = 0
        for micro in micro_batches:
            n = micro.latents.shape[1]
            assert n == int(micro.latents_lengths.max())  # each micro-batch trimmed to its own longest clip
            assert torch.equal(micro.latents, whole.latents[rows : rows + micro.size, :n])
            rows += micro.size
