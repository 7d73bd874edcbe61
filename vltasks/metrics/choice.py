"""VCRAccuracy, MultipleChoiceAccuracy (Visual7W) and EntailmentAccuracy (SNLI-VE) as Metrics."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from vltasks.metrics.base import SampleMetric
from vltasks.metrics.functional.choice import (
    ENTAILMENT_CLASSES,
    _choice,
    entailment_from_labels,
    multiple_choice_hits,
    vcr_from_hits,
    vcr_hits,
)
from vltasks.metrics.utilities import mean_or

Ids = Sequence[int | str] | Tensor | None


class VCRAccuracy(SampleMetric):
    """{"q2a", "qa2r", "q2ar"}: `update(answer_logits[N, 4], answer_labels, rationale_logits[N, 4],
    rationale_labels, ids=None)`; rationale logits must be computed given the GT answer (QA->R)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._add_sample_state("hits", torch.long)

    def update(
        self,
        answer_logits: Tensor,
        answer_labels: Tensor,
        rationale_logits: Tensor,
        rationale_labels: Tensor,
        ids: Ids = None,
    ) -> None:
        hits = vcr_hits(answer_logits, answer_labels, rationale_logits, rationale_labels)
        self._append(ids, hits=hits)

    def compute(self) -> dict[str, Tensor]:
        (hits,) = self._gathered("hits")
        return vcr_from_hits(hits.reshape(-1, 2).bool())


class MultipleChoiceAccuracy(SampleMetric):
    """Accuracy of the chosen candidate: `update(scores[N, C] or chosen texts, labels or GT texts, ids)`."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._add_sample_state("hits", torch.long)

    def update(self, preds: Tensor | Sequence[str], targets: Tensor | Sequence[str], ids: Ids = None) -> None:
        self._append(ids, hits=multiple_choice_hits(preds, targets))

    def compute(self) -> Tensor:
        (hits,) = self._gathered("hits")
        return mean_or(hits)


class EntailmentAccuracy(SampleMetric):
    """SNLI-VE: {"accuracy", <class name>: accuracy within that GT class}; classes in `class_names` order
    (default ALBEF/BLIP's contradiction=0, neutral=1, entailment=2)."""

    def __init__(self, class_names: Sequence[str] = ENTAILMENT_CLASSES, **kwargs) -> None:
        super().__init__(**kwargs)
        self.class_names = tuple(class_names)
        self._add_sample_state("preds", torch.long)
        self._add_sample_state("targets", torch.long)

    def update(self, preds: Tensor, target: Tensor, ids: Ids = None) -> None:
        pred = _choice(preds)
        target = torch.as_tensor(target).long().reshape(-1).to(pred.device)
        if target.numel() and (int(target.min()) < 0 or int(target.max()) >= len(self.class_names)):
            raise ValueError(f"targets must be class indices for {self.class_names}")
        self._append(ids, preds=pred, targets=target)

    def compute(self) -> dict[str, Tensor]:
        preds, targets = self._gathered("preds", "targets")
        return entailment_from_labels(preds.long(), targets.long(), self.class_names)
