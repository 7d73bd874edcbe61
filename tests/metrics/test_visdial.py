"""VisDial metrics against a transcription of visdial-challenge-starter-pytorch's metrics.py."""

from __future__ import annotations

import pytest
import torch

from vltasks.metrics import VisDialMetrics
from vltasks.metrics.functional import visdial_metrics


def _starter_code(scores: torch.Tensor, gt: torch.Tensor, relevance: torch.Tensor) -> dict[str, float]:
    """scores_to_ranks + SparseGTMetrics + NDCG, as loops (float32, like the original)."""
    ranked_idx = torch.sort(scores, dim=1, descending=True, stable=True).indices
    ranks = torch.zeros_like(ranked_idx)
    for i in range(ranked_idx.shape[0]):
        for j in range(ranked_idx.shape[1]):
            ranks[i][ranked_idx[i][j]] = j
    ranks += 1
    gt_ranks = ranks.gather(1, gt[:, None]).squeeze(1).float()
    ndcgs = []
    for i in range(scores.shape[0]):
        k = int((relevance[i] != 0).sum())
        rankings = torch.sort(ranks[i]).indices[:k]
        best = torch.sort(relevance[i], descending=True).indices[:k]
        discounts = torch.log2(torch.arange(k).float() + 2)
        dcg = (relevance[i][rankings].float() / discounts).sum()
        ideal = (relevance[i][best].float() / discounts).sum()
        ndcgs.append((dcg / ideal).item())
    return {
        "r@1": (gt_ranks <= 1).float().mean().item(),
        "r@5": (gt_ranks <= 5).float().mean().item(),
        "r@10": (gt_ranks <= 10).float().mean().item(),
        "mean_rank": gt_ranks.mean().item(),
        "mrr": (1 / gt_ranks).mean().item(),
        "ndcg": sum(ndcgs) / len(ndcgs),
    }


def _data(n: int = 40, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(n, 100, generator=g)
    gt = torch.randint(0, 100, (n,), generator=g)
    scores[torch.arange(n), gt] += 2.0
    relevance = torch.zeros(n, 100)
    for i in range(n):
        relevance[i, torch.randint(0, 100, (8,), generator=g)] = torch.tensor(
            [1, 1, 0.5, 0.5, 0.5, 0.25, 0.75, 1.0]
        )
    relevance[torch.arange(n), gt] = 1.0
    return scores, gt, relevance


def test_matches_starter_code() -> None:
    scores, gt, relevance = _data()
    expected = _starter_code(scores, gt, relevance)
    got = visdial_metrics(scores, gt, relevance)
    for k, v in expected.items():
        assert got[k].item() == pytest.approx(v, rel=1e-6), k


def test_rounds_without_dense_annotation_are_left_out_of_ndcg() -> None:
    scores, gt, relevance = _data(seed=1)
    relevance[10:] = 0
    metric = VisDialMetrics()
    metric.update(scores[:25], gt[:25], relevance[:25], ids=range(25))
    metric.update(scores[20:], gt[20:], relevance[20:], ids=range(20, 40))
    got = metric.compute()
    assert got["ndcg"].item() == pytest.approx(
        _starter_code(scores[:10], gt[:10], relevance[:10])["ndcg"], rel=1e-6
    )
    assert got["mrr"].item() == pytest.approx(
        _starter_code(scores, gt, torch.ones_like(relevance))["mrr"], rel=1e-6
    )
    assert torch.isnan(visdial_metrics(scores, gt)["ndcg"])
