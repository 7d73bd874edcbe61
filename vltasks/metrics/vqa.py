"""VQAAccuracy: the official VQAv2 accuracy as a torchmetrics Metric (exact under DDP)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from vltasks.metrics.base import SampleMetric
from vltasks.metrics.functional.vqa import PROTOCOLS, vqa_scores
from vltasks.metrics.utilities import mean_or

ANSWER_TYPES = ("yes/no", "number", "other")
_TYPE_CODE = {name: i for i, name in enumerate(ANSWER_TYPES)}


class VQAAccuracy(SampleMetric):
    """Mean VQA accuracy in [0, 1] (the official script prints 100x, rounded to 2 decimals).

    Args:
        protocol: "vqav2" (official 2021 code, default), "lavis" or "evalai" (TextVQA); see
            `vltasks.metrics.functional.vqa`.
        by_answer_type: if True, `compute()` returns a dict {"overall", "yes/no", "number", "other"}
            (the official perAnswerType breakdown; a type without questions is NaN), which
            MetricCollection and Lightning log as separate scalars. Needs `answer_types` in update.

    `update(preds, answers, ids=None, answer_types=None)`: one predicted string and a list of GT
    answer strings per question; `ids` (question ids) make a question seen twice count once.
    """

    def __init__(self, protocol: str = "vqav2", by_answer_type: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown VQA protocol {protocol!r}; expected one of {PROTOCOLS}")
        self.protocol = protocol
        self.by_answer_type = by_answer_type
        self._add_sample_state("scores")
        self._add_sample_state("types", torch.long)

    def update(
        self,
        preds: Sequence[str],
        answers: Sequence[Sequence[str]],
        ids: Sequence[int | str] | Tensor | None = None,
        answer_types: Sequence[str] | None = None,
    ) -> None:
        scores = vqa_scores(preds, answers, self.protocol)
        if answer_types is None:
            if self.by_answer_type:
                raise ValueError("VQAAccuracy(by_answer_type=True) needs answer_types in update()")
            types = torch.full((len(preds),), -1, dtype=torch.long)
        else:
            unknown = sorted({t for t in answer_types if t not in _TYPE_CODE})
            if unknown or len(answer_types) != len(preds):
                raise ValueError(
                    f"answer_types must be one per question, each one of {ANSWER_TYPES}; "
                    f"got {len(answer_types)} for {len(preds)} questions, unknown {unknown}"
                )
            types = torch.tensor([_TYPE_CODE[t] for t in answer_types], dtype=torch.long)
        self._append(ids, scores=scores, types=types)

    def compute(self) -> Tensor | dict[str, Tensor]:
        scores, types = self._gathered("scores", "types")
        overall = mean_or(scores)
        if not self.by_answer_type:
            return overall
        out = {"overall": overall}
        for name, code in _TYPE_CODE.items():
            out[name] = mean_or(scores[types == code], empty=float("nan"))
        return out
