"""MRC-CE, MRC-KL and MRFR against direct loops over the seed formulas; region/patch mask helpers."""

from __future__ import annotations

import math

import pytest
import torch

from vltasks.objectives import (
    apply_region_mask,
    mask_patches,
    mask_regions,
    mrc_ce_loss,
    mrc_kl_loss,
    mrfr_loss,
)

B, R, K, D = 2, 5, 4, 3
MASK = torch.tensor([[True, False, True, False, False], [False, False, False, True, True]])


def _log_softmax(row: list[float]) -> list[float]:
    z = math.log(sum(math.exp(x) for x in row))
    return [x - z for x in row]


def _masked_regions() -> list[tuple[int, int]]:
    return [(b, r) for b in range(B) for r in range(R) if MASK[b, r]]


def test_mrc_ce_matches_direct_loop() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(B, R, K, generator=g, dtype=torch.float64)
    labels = torch.randint(K, (B, R), generator=g)
    labels[~MASK] = -1  # padding values on unmasked regions must not matter
    want = [-_log_softmax(logits[b, r].tolist())[labels[b, r]] for b, r in _masked_regions()]
    assert mrc_ce_loss(logits, labels, MASK).item() == pytest.approx(sum(want) / len(want), rel=1e-12)


def test_mrc_kl_matches_direct_loop_and_is_kl() -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(B, R, K, generator=g, dtype=torch.float64)
    q = torch.rand(B, R, K, generator=g, dtype=torch.float64)
    q[0, 0, 1] = 0.0  # 0 log 0 = 0
    q = q / q.sum(-1, keepdim=True)
    want = []
    for b, r in _masked_regions():
        logp = _log_softmax(logits[b, r].tolist())
        want.append(sum(qk * (math.log(qk) - lp) for qk, lp in zip(q[b, r].tolist(), logp) if qk > 0))
    assert mrc_kl_loss(logits, q, MASK).item() == pytest.approx(sum(want) / len(want), rel=1e-12)
    # KL(q || q) = 0 and the target side gets no gradient
    q_leaf = q.clone().requires_grad_(True)
    logits_leaf = q.log().clamp(min=-1e4).requires_grad_(True)
    zero = mrc_kl_loss(logits_leaf, q_leaf, MASK)
    assert zero.item() == pytest.approx(0.0, abs=1e-10)
    zero.backward()
    assert q_leaf.grad is None and logits_leaf.grad is not None


def test_mrfr_matches_direct_squared_l2() -> None:
    g = torch.Generator().manual_seed(2)
    pred = torch.randn(B, R, D, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.randn(B, R, D, generator=g, dtype=torch.float64, requires_grad=True)
    want = [
        sum((p - t) ** 2 for p, t in zip(pred[b, r].tolist(), target[b, r].tolist()))
        for b, r in _masked_regions()
    ]
    loss = mrfr_loss(pred, target, MASK)
    assert loss.item() == pytest.approx(sum(want) / len(want), rel=1e-12)
    loss.backward()
    assert target.grad is None  # targets are detached
    assert bool((pred.grad[~MASK] == 0).all()) and bool((pred.grad[MASK] != 0).any())
    # mask=None: every region counts
    all_regions = ((pred - target) ** 2).sum(-1).mean()
    assert mrfr_loss(pred, target).item() == pytest.approx(all_regions.item(), rel=1e-12)


def test_empty_mask_gives_zero_with_graph() -> None:
    logits = torch.randn(B, R, K, requires_grad=True)
    empty = torch.zeros(B, R, dtype=torch.bool)
    for loss in (
        mrc_ce_loss(logits, torch.zeros(B, R, dtype=torch.long), empty),
        mrc_kl_loss(logits, torch.full((B, R, K), 1 / K), empty),
        mrfr_loss(logits, torch.zeros(B, R, K), empty),
    ):
        assert loss.item() == 0.0 and loss.requires_grad


def test_shape_errors() -> None:
    with pytest.raises(ValueError):
        mrc_ce_loss(torch.randn(B, R, K), torch.zeros(B, R + 1, dtype=torch.long))
    with pytest.raises(ValueError):
        mrc_kl_loss(torch.randn(B, R, K), torch.rand(B, R, K + 1))
    with pytest.raises(ValueError):
        mrfr_loss(torch.randn(B, R, D), torch.randn(B, R, D), torch.ones(B, R + 1, dtype=torch.bool))


def test_mask_regions_respects_padding_rate_and_at_least_one() -> None:
    g = torch.Generator().manual_seed(0)
    valid = torch.arange(36)[None, :] < torch.randint(1, 37, (400, 1), generator=g)
    mask = mask_regions(400, 36, 0.15, valid_mask=valid, generator=g)
    assert mask.dtype == torch.bool and mask.shape == (400, 36)
    assert not bool((mask & ~valid).any())
    assert bool(mask.any(dim=1).all())  # every sample has an MRM target
    assert int(mask.sum()) / int(valid.sum()) == pytest.approx(0.15, abs=0.02)
    plain = mask_regions(4, 10, 0.0, at_least_one=False)
    assert not bool(plain.any())
    assert torch.equal(mask_regions(4, 10, 0.0).sum(dim=1), torch.ones(4, dtype=torch.long))


def test_mask_patches_exact_count_and_apply() -> None:
    mask = mask_patches(8, 196, 0.4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(mask.sum(dim=1), torch.full((8,), round(0.4 * 196)))
    assert not torch.equal(mask[0], mask[1])
    feats = torch.randn(8, 196, D)
    out = apply_region_mask(feats, mask)
    assert bool((out[mask] == 0).all()) and torch.equal(out[~mask], feats[~mask])
    token = torch.tensor([1.0, 2.0, 3.0])
    assert torch.equal(apply_region_mask(feats, mask, token)[mask], token.expand(int(mask.sum()), D))
