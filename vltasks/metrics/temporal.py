"""TemporalGroundingRecall (Charades-STA), MomentRetrievalMetrics (QVHighlights) and DiDeMoMoments
(DiDeMo) as Metrics.

All keep per-query values only (best IoU among the top-n; per-query AP and R1 IoU; mean rank and
IoU of the best 3 annotators), so the result under DDP equals the single-process one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from vltasks.metrics.base import SampleMetric
from vltasks.metrics.functional.temporal import (
    BUCKETS,
    MR_THRESHOLDS,
    didemo_metrics_from_scores,
    didemo_query_scores,
    moment_metrics_from_scores,
    query_moment_scores,
    recall_from_best,
    top_n_best_iou,
)

Ids = Sequence[int | str] | Tensor | None


class TemporalGroundingRecall(SampleMetric):
    """{"R{n}@{m}", "mIoU"}: any of the top-n predicted spans has IoU > m (2D-TAN's strict >).

    `update(pred_spans[N, K, 2] sorted by score (after NMS), gt_spans[N, 2], ids=None)`.
    """

    def __init__(self, ns: Sequence[int] = (1, 5), ious: Sequence[float] = (0.3, 0.5, 0.7), **kwargs) -> None:
        super().__init__(**kwargs)
        self.ns, self.ious = tuple(ns), tuple(ious)
        self._add_sample_state("best")

    def update(self, pred_spans: Tensor, gt_spans: Tensor, ids: Ids = None) -> None:
        self._append(ids, best=top_n_best_iou(pred_spans, gt_spans, self.ns))

    def compute(self) -> dict[str, Tensor]:
        (best,) = self._gathered("best")
        return recall_from_best(best.reshape(-1, len(self.ns)).double(), self.ns, self.ious)


class MomentRetrievalMetrics(SampleMetric):
    """Moment-DETR's QVHighlights keys MR-{full,short,middle,long}-{mAP, mAP@0.5, mAP@0.75, R1@0.5,
    R1@0.7}, as fractions (the official script prints 100x, rounded to 2 decimals).

    `update(pred_spans, pred_scores, gt_windows, ids=None)`: per query, predicted windows [K, 2] in
    submission order (the first one is the R1 prediction), their scores [K], GT windows [G, 2].
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._add_sample_state("ap")
        self._add_sample_state("r1")

    def update(
        self,
        pred_spans: Sequence[Tensor] | Tensor,
        pred_scores: Sequence[Tensor] | Tensor,
        gt_windows: Sequence[Tensor],
        ids: Ids = None,
    ) -> None:
        if not (len(pred_spans) == len(pred_scores) == len(gt_windows)):
            raise ValueError("pred_spans, pred_scores and gt_windows need one entry per query")
        pairs = [
            query_moment_scores(torch.as_tensor(p), torch.as_tensor(s), torch.as_tensor(g).reshape(-1, 2))
            for p, s, g in zip(pred_spans, pred_scores, gt_windows)
        ]
        ap = torch.stack([a for a, _ in pairs]).reshape(len(pairs), -1)
        self._append(ids, ap=ap, r1=torch.stack([r for _, r in pairs]))

    def compute(self) -> dict[str, Tensor]:
        ap, r1 = self._gathered("ap", "r1")
        n = len(BUCKETS)
        return moment_metrics_from_scores(
            ap.reshape(-1, n, len(MR_THRESHOLDS)).double(), r1.reshape(-1, n).double()
        )


class DiDeMoMoments(SampleMetric):
    """DiDeMo {"R@1", "R@5", "mIoU"} as LocalizingMoments' `eval_predictions`: per query the mean of
    the 3 best ranks and, separately, of the 3 best top-1 IoUs over the annotators' moments.

    `update(ranked_moments, gt_moments, ids=None)`: per query the (start_seg, end_seg) moments best
    first (all 21, or at least every annotated one) and the annotators' moments (inclusive segment
    indices). `didemo_rank_moments` turns scores over `DIDEMO_MOMENTS` into that ranking.
    """

    def __init__(self, ks: Sequence[int] = (1, 5), best_of: int = 3, **kwargs) -> None:
        super().__init__(**kwargs)
        self.ks, self.best_of = tuple(ks), best_of
        self._add_sample_state("rank")
        self._add_sample_state("iou")

    def update(
        self,
        ranked_moments: Sequence[Sequence[Sequence[int]]] | Tensor,
        gt_moments: Sequence[Sequence[Sequence[int]]] | Tensor,
        ids: Ids = None,
    ) -> None:
        if len(ranked_moments) != len(gt_moments):
            raise ValueError("ranked_moments and gt_moments need one entry per query")
        pairs = [didemo_query_scores(r, g, self.best_of) for r, g in zip(ranked_moments, gt_moments)]
        rank = torch.tensor([r for r, _ in pairs], dtype=torch.float64)
        self._append(ids, rank=rank, iou=torch.tensor([i for _, i in pairs], dtype=torch.float64))

    def compute(self) -> dict[str, Tensor]:
        rank, iou = self._gathered("rank", "iou")
        return didemo_metrics_from_scores(rank, iou, self.ks)
