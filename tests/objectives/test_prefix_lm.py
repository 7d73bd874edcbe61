"""Prefix-LM NLL against a direct sum of -log p(w_t | w_<t, prefix) with teacher forcing."""

from __future__ import annotations

import math

import pytest
import torch

from vltasks.objectives import prefix_lm_loss

B, L, V, M = 2, 9, 6, 3  # M vision tokens, then BOS and text


def _direct(logits: torch.Tensor, labels: torch.Tensor, first_target: int) -> tuple[float, int]:
    """Sum over targets t >= first_target of -log softmax(logits[t - 1])[labels[t]], and their count."""
    total, count = 0.0, 0
    for b in range(logits.shape[0]):
        for t in range(first_target, logits.shape[1]):
            if labels[b, t] == -100:
                continue
            row = logits[b, t - 1].tolist()  # the output one step earlier predicts token t
            total -= row[labels[b, t]] - math.log(sum(math.exp(x) for x in row))
            count += 1
    return total, count


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(B, L, V, generator=g, dtype=torch.float64)
    labels = torch.randint(V, (B, L), generator=g)
    labels[1, -2:] = -100  # padding of the shorter caption
    return logits, labels


@pytest.mark.parametrize("prefix_len", [0, M, M + 1])
def test_matches_direct_sum_and_mean(prefix_len: int) -> None:
    logits, labels = _data()
    total, count = _direct(logits, labels, max(prefix_len, 1))
    got_sum = prefix_lm_loss(logits, labels, prefix_len=prefix_len, reduction="sum")
    assert got_sum.item() == pytest.approx(total, rel=1e-12)
    assert prefix_lm_loss(logits, labels, prefix_len).item() == pytest.approx(total / count, rel=1e-12)


def test_text_only_labels_are_placed_after_prefix() -> None:
    logits, labels = _data()
    full = prefix_lm_loss(logits, labels, prefix_len=M)
    assert prefix_lm_loss(logits, labels[:, M:], prefix_len=M).item() == pytest.approx(full.item())
    with pytest.raises(ValueError, match="fit neither"):
        prefix_lm_loss(logits, labels[:, 1:], prefix_len=M)


def test_gradient_only_reaches_predicting_positions() -> None:
    logits, labels = _data()
    logits.requires_grad_(True)
    prefix_lm_loss(logits, labels, prefix_len=M + 1).backward()
    per_pos = logits.grad.abs().sum(dim=-1)
    # outputs before the last conditioning position predict nothing; the last output predicts nothing
    assert bool((per_pos[:, :M] == 0).all()) and bool((per_pos[:, -1] == 0).all())
    assert bool((per_pos[0, M:-1] > 0).all())
    assert bool((per_pos[1, -3:] == 0).all())  # predicts padding


def test_no_target_is_zero_and_bad_input_raises() -> None:
    logits = torch.randn(B, L, V, requires_grad=True)
    loss = prefix_lm_loss(logits, torch.full((B, L), -100))
    assert loss.item() == 0.0 and loss.requires_grad
    with pytest.raises(ValueError):
        prefix_lm_loss(logits, torch.zeros(B, L, dtype=torch.long), reduction="none")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        prefix_lm_loss(logits[0], torch.zeros(L, dtype=torch.long))


def test_label_smoothing_mixes_target_with_uniform() -> None:
    """(1 - e) NLL + e mean_v(-log p_v) per target, averaged over targets."""
    logits, labels = _data()
    eps, first = 0.1, M + 1
    total, count = 0.0, 0
    for b in range(B):
        for t in range(first, L):
            if labels[b, t] == -100:
                continue
            logp = torch.log_softmax(logits[b, t - 1], dim=-1)
            total += -(1 - eps) * float(logp[labels[b, t]]) - eps * float(logp.mean())
            count += 1
    got = prefix_lm_loss(logits, labels, prefix_len=first, label_smoothing=eps)
    assert got.item() == pytest.approx(total / count, rel=1e-12)
    assert got.item() != pytest.approx(prefix_lm_loss(logits, labels, prefix_len=first).item())
    with pytest.raises(ValueError, match="label_smoothing"):
        prefix_lm_loss(logits, labels, label_smoothing=1.0)
