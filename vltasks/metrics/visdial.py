"""VisDialMetrics: VisDial v1.0 sparse (R@k, mean rank, MRR) and dense (NDCG) metrics."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from vltasks.metrics.base import SampleMetric
from vltasks.metrics.functional.visdial import (
    gt_ranks,
    ndcg_from_values,
    ndcg_per_question,
    sparse_from_ranks,
)


class VisDialMetrics(SampleMetric):
    """{"r@1", "r@5", "r@10", "mean_rank", "mrr", "ndcg"} (mean_rank: lower is better).

    `update(scores[N, 100], gt_index[N], relevance=None, ids=None)`: `relevance[N, 100]` for rounds
    with dense annotations (an all-zero row means none); NDCG is the mean over annotated rounds.
    With `gt_index` < 0 a round counts for NDCG only (v1.0 test rounds have no sparse GT here).
    """

    higher_is_better = None  # mixed: mean_rank is lower-is-better
    plot_upper_bound = None

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._add_sample_state("ranks", torch.long)
        self._add_sample_state("ndcg")

    def update(
        self,
        scores: Tensor,
        gt_index: Tensor,
        relevance: Tensor | None = None,
        ids: Sequence[int | str] | Tensor | None = None,
    ) -> None:
        scores = scores.detach()
        gt_index = torch.as_tensor(gt_index, device=scores.device).long().reshape(-1)
        ranks = gt_ranks(scores, gt_index.clamp(min=0))
        ranks = torch.where(gt_index >= 0, ranks, torch.zeros_like(ranks))  # 0: no sparse GT
        if relevance is None:
            ndcg = torch.full((scores.shape[0],), float("nan"), dtype=torch.float64, device=scores.device)
        else:
            ndcg = ndcg_per_question(scores, relevance)
        self._append(ids, ranks=ranks, ndcg=ndcg)

    def compute(self) -> dict[str, Tensor]:
        ranks, ndcg = self._gathered("ranks", "ndcg")
        out = sparse_from_ranks(ranks[ranks > 0])
        out["ndcg"] = ndcg_from_values(ndcg.double())
        return out
