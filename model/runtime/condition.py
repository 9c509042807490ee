"""The condition stage: phonemes + reference latents -> the denoiser's cross-attention inputs, per voice cached.

One condition-encoder call per batch. A voice's reference K/V (the per-layer cross-attention keys and values of
its latents) are cached by the hash of the latents, so a returning voice skips the style encoder: its row runs
with a one-frame dummy reference (the text path does not look at the reference, spec §1.4) and its cached K/V
are padded into the batch.

Legend: b = batch, r = reference frames, p = phoneme tokens, c = latent channels, L = DiT layers, h = heads,
k = head dim.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from model.runtime.cache import LruCache
from model.runtime.graph import OnnxGraph
from model.runtime.request import PreparedRequest
from model.runtime.sampler import Conditioning

RefKV = tuple[np.ndarray, np.ndarray, np.ndarray]  # k_ref (L 1 h r k), v_ref (L 1 h r k), ref_mask (1 r)


class ConditionStage:
    def __init__(self, encoder: OnnxGraph, latent_dim: int, cache_bytes: int) -> None:
        self.encoder = encoder
        self.latent_dim = latent_dim
        self.cache: LruCache[RefKV] = LruCache(cache_bytes, lambda kv: sum(a.nbytes for a in kv))

    def condition(self, items: Sequence[PreparedRequest]) -> Conditioning:
        """Runs the condition encoder once for the batch, reusing cached reference K/V where it can."""
        cached = [self.cache.get(item.ref_key) for item in items]
        dummy = np.zeros((1, self.latent_dim), dtype=np.float32)
        refs = [item.ref_latents if hit is None else dummy for item, hit in zip(items, cached, strict=True)]
        batch = len(items)
        max_ref = max(ref.shape[0] for ref in refs)
        max_tokens = max(item.token_ids.shape[0] for item in items)
        ref_batch = np.zeros((batch, max_ref, self.latent_dim), dtype=np.float32)  # (b r c)
        ref_lengths = np.zeros((batch,), dtype=np.int64)
        phonemes = np.zeros((batch, max_tokens), dtype=np.int64)  # (b p), 0 = padding
        phonemes_mask = np.zeros((batch, max_tokens), dtype=bool)
        for i, (item, ref) in enumerate(zip(items, refs, strict=True)):
            ref_batch[i, : ref.shape[0]] = ref
            ref_lengths[i] = ref.shape[0]
            phonemes[i, : item.token_ids.shape[0]] = item.token_ids
            phonemes_mask[i, : item.token_ids.shape[0]] = True
        k_ref, v_ref, ref_mask, k_text, v_text = self.encoder.run(ref_batch, ref_lengths, phonemes, phonemes_mask)[
            :5
        ]  # (L b h r k) x2, (b r), (L b h p k) x2
        per_item: list[RefKV] = []
        for i, (item, hit) in enumerate(zip(items, cached, strict=True)):
            if hit is None:
                frames = item.ref_latents.shape[0]
                hit = (
                    np.ascontiguousarray(k_ref[:, i : i + 1, :, :frames]),
                    np.ascontiguousarray(v_ref[:, i : i + 1, :, :frames]),
                    np.ascontiguousarray(ref_mask[i : i + 1, :frames], dtype=bool),
                )
                self.cache.put(item.ref_key, hit)
            per_item.append(hit)
        k_ref_b, v_ref_b, ref_mask_b = pad_reference_kv(per_item)
        return Conditioning(
            k_ref=k_ref_b,
            v_ref=v_ref_b,
            ref_mask=ref_mask_b,
            k_text=np.asarray(k_text, dtype=np.float32),
            v_text=np.asarray(v_text, dtype=np.float32),
            phonemes_mask=phonemes_mask,
        )


def pad_reference_kv(per_item: Sequence[RefKV]) -> RefKV:
    """Stacks per-item reference K/V (L 1 h r_i k) into (L b h r k), padding r with masked zeros."""
    max_ref = max(kv[0].shape[3] for kv in per_item)
    layers, _, heads, _, head_dim = per_item[0][0].shape
    batch = len(per_item)
    k_ref = np.zeros((layers, batch, heads, max_ref, head_dim), dtype=np.float32)
    v_ref = np.zeros_like(k_ref)
    ref_mask = np.zeros((batch, max_ref), dtype=bool)
    for i, (k, v, mask) in enumerate(per_item):
        frames = k.shape[3]
        k_ref[:, i, :, :frames] = k[:, 0]
        v_ref[:, i, :, :frames] = v[:, 0]
        ref_mask[i, :frames] = mask[0]
    return k_ref, v_ref, ref_mask
