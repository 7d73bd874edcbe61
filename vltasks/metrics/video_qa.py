"""NExTQAAccuracy (accuracy per question type and group) and CountMSE (TGIF-QA Count) as Metrics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from vltasks.metrics.base import SampleMetric
from vltasks.metrics.functional.choice import multiple_choice_hits
from vltasks.metrics.functional.video_qa import (
    COUNT_RANGE,
    count_squared_errors,
    nextqa_from_hits,
    nextqa_type_codes,
)
from vltasks.metrics.utilities import mean_or

Ids = Sequence[int | str] | Tensor | None


class NExTQAAccuracy(SampleMetric):
    """NExT-QA multiple choice as ``eval_mc.py`` reports it: {"accuracy", "CW", "CH", "TN" (with TP,
    the script's "Bef&Aft"), "TC", "TP" (alone), "DL", "DC", "DO", "C", "T", "D"}; NaN for a type
    without questions.

    `update(preds [N, 5] scores or chosen indices, targets [N] answer indices, question_types, ids)`.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._add_sample_state("hits", torch.long)
        self._add_sample_state("types", torch.long)

    def update(self, preds: Tensor, targets: Tensor, question_types: Sequence[str], ids: Ids = None) -> None:
        hits, codes = multiple_choice_hits(preds, targets), nextqa_type_codes(question_types)
        self._append(ids, hits=hits, types=codes)

    def compute(self) -> dict[str, Tensor]:
        hits, codes = self._gathered("hits", "types")
        return nextqa_from_hits(hits.bool(), codes.long())


class CountMSE(SampleMetric):
    """TGIF-QA Count: MSE of the regressed counts rounded and clipped to ``low..high`` (1..10, as
    the official code) against the answers. Lower is better.

    `update(preds [N] raw regressions (or integer counts), targets [N] answers, ids=None)`.
    """

    higher_is_better = False
    plot_upper_bound = None

    def __init__(self, low: int = COUNT_RANGE[0], high: int = COUNT_RANGE[1], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if low > high:
            raise ValueError(f"CountMSE: low={low} is above high={high}")
        self.low, self.high = int(low), int(high)
        self._add_sample_state("errors")

    def update(self, preds: Tensor, targets: Tensor, ids: Ids = None) -> None:
        self._append(ids, errors=count_squared_errors(preds, targets, self.low, self.high))

    def compute(self) -> Tensor:
        (errors,) = self._gathered("errors")
        return mean_or(errors)
