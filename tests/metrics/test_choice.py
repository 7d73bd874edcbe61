"""VCR, Visual7W multiple choice and SNLI-VE accuracies against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from vltasks.metrics import EntailmentAccuracy, MultipleChoiceAccuracy, VCRAccuracy
from vltasks.metrics.functional import entailment_accuracy, multiple_choice_accuracy, vcr_accuracy


def test_vcr_q2ar_needs_both() -> None:
    answer_logits = torch.tensor([[9.0, 0, 0, 0], [0, 9.0, 0, 0], [0, 0, 9.0, 0], [0, 0, 0, 9.0]])
    rationale_logits = torch.tensor([[0, 9.0, 0, 0], [0, 9.0, 0, 0], [9.0, 0, 0, 0], [0, 0, 0, 9.0]])
    out = vcr_accuracy(
        answer_logits, torch.tensor([0, 1, 0, 3]), rationale_logits, torch.tensor([1, 0, 0, 3])
    )
    assert {k: v.item() for k, v in out.items()} == {"q2a": 0.75, "qa2r": 0.75, "q2ar": 0.5}
    metric = VCRAccuracy()
    metric.update(answer_logits[:2], [0, 1], rationale_logits[:2], [1, 0], ids=["a", "b"])
    metric.update(answer_logits[1:], [1, 0, 3], rationale_logits[1:], [0, 0, 3], ids=["b", "c", "d"])
    assert {k: v.item() for k, v in metric.compute().items()} == {"q2a": 0.75, "qa2r": 0.75, "q2ar": 0.5}


def test_multiple_choice_by_index_and_by_text() -> None:
    scores = torch.tensor([[0.1, 0.7, 0.1, 0.1], [0.9, 0.0, 0.05, 0.05]])
    assert multiple_choice_accuracy(scores, torch.tensor([1, 2])).item() == 0.5
    assert multiple_choice_accuracy(["A red car.", "two"], ["a red car.", "Three"]).item() == 0.5
    metric = MultipleChoiceAccuracy()
    metric.update(["Yes ", "no"], ["yes", "yes"])
    assert metric.compute().item() == 0.5


def test_entailment_overall_and_per_class() -> None:
    preds = torch.tensor([0, 1, 2, 2, 1, 0])
    target = torch.tensor([0, 1, 2, 1, 1, 2])
    out = entailment_accuracy(preds, target)
    assert out["accuracy"].item() == pytest.approx(4 / 6)
    assert out["contradiction"].item() == 1.0
    assert out["neutral"].item() == pytest.approx(2 / 3)
    assert out["entailment"].item() == 0.5
    metric = EntailmentAccuracy(class_names=("entailment", "neutral", "contradiction"))
    metric.update(torch.nn.functional.one_hot(preds, 3).float(), target)
    assert metric.compute()["entailment"].item() == 1.0
    with pytest.raises(ValueError, match="class indices"):
        metric.update(preds, torch.tensor([0, 1, 2, 3, 0, 0]))
