"""BERT 15% / 80-10-10 masking checked statistically (seeded), and MLM loss against a direct sum."""

from __future__ import annotations

import math

import pytest
import torch

from vltasks.objectives import IGNORE_INDEX, mask_tokens, mlm_loss

VOCAB, MASK, PAD, CLS, SEP = 30000, 103, 0, 101, 102


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """[CLS] w... [SEP] [PAD]... with random lengths, plus the tokenizer's special-tokens mask."""
    g = torch.Generator().manual_seed(seed)
    rows, length = 96, 128
    ids = torch.randint(1000, VOCAB, (rows, length), generator=g)
    lengths = torch.randint(10, length, (rows,), generator=g)
    pos = torch.arange(length)[None, :]
    ids[:, 0] = CLS
    ids[torch.arange(rows), lengths - 1] = SEP
    ids[pos >= lengths[:, None]] = PAD
    special = (ids == CLS) | (ids == SEP) | (ids == PAD)
    return ids, special


def test_ratios_15_80_10_10() -> None:
    ids, special = _batch()
    original = ids.clone()
    masked, labels = mask_tokens(ids, VOCAB, MASK, special, generator=torch.Generator().manual_seed(1))
    assert torch.equal(ids, original)  # input untouched
    selected = labels != IGNORE_INDEX
    eligible = ~special
    assert not bool((selected & special).any())  # special tokens and padding never selected
    assert torch.equal(labels[selected], ids[selected])
    assert torch.equal(masked[~selected], ids[~selected])  # nothing outside the selection changes
    n_eligible, n_sel = int(eligible.sum()), int(selected.sum())
    assert n_eligible > 5000
    # std of the selected fraction ~ sqrt(.15 * .85 / n) < 0.005
    assert n_sel / n_eligible == pytest.approx(0.15, abs=0.015)
    to_mask = (masked == MASK) & selected
    unchanged = (masked == ids) & selected
    to_random = selected & ~to_mask & ~unchanged
    # std of each share over ~1000+ selected tokens < 0.013
    assert int(to_mask.sum()) / n_sel == pytest.approx(0.8, abs=0.04)
    assert int(to_random.sum()) / n_sel == pytest.approx(0.1, abs=0.03)
    assert int(unchanged.sum()) / n_sel == pytest.approx(0.1, abs=0.03)
    assert bool(((masked[to_random] >= 0) & (masked[to_random] < VOCAB)).all())


def test_seeded_draw_is_reproducible_and_probability_respected() -> None:
    ids, special = _batch(3)
    a = mask_tokens(ids, VOCAB, MASK, special, generator=torch.Generator().manual_seed(5))
    b = mask_tokens(ids, VOCAB, MASK, special, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    none, labels = mask_tokens(ids, VOCAB, MASK, special, mlm_probability=0.0)
    assert torch.equal(none, ids) and bool((labels == IGNORE_INDEX).all())
    _, labels = mask_tokens(ids, VOCAB, MASK, special, mlm_probability=1.0)
    assert torch.equal(labels != IGNORE_INDEX, ~special)
    with pytest.raises(ValueError):
        mask_tokens(ids, VOCAB, MASK, mlm_probability=1.5)


def test_padding_excluded_without_special_tokens_mask() -> None:
    ids, special = _batch(4)
    attention = (ids != PAD).long()
    for kwargs in ({"pad_token_id": PAD}, {"attention_mask": attention}):
        _, labels = mask_tokens(ids, VOCAB, MASK, mlm_probability=1.0, **kwargs)
        assert torch.equal(labels != IGNORE_INDEX, ids != PAD)


def test_mlm_loss_matches_direct_sum() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 7, generator=g, dtype=torch.float64)
    labels = torch.tensor([[-100, 3, -100, 6, -100], [0, -100, -100, -100, 2]])
    total, count = 0.0, 0
    for b in range(2):
        for t in range(5):
            if labels[b, t] != -100:
                row = logits[b, t].tolist()
                total -= row[labels[b, t]] - math.log(sum(math.exp(x) for x in row))
                count += 1
    assert mlm_loss(logits, labels).item() == pytest.approx(total / count, rel=1e-12)


def test_mlm_loss_empty_selection_is_zero_with_graph() -> None:
    logits = torch.randn(2, 3, 5, requires_grad=True)
    loss = mlm_loss(logits, torch.full((2, 3), IGNORE_INDEX))
    assert loss.item() == 0.0
    loss.backward()
    assert logits.grad is not None and bool((logits.grad == 0).all())
    with pytest.raises(ValueError):
        mlm_loss(logits, torch.zeros(2, 4, dtype=torch.long))
