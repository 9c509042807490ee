from __future__ import annotations

import pytest
import torch

from model.config import preset_config
from model.nn.dit import Conditions, DiTModel, TimeEmbedding
from model.rope import rope_angles

LATENT_DIM = 64


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _full_counts_from_spec() -> dict[str, int]:
    """Spec §3.9, derived from the dimensions (not copied totals), per top-level module."""
    d, t, s, c = 960, 512, 512, 64
    linear = lambda i, o, bias=True: i * o + (o if bias else 0)  # noqa: E731
    time_embedding = linear(256, d) + linear(d, d)
    text_block = 5 * linear(t, t, False) + 2 * t + 3 * linear(t, 1024, False) + 2 * t
    phoneme_embedding = 198 * t + 8 * text_block + t
    style_block = 5 * linear(s, s, False) + 2 * s + 3 * linear(s, 1536, False) + 2 * s
    style_encoder = linear(c, s) + 1 + 12 * style_block + s + linear(s, d)
    conv = d * (d // 16) * 31 + d
    dit_block = (
        linear(d, 6 * d)  # attn_norm
        + 3 * linear(d, d)  # to_q, to_k_self, to_v_self
        + 2 * linear(d, d, False)  # gate, to_out
        + 4 * linear(d, d)  # cross k/v for ref and text
        + 3 * 8 * 120  # q_norm, k_norm, k_norm_cross
        + 2 * linear(d, 2400)
        + linear(2400, d)  # ff
    )
    dit = (
        linear(c, d) + 2 * conv + linear(t, d) + linear(d, 2 * d) + linear(2 * d, d) + 12 * dit_block + linear(d, 2 * d)
    )
    return {
        "time_embedding": time_embedding,
        "phoneme_embedding": phoneme_embedding,
        "style_encoder": style_encoder,
        "dit": dit,
        "velocity": linear(d, c),
    }


def test_full_preset_parameter_count() -> None:
    with torch.device("meta"):  # shapes only: no 1.3 GB allocation, no init
        model = DiTModel(preset_config("full"))
    expected = _full_counts_from_spec()
    assert expected == {
        "time_embedding": 1_169_280,
        "phoneme_embedding": 23_186_944,
        "style_encoder": 44_591_041,
        "dit": 258_747_840,
        "velocity": 61_504,
    }
    assert {name: _count(child) for name, child in model.named_children()} == expected
    assert _count(model) == 327_756_609
    assert _count(model.dit.transformer_blocks[0]) == 20_757_120
    assert list(model.buffers()) == []  # state_dict == parameters: nothing extra to load


def test_small_and_tiny_sizes() -> None:
    with torch.device("meta"):
        small = DiTModel(preset_config("small"))
    assert 15_000_000 <= _count(small) <= 40_000_000
    assert _count(DiTModel(preset_config("tiny"))) < 1_000_000


def test_state_dict_uses_the_original_names() -> None:
    keys = set(DiTModel(preset_config("tiny")).state_dict())
    expected = {
        "time_embedding.mlp.0.weight",
        "time_embedding.mlp.2.bias",
        "phoneme_embedding.text_embedding.weight",
        "phoneme_embedding.blocks.0.attention_norm.weight",
        "phoneme_embedding.blocks.0.attention.wq.weight",
        "phoneme_embedding.blocks.0.attention.gate.weight",
        "phoneme_embedding.blocks.0.attention.k_norm.weight",
        "phoneme_embedding.blocks.0.mlp_norm.weight",
        "phoneme_embedding.blocks.0.mlp.w2.weight",
        "phoneme_embedding.norm.weight",
        "style_encoder.in_proj.bias",
        "style_encoder.log_scale",
        "style_encoder.blocks.0.attention.wo.weight",
        "style_encoder.out_proj.weight",
        "dit.input_embed.proj.weight",
        "dit.input_embed.conv_pos_embed.conv1.weight",
        "dit.input_embed.conv_pos_embed.conv2.bias",
        "dit.phoneme_proj.weight",
        "dit.emb_proj.0.weight",
        "dit.emb_proj.2.bias",
        "dit.transformer_blocks.1.attn_norm.linear.weight",
        "dit.transformer_blocks.1.attn.to_q.bias",
        "dit.transformer_blocks.1.attn.to_k_self.weight",
        "dit.transformer_blocks.1.attn.to_v_self.bias",
        "dit.transformer_blocks.1.attn.gate.weight",
        "dit.transformer_blocks.1.attn.to_out.0.weight",
        "dit.transformer_blocks.1.attn.to_k_ref.weight",
        "dit.transformer_blocks.1.attn.to_v_ref.bias",
        "dit.transformer_blocks.1.attn.to_k_text.weight",
        "dit.transformer_blocks.1.attn.to_v_text.bias",
        "dit.transformer_blocks.1.attn.q_norm.weight",
        "dit.transformer_blocks.1.attn.k_norm_cross.weight",
        "dit.transformer_blocks.1.ff.w1.bias",
        "dit.transformer_blocks.1.ff.w3.weight",
        "dit.norm_out.linear.weight",
        "velocity.bias",
    }
    assert expected <= keys
    assert "dit.transformer_blocks.1.attn.gate.bias" not in keys
    assert "dit.transformer_blocks.1.attn.to_out.0.bias" not in keys


def test_untrained_model_predicts_zero_velocity(tiny_inputs: dict[str, torch.Tensor]) -> None:
    # Spec init: velocity head and every AdaLN linear start at zero.
    model = DiTModel(preset_config("tiny")).eval()
    with torch.no_grad():
        v = model(**tiny_inputs)
    assert v.abs().max() == 0.0


@pytest.fixture
def tiny_inputs() -> dict[str, torch.Tensor]:
    """A padded batch of 3: different frame counts, reference lengths and text lengths."""
    generator = torch.Generator().manual_seed(3)
    b, n, r, p = 3, 11, 8, 9
    return {
        "noised": torch.randn(b, n, LATENT_DIM, generator=generator),
        "ref_latents": torch.randn(b, r, LATENT_DIM, generator=generator),
        "ref_latents_lengths": torch.tensor([8, 5, 2]),
        "mask": torch.arange(n)[None] < torch.tensor([11, 7, 4])[:, None],
        "phonemes": torch.randint(1, 198, (b, p), generator=generator),
        "phonemes_mask": torch.arange(p)[None] < torch.tensor([9, 3, 6])[:, None],
        "t": torch.tensor([0.9, 0.5, 0.1]),
    }


def test_forward_equals_encode_then_denoise(tiny_model: DiTModel, tiny_inputs: dict[str, torch.Tensor]) -> None:
    x = tiny_inputs
    with torch.no_grad():
        v = tiny_model(**x)
        cond = tiny_model.encode_conditions(
            x["ref_latents"], x["ref_latents_lengths"], x["phonemes"], x["phonemes_mask"]
        )
        rope = torch.from_numpy(rope_angles(11, tiny_model.cfg.dit.rope_dim))  # what the runtime passes
        v_cached = tiny_model.denoise_step(x["noised"], x["mask"], x["t"], cond, rope)
    assert v.shape == (3, 11, LATENT_DIM)
    assert v.abs().max() > 0.1  # the random test model is not degenerate
    torch.testing.assert_close(v_cached, v)


def test_condition_shapes(tiny_model: DiTModel, tiny_inputs: dict[str, torch.Tensor]) -> None:
    x = tiny_inputs
    with torch.no_grad():
        cond = tiny_model.encode_conditions(
            x["ref_latents"], x["ref_latents_lengths"], x["phonemes"], x["phonemes_mask"]
        )
    assert isinstance(cond, Conditions)
    assert cond.k_ref.shape == cond.v_ref.shape == (2, 3, 2, 8, 24)  # (l b h r e)
    assert cond.k_text.shape == cond.v_text.shape == (2, 3, 2, 9, 24)  # (l b h p e)
    assert cond.ref_mask.tolist()[2] == [True, True] + [False] * 6
    # Padded text tokens are zeroed before the cross projections, so their keys are the bias alone.
    k_text_pad = cond.k_text[:, 1, :, 3:]
    assert torch.allclose(k_text_pad, k_text_pad[:, :, :1].expand_as(k_text_pad))


def test_stacked_features(tiny_model: DiTModel, tiny_inputs: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        v, stacked = tiny_model(**tiny_inputs, return_stacked_features=True)
        hidden = tiny_model.dit.norm_out(
            stacked[:, -1], tiny_model.dit.emb_proj(tiny_model.time_embedding(tiny_inputs["t"]))
        )
    assert stacked.shape == (3, 2, 11, 48)  # (b l n d)
    torch.testing.assert_close(tiny_model.velocity(hidden), v)


def test_padded_batch_rows_equal_items_alone(tiny_model: DiTModel, tiny_inputs: dict[str, torch.Tensor]) -> None:
    x = tiny_inputs
    with torch.no_grad():
        batched = tiny_model(**x)
        for i in range(3):
            n, r, p = int(x["mask"][i].sum()), int(x["ref_latents_lengths"][i]), int(x["phonemes_mask"][i].sum())
            alone = tiny_model(
                noised=x["noised"][i : i + 1, :n],
                ref_latents=x["ref_latents"][i : i + 1, :r],
                ref_latents_lengths=x["ref_latents_lengths"][i : i + 1],
                mask=torch.ones(1, n, dtype=torch.bool),
                phonemes=x["phonemes"][i : i + 1, :p],
                phonemes_mask=torch.ones(1, p, dtype=torch.bool),
                t=x["t"][i : i + 1],
            )
            torch.testing.assert_close(batched[i : i + 1, :n], alone, atol=1e-5, rtol=1e-5)


def test_padding_content_never_reaches_valid_frames(tiny_model: DiTModel, tiny_inputs: dict[str, torch.Tensor]) -> None:
    x = dict(tiny_inputs)
    changed = dict(x)
    changed["noised"] = torch.where(x["mask"][..., None], x["noised"], 100.0)
    changed["ref_latents"] = x["ref_latents"].clone()
    changed["ref_latents"][1, 5:] = -50.0
    changed["phonemes"] = torch.where(x["phonemes_mask"], x["phonemes"], 7)
    with torch.no_grad():
        v, v_changed = tiny_model(**x), tiny_model(**changed)
    valid = x["mask"]
    torch.testing.assert_close(v[valid], v_changed[valid], atol=1e-5, rtol=1e-5)


def test_cfg_dropped_conditions_have_no_nan(tiny_model: DiTModel, tiny_inputs: dict[str, torch.Tensor]) -> None:
    # Teacher CFG dropout: text ids 0 with an all-false mask, reference zeroed with length 0 (bug 20).
    x = dict(tiny_inputs)
    x["phonemes"] = torch.zeros_like(x["phonemes"])
    x["phonemes_mask"] = torch.zeros_like(x["phonemes_mask"])
    x["ref_latents"] = torch.zeros_like(x["ref_latents"])
    x["ref_latents_lengths"] = torch.zeros_like(x["ref_latents_lengths"])
    tiny_model.train()
    v = tiny_model(**x)
    assert torch.isfinite(v).all()
    v.square().mean().backward()
    grads = [p.grad for p in tiny_model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_all_padding_row_gives_finite_output(tiny_model: DiTModel, tiny_inputs: dict[str, torch.Tensor]) -> None:
    x = dict(tiny_inputs)
    x["mask"] = x["mask"].clone()
    x["mask"][2] = False
    x["phonemes_mask"] = x["phonemes_mask"].clone()
    x["phonemes_mask"][2] = False
    x["ref_latents_lengths"] = torch.tensor([8, 5, 0])
    with torch.no_grad():
        v = tiny_model(**x)
        reference = tiny_model(**tiny_inputs)
    assert torch.isfinite(v).all()
    torch.testing.assert_close(v[:2], reference[:2])


def test_rope_uses_last_positions_of_a_longer_table(tiny_model: DiTModel, tiny_inputs: dict[str, torch.Tensor]) -> None:
    x = tiny_inputs
    with torch.no_grad():
        cond = tiny_model.encode_conditions(
            x["ref_latents"], x["ref_latents_lengths"], x["phonemes"], x["phonemes_mask"]
        )
        table = tiny_model.rope(15)
        v_long = tiny_model.denoise_step(x["noised"], x["mask"], x["t"], cond, table)
        v_last = tiny_model.denoise_step(x["noised"], x["mask"], x["t"], cond, table[:, 4:])
        v_first = tiny_model.denoise_step(x["noised"], x["mask"], x["t"], cond, table[:, :11])
    torch.testing.assert_close(v_long, v_last)
    assert not torch.allclose(v_long, v_first)


def test_time_embedding_is_sine_first() -> None:
    embedding = TimeEmbedding(preset_config("tiny").dit)
    seen: list[torch.Tensor] = []
    embedding.mlp.register_forward_pre_hook(lambda _module, args: seen.append(args[0]))
    embedding(torch.tensor([0.0, 0.25]))
    (sinusoid,) = seen
    half = preset_config("tiny").dit.time_freq_dim // 2
    assert sinusoid[0, :half].abs().max() == 0.0 and torch.all(sinusoid[0, half:] == 1.0)
    assert torch.isclose(sinusoid[1, 0], torch.sin(torch.tensor(250.0)))  # freq 0 = 1, scaled by 1000
    assert torch.isclose(sinusoid[1, half - 1], torch.sin(torch.tensor(0.25 * 1000 * 1e-4)))


def test_gradient_checkpointing_gives_same_gradients(
    tiny_model: DiTModel, tiny_inputs: dict[str, torch.Tensor]
) -> None:
    tiny_model.train()
    tiny_model(**tiny_inputs).square().mean().backward()
    plain = [p.grad.clone() for p in tiny_model.parameters() if p.grad is not None]
    tiny_model.zero_grad()
    tiny_model.dit.gradient_checkpointing = True
    tiny_model(**tiny_inputs).square().mean().backward()
    checkpointed = [p.grad for p in tiny_model.parameters() if p.grad is not None]
    assert len(plain) == len(checkpointed)
    for a, b in zip(plain, checkpointed, strict=True):
        torch.testing.assert_close(a, b)


def test_bfloat16_dropped_conditions_have_no_nan(tiny_model: DiTModel, tiny_inputs: dict[str, torch.Tensor]) -> None:
    # Mixed-precision training: the mask bias must stay finite in bfloat16 (finfo(float32).min would not).
    model = tiny_model.to(torch.bfloat16)
    x = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in tiny_inputs.items()}
    x["phonemes_mask"] = torch.zeros_like(x["phonemes_mask"])
    x["ref_latents_lengths"] = torch.zeros_like(x["ref_latents_lengths"])
    with torch.no_grad():
        v = model(**x)
    assert v.dtype == torch.bfloat16
    assert torch.isfinite(v).all()


def test_autocast_matches_float32_roughly(tiny_model: DiTModel, tiny_inputs: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        reference = tiny_model(**tiny_inputs)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = tiny_model(**tiny_inputs)
    assert torch.isfinite(mixed).all()
    assert (mixed.float() - reference).abs().max() < 0.1 * reference.abs().max()


def test_text_prior_is_diagonal_and_only_on_text_keys() -> None:
    from dataclasses import replace

    from model.nn.dit import text_alignment_prior

    cfg = replace(preset_config("tiny").dit, text_prior_width_tokens=2.0)
    mask = torch.ones(2, 40, dtype=torch.bool)
    mask[1, 20:] = False  # row 1: 20 frames
    phonemes_mask = torch.ones(2, 10, dtype=torch.bool)
    phonemes_mask[1, 5:] = False  # row 1: 5 tokens
    prior = text_alignment_prior(mask, 3, phonemes_mask, cfg)  # (b h n k)
    assert prior.shape == (2, cfg.num_heads, 40, 40 + 3 + 10)
    assert torch.count_nonzero(prior[..., : 40 + 3]) == 0  # self and reference keys are untouched
    text = prior[..., 40 + 3 :]  # (b h n p)
    # Each frame's most favoured token is the one under it when the text is spread evenly: frame j -> j p / n.
    assert torch.equal(text[0, 0].argmax(dim=-1), torch.arange(40) // 4)
    assert torch.equal(text[1, 0, :20, :5].argmax(dim=-1), torch.arange(20) // 4)
    # Head h is 2^h times wider: the same distance costs 4^h times less.
    far = text[0, :, 0, 9]
    assert torch.allclose(far[0] / far[1], torch.tensor(4.0)) and bool((far < 0).all())


def test_text_prior_changes_the_velocity_only_when_on() -> None:
    from dataclasses import replace

    from model.export import build_random_model

    model = build_random_model("tiny", seed=0)
    x, ref = torch.randn(1, 12, 64), torch.randn(1, 5, 64)
    args = (x, ref, torch.tensor([5]), torch.ones(1, 12, dtype=torch.bool), torch.randint(1, 198, (1, 6)))
    with torch.no_grad():
        plain = model(*args, torch.ones(1, 6, dtype=torch.bool), torch.tensor([0.5]))
        model.dit.cfg = replace(model.dit.cfg, text_prior_width_tokens=1.0)
        with_prior = model(*args, torch.ones(1, 6, dtype=torch.bool), torch.tensor([0.5]))
    assert float((plain - with_prior).abs().max()) > 1e-3
