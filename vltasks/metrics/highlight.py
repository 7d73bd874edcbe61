"""HighlightDetectionMetrics (QVHighlights highlight detection, Moment-DETR's standalone_eval).

Keeps per query the AP (mean over annotators) and HIT@1 at each saliency level, so the result under
DDP equals the single-process one; together with MomentRetrievalMetrics it gives the numbers of
`qvhighlights_eval` on the same queries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from vltasks.metrics.base import SampleMetric
from vltasks.metrics.functional.highlight import (
    HL_MIN_SCORES,
    highlight_metrics_from_scores,
    highlight_query_scores,
)

Ids = Sequence[int | str] | Tensor | None


class HighlightDetectionMetrics(SampleMetric):
    """{"HL-min-{Fair,Good,VeryGood}-{mAP,Hit1}"} as fractions (the script prints 100x, 2 decimals).

    `update(pred_saliency, gt_saliency, ids=None)`: per query one predicted score per 2 s clip [K]
    (video order) and the full-video GT saliency [C, annotators] (`qvhighlights_gt_saliency` builds
    it from a GT record). `min_scores` maps a level name to the minimum annotator score of a positive.
    """

    def __init__(self, min_scores: Mapping[str, int] = HL_MIN_SCORES, **kwargs) -> None:
        super().__init__(**kwargs)
        self.min_scores = dict(min_scores)
        self._add_sample_state("ap")
        self._add_sample_state("hit")

    def update(self, pred_saliency: Sequence[Tensor], gt_saliency: Sequence[Tensor], ids: Ids = None) -> None:
        if len(pred_saliency) != len(gt_saliency):
            raise ValueError("pred_saliency and gt_saliency need one entry per query")
        pairs = [highlight_query_scores(p, g, self.min_scores) for p, g in zip(pred_saliency, gt_saliency)]
        width = len(self.min_scores)
        ap = torch.stack([a for a, _ in pairs]) if pairs else torch.zeros(0, width, dtype=torch.float64)
        hit = torch.stack([h for _, h in pairs]) if pairs else torch.zeros(0, width, dtype=torch.float64)
        self._append(ids, ap=ap, hit=hit)

    def compute(self) -> dict[str, Tensor]:
        ap, hit = self._gathered("ap", "hit")
        width = len(self.min_scores)
        return highlight_metrics_from_scores(ap.reshape(-1, width), hit.reshape(-1, width), self.min_scores)
