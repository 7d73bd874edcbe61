"""ITM loss against the seed's logistic formula; hard negatives never positive and follow softmax(sim)."""

from __future__ import annotations

import math

import pytest
import torch

from vltasks.objectives import itm_loss, sample_itm_hard_negatives


def test_itm_binary_matches_seed_formula() -> None:
    logits = torch.tensor([2.0, -1.0, 0.3, -3.5, 0.0], dtype=torch.float64)
    labels = torch.tensor([1, 0, 0, 1, 1])
    expected = 0.0
    for logit, y in zip(logits.tolist(), labels.tolist()):
        p = 1 / (1 + math.exp(-logit))  # p = sigmoid(w^T z + b)
        expected -= y * math.log(p) + (1 - y) * math.log(1 - p)
    expected /= len(labels)
    assert itm_loss(logits, labels).item() == pytest.approx(expected, rel=1e-12)
    assert itm_loss(logits[:, None], labels).item() == pytest.approx(expected, rel=1e-12)
    assert itm_loss(logits, labels.bool()).item() == pytest.approx(expected, rel=1e-12)


def test_itm_two_way_is_softmax_ce_and_agrees_with_logistic() -> None:
    logits = torch.tensor([[0.5, 1.5], [2.0, -1.0], [0.0, 0.0]], dtype=torch.float64)
    labels = torch.tensor([1, 0, 1])
    expected = 0.0
    for (l0, l1), y in zip(logits.tolist(), labels.tolist()):
        expected -= math.log(math.exp([l0, l1][y]) / (math.exp(l0) + math.exp(l1)))
    expected /= 3
    assert itm_loss(logits, labels).item() == pytest.approx(expected, rel=1e-12)
    # softmax over 2 classes == sigmoid of the logit difference
    assert itm_loss(logits[:, 1] - logits[:, 0], labels).item() == pytest.approx(expected, rel=1e-12)


def test_itm_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError):
        itm_loss(torch.randn(4, 3), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError):
        itm_loss(torch.randn(4), torch.zeros(3))


def _expected_weights(sim: torch.Tensor, positive: torch.Tensor) -> list[list[float]]:
    """softmax(sim) with positives zeroed and renormalized, computed directly."""
    rows = []
    for i, row in enumerate(sim.tolist()):
        w = [0.0 if positive[i, j] else math.exp(s) for j, s in enumerate(row)]
        rows.append([x / sum(w) for x in w])
    return rows


def test_hard_negatives_follow_softmax_weights() -> None:
    # Many independent draws in one call: the batch is K copies of a 4-pair world (image/text i has
    # kind i % 4). Copies of the same kind are marked as captions of the same image, so they are
    # positives too and each row's draw, read as a kind, follows softmax(base) over the other kinds.
    b, k, calls = 4, 200, 20  # cost grows with k * draws: many narrow calls beat one wide one
    g = torch.Generator().manual_seed(0)
    base_i2t = torch.randn(b, b, generator=g) * 1.5
    base_t2i = torch.randn(b, b, generator=g) * 1.5
    kind = torch.arange(b * k) % b
    sim_i2t = base_i2t[kind][:, kind]
    sim_t2i = base_t2i[kind][:, kind]
    same = kind[:, None] == kind[None, :]
    counts_t = torch.zeros(b, b)
    counts_i = torch.zeros(b, b)
    gen = torch.Generator().manual_seed(42)
    for _ in range(calls):
        neg_t, neg_i = sample_itm_hard_negatives(sim_i2t, sim_t2i, generator=gen, same_image_mask=same)
        assert not bool(same[torch.arange(b * k), neg_t].any())
        assert not bool(same[neg_i, torch.arange(b * k)].any())
        counts_t.index_put_((kind, kind[neg_t]), torch.ones(b * k), accumulate=True)
        counts_i.index_put_((kind, kind[neg_i]), torch.ones(b * k), accumulate=True)
    draws = k * calls  # per kind; binomial std of a frequency <= 0.008, so 0.035 is > 4 sigma
    eye = torch.eye(b, dtype=torch.bool)
    want_t = torch.tensor(_expected_weights(base_i2t, eye))
    want_i = torch.tensor(_expected_weights(base_t2i, eye))
    torch.testing.assert_close(counts_t / draws, want_t, atol=0.035, rtol=0)
    torch.testing.assert_close(counts_i / draws, want_i, atol=0.035, rtol=0)


