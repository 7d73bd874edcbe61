"""Video QA metrics that are not plain accuracy: NExT-QA's accuracy by question type and group,
and TGIF-QA Count's mean squared error.

- NExT-QA (Xiao et al. 2021, ``eval_mc.py``): accuracy of the chosen candidate over all questions,
  per type, and per group (the type's first letter: Causal, Temporal, Descriptive). The official
  script counts TP (temporal previous) under TN and prints that column as "Bef&Aft"; ``TN`` here
  is that column. ``TP`` alone is reported besides, which the script does not print.
- TGIF-QA Count (Jang et al. 2017, ``count_base.py``): the regressed count is rounded (half to
  even, as ``tf.round``) and clipped to 1..10, then compared with the answer by squared error.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from vltasks.metrics.functional.choice import multiple_choice_hits
from vltasks.metrics.utilities import mean_or

NEXTQA_TYPES = ("CW", "CH", "TN", "TC", "TP", "DL", "DC", "DO")
NEXTQA_GROUPS = ("C", "T", "D")
COUNT_RANGE = (1, 10)


def nextqa_type_codes(question_types: Sequence[str]) -> Tensor:
    """Index of each question's type in `NEXTQA_TYPES` (an unknown type is an error, not a guess)."""
    unknown = sorted({t for t in question_types if t not in NEXTQA_TYPES})
    if unknown or isinstance(question_types, str):
        raise ValueError(f"NExT-QA question types are {NEXTQA_TYPES}; got {unknown or question_types!r}")
    return torch.tensor([NEXTQA_TYPES.index(t) for t in question_types], dtype=torch.long)


def nextqa_from_hits(hits: Tensor, codes: Tensor) -> dict[str, Tensor]:
    """{"accuracy", one key per type (TN counting TP, as eval_mc.py), "C", "T", "D"}; a type or
    group without questions is NaN."""
    hits, codes = hits.reshape(-1), codes.reshape(-1).to(hits.device)
    out = {"accuracy": mean_or(hits)}
    for code, name in enumerate(NEXTQA_TYPES):
        members = [code, NEXTQA_TYPES.index("TP")] if name == "TN" else [code]
        out[name] = mean_or(hits[torch.isin(codes, torch.tensor(members, device=codes.device))], float("nan"))
    for group in NEXTQA_GROUPS:
        members = [c for c, t in enumerate(NEXTQA_TYPES) if t[0] == group]
        out[group] = mean_or(
            hits[torch.isin(codes, torch.tensor(members, device=codes.device))], float("nan")
        )
    return out


def nextqa_accuracy(
    preds: Tensor | Sequence[str], targets: Tensor | Sequence[str], question_types: Sequence[str]
) -> dict[str, Tensor]:
    """NExT-QA multiple choice from scores [N, 5] (or chosen indices) and answer indices, with each
    question's type (the ``type`` column of the csv)."""
    hits = multiple_choice_hits(preds, targets)
    codes = nextqa_type_codes(question_types)
    if codes.numel() != hits.numel():
        raise ValueError(f"got {codes.numel()} question types for {hits.numel()} questions")
    return nextqa_from_hits(hits, codes)


def count_predictions(preds: Tensor, low: int = COUNT_RANGE[0], high: int = COUNT_RANGE[1]) -> Tensor:
    """Regressed counts -> the integer answer TGIF-QA scores: rounded half to even, clipped."""
    return torch.as_tensor(preds).double().reshape(-1).round().clamp(low, high)


def count_squared_errors(
    preds: Tensor, targets: Tensor, low: int = COUNT_RANGE[0], high: int = COUNT_RANGE[1]
) -> Tensor:
    """Per question (rounded, clipped prediction - answer)^2, float64."""
    pred = count_predictions(preds, low, high)
    target = torch.as_tensor(targets).double().reshape(-1).to(pred.device)
    if pred.shape != target.shape:
        raise ValueError(f"got {pred.numel()} predicted counts for {target.numel()} answers")
    return (pred - target) ** 2


def count_mse(
    preds: Tensor, targets: Tensor, low: int = COUNT_RANGE[0], high: int = COUNT_RANGE[1]
) -> Tensor:
    """TGIF-QA Count: mean squared error of the rounded, clipped predictions (lower is better)."""
    return mean_or(count_squared_errors(preds, targets, low, high))
