"""Classification-style VL metrics: VCR (Q->A, QA->R, Q->AR), multiple choice (Visual7W), SNLI-VE."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from vltasks.metrics.utilities import mean_or

# ALBEF / BLIP label order for SNLI-VE; pass your own `class_names` if your labels differ.
ENTAILMENT_CLASSES = ("contradiction", "neutral", "entailment")


def _choice(x: Tensor) -> Tensor:
    """Logits / scores [N, C] -> argmax; already-chosen indices [N] pass through."""
    x = torch.as_tensor(x)
    return x.argmax(-1) if x.ndim == 2 else x.long().reshape(-1)


def vcr_hits(
    answer_logits: Tensor, answer_labels: Tensor, rationale_logits: Tensor, rationale_labels: Tensor
) -> Tensor:
    """Per question [N, 2] bools: answer right (Q->A), rationale right given the GT answer (QA->R)."""
    a_pred, r_pred = _choice(answer_logits), _choice(rationale_logits)
    a = a_pred == torch.as_tensor(answer_labels).long().reshape(-1).to(a_pred.device)
    r = r_pred == torch.as_tensor(rationale_labels).long().reshape(-1).to(r_pred.device)
    if a.shape != r.shape:
        raise ValueError(
            f"answers and rationales disagree on the number of questions: {a.numel()} vs {r.numel()}"
        )
    return torch.stack([a, r], dim=1)


def vcr_from_hits(hits: Tensor) -> dict[str, Tensor]:
    return {"q2a": mean_or(hits[:, 0]), "qa2r": mean_or(hits[:, 1]), "q2ar": mean_or(hits[:, 0] & hits[:, 1])}


def vcr_accuracy(
    answer_logits: Tensor, answer_labels: Tensor, rationale_logits: Tensor, rationale_labels: Tensor
) -> dict[str, Tensor]:
    """VCR: argmax over the 4 answers; over the 4 rationales given the GT answer; Q->AR needs both."""
    return vcr_from_hits(vcr_hits(answer_logits, answer_labels, rationale_logits, rationale_labels))


def multiple_choice_hits(preds: Tensor | Sequence[str], targets: Tensor | Sequence[str]) -> Tensor:
    """Scores [N, C] against label indices [N], or chosen texts against GT texts (stripped, lowercased)."""
    if isinstance(preds, Tensor) or isinstance(targets, Tensor):
        pred = _choice(preds)
        target = torch.as_tensor(targets).long().reshape(-1).to(pred.device)
        if pred.shape != target.shape:
            raise ValueError(f"got {pred.numel()} predictions for {target.numel()} targets")
        return pred == target
    if isinstance(preds, str) or len(preds) != len(targets):
        raise ValueError(f"need one predicted text per target: {len(preds)} vs {len(targets)}")
    return torch.tensor(
        [p.strip().lower() == t.strip().lower() for p, t in zip(preds, targets)], dtype=torch.bool
    )


def multiple_choice_accuracy(preds: Tensor | Sequence[str], targets: Tensor | Sequence[str]) -> Tensor:
    """Visual7W multiple choice: fraction of questions whose chosen candidate is the right one."""
    return mean_or(multiple_choice_hits(preds, targets))


def entailment_from_labels(
    pred: Tensor, target: Tensor, class_names: Sequence[str] = ENTAILMENT_CLASSES
) -> dict[str, Tensor]:
    """Overall accuracy and the accuracy within each GT class (NaN for a class with no samples)."""
    out = {"accuracy": mean_or(pred == target)}
    for c, name in enumerate(class_names):
        out[name] = mean_or(pred[target == c] == c, empty=float("nan"))
    return out


def entailment_accuracy(
    preds: Tensor, target: Tensor, class_names: Sequence[str] = ENTAILMENT_CLASSES
) -> dict[str, Tensor]:
    """SNLI-VE 3-way accuracy from logits [N, 3] or predicted labels [N]: overall + per class."""
    pred = _choice(preds)
    target = torch.as_tensor(target).long().reshape(-1).to(pred.device)
    if pred.shape != target.shape:
        raise ValueError(f"got {pred.numel()} predictions for {target.numel()} targets")
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= len(class_names)):
        raise ValueError(f"targets must be class indices in [0, {len(class_names)}) for {tuple(class_names)}")
    return entailment_from_labels(pred, target, class_names)