@pytest.mark.parametrize("with_mask", [False, True])
def test_hard_negatives_never_pick_a_positive(with_mask: bool) -> None:
    b = 6
    g = torch.Generator().manual_seed(1)
    positive = torch.eye(b, dtype=torch.bool)
    mask = None
    if with_mask:  # image 0 has captions 0, 1, 2; image 3 has captions 3, 4
        mask = torch.zeros(b, b, dtype=torch.bool)
        mask[0, 1] = mask[0, 2] = mask[1, 0] = mask[2, 0] = mask[3, 4] = mask[4, 3] = True
        positive |= mask
    seen = torch.zeros(b, b, dtype=torch.bool)
    for _ in range(100):
        sim_i2t, sim_t2i = torch.randn(b, b, generator=g), torch.randn(b, b, generator=g)
        neg_t, neg_i = sample_itm_hard_negatives(sim_i2t, sim_t2i, generator=g, same_image_mask=mask)
        assert not bool(positive[torch.arange(b), neg_t].any())
        assert not bool(positive[neg_i, torch.arange(b)].any())
        seen[torch.arange(b), neg_t] = True
    assert torch.equal(seen, ~positive)  # and every negative does get drawn


def test_hard_negatives_reproducible_and_robust_to_sharp_similarity() -> None:
    b = 16
    sim = torch.randn(b, b, generator=torch.Generator().manual_seed(3))
    sharp = sim + torch.eye(b) * 1e4  # softmax-then-zero would underflow every negative to 0
    a = sample_itm_hard_negatives(sharp, sharp.t(), generator=torch.Generator().manual_seed(7))
    c = sample_itm_hard_negatives(sharp, sharp.t(), generator=torch.Generator().manual_seed(7))
    assert torch.equal(a[0], c[0]) and torch.equal(a[1], c[1])
    assert a[0].dtype == torch.long and a[0].shape == (b,)
    assert not bool((a[0] == torch.arange(b)).any()) and not bool((a[1] == torch.arange(b)).any())


def test_hard_negatives_no_candidate_raises() -> None:
    with pytest.raises(ValueError, match="no negative"):
        sample_itm_hard_negatives(
            torch.zeros(2, 2), torch.zeros(2, 2), same_image_mask=torch.ones(2, 2, dtype=torch.bool)
        )
    with pytest.raises(ValueError, match=r"need \[B, N\]"):
        sample_itm_hard_negatives(torch.zeros(2, 3), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="offset"):
        sample_itm_hard_negatives(torch.zeros(2, 3), torch.zeros(2, 3), offset=2)


def test_global_columns_skip_this_ranks_positives_and_same_image_columns() -> None:
    """Rank 1 of 2: local rows 0..2 are global columns 3..5; rows 0 and 2 share an image with
    global column 1 (another rank's caption of the same image): none of those is ever drawn."""
    b, n, offset = 3, 7, 3
    same = torch.zeros(b, n, dtype=torch.bool)
    same[0, 1] = same[2, 1] = True
    positive = same.clone()
    positive[torch.arange(b), torch.arange(b) + offset] = True
    seen_t = torch.zeros(b, n, dtype=torch.bool)
    seen_i = torch.zeros(b, n, dtype=torch.bool)
    g = torch.Generator().manual_seed(0)
    for _ in range(400):
        sim = torch.randn(b, n, generator=g)
        nt, ni = sample_itm_hard_negatives(sim, sim.flip(1), g, same_image_mask=same, offset=offset)
        seen_t[torch.arange(b), nt] = True
        seen_i[torch.arange(b), ni] = True
    assert torch.equal(seen_t, ~positive) and torch.equal(seen_i, ~positive)
