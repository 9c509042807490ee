from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from training.config import LoaderConfig
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
