from __future__ import annotations

from pathlib import Path

import torch

from training.asr import AsrModel, ctc_loss, edit_distance, greedy_decode, load_asr, phoneme_error_rate
from training.config import asr_config_for
from training.metrics import read_metrics


def test_edit_distance_and_per() -> None:
    assert edit_distance([1, 2, 3], [1, 2, 3]) == 0
    assert edit_distance([1, 3], [1, 2, 3]) == 1
    assert edit_distance([], [4, 5]) == 2
    assert phoneme_error_rate([[1, 2], [7]], [[1, 2, 3], [7]]) == 0.25


def test_greedy_decode_collapses_repeats_and_drops_blanks() -> None:
    path = torch.tensor([[0, 5, 5, 0, 5, 9, 9, 0]])
    log_probs = torch.nn.functional.one_hot(path, 12).float().log_softmax(-1)
    assert greedy_decode(log_probs, torch.tensor([8])) == [[5, 5, 9]]
    assert greedy_decode(log_probs, torch.tensor([3])) == [[5]]


def test_output_is_4x_longer_and_padding_does_not_change_valid_outputs() -> None:
    torch.manual_seed(0)
    model = AsrModel(asr_config_for("tiny"), latent_dim=64).eval()
    x = torch.randn(1, 6, 64)
    padded = torch.cat((x, torch.randn(1, 3, 64)), dim=1)
    with torch.no_grad():
        out, lengths = model(x, torch.tensor([6]))
        out_padded, _ = model(padded, torch.tensor([6]))
    assert out.shape == (1, 24, 198) and int(lengths[0]) == 24
    assert torch.allclose(out, out_padded[:, :24], atol=1e-5)


def test_ctc_targets_use_the_real_lengths_on_the_model_device() -> None:
    log_probs = torch.randn(2, 20, 198).log_softmax(-1)
    phonemes = torch.tensor([[3, 4, 5], [6, 0, 0]])
    loss = ctc_loss(log_probs, torch.tensor([20, 12]), phonemes, torch.tensor([3, 1]))
    assert torch.isfinite(loss) and loss > 0


def test_asr_trains_a_few_steps_and_reloads(asr_run: Path) -> None:
    rows = read_metrics(asr_run / "metrics.jsonl")
    assert rows and all(torch.isfinite(torch.tensor(row["loss"])) for row in rows)
    assert "per" in rows[-1]
    model = load_asr(asr_run)
    assert not model.training and model.latent_dim == 64
