"""VQAAccuracy: the official VQAv2 accuracy as a torchmetrics Metric (exact under DDP)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from vltasks.metrics.base import SampleMetric
from vltasks.metrics.functional.vqa import PROTOCOLS, vqa_scores
from vltasks.metrics.utilities import mean_or

ANSWER_TYPES = ("yes/no", "number", "other")


class VQAAccuracy(SampleMetric):
    """Mean VQA accuracy in [0, 1] (the official script prints 100x, rounded to 2 decimals).

    Args:
        protocol: "vqav2" (official 2021 code, default), "lavis", "evalai" (TextVQA) or "exact"
            (video QA's plain accuracy, one answer per question); see `vltasks.metrics.functional.vqa`.
        by_answer_type: if True, `compute()` returns a dict {"overall", "yes/no", "number", "other"}
            (the official perAnswerType breakdown; a type without questions is left out, as vqaEval.py
            lists only the types it saw), which
            MetricCollection and Lightning log as separate scalars. Needs `answer_types` in update.
        type_names: the types of that breakdown (default VQAv2's three); video QA reports its own
            question types (MSRVTT-QA's what / who / how / when / where, ActivityNet-QA's nine).
        type_groups: more keys of that breakdown, each the accuracy over the questions of several
            types (ActivityNet-QA's ``free``: its six free-question types together, as the paper
            reports them beside motion, spatial and temporal).

    `update(preds, answers, ids=None, answer_types=None)`: one predicted string and a list of GT
    answer strings per question; `ids` (question ids) make a question seen twice count once.
    """

    def __init__(
        self,
        protocol: str = "vqav2",
        by_answer_type: bool = False,
        type_names: Sequence[str] = ANSWER_TYPES,
        type_groups: Mapping[str, Sequence[str]] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown VQA protocol {protocol!r}; expected one of {PROTOCOLS}")
        if "overall" in type_names or len(set(type_names)) != len(type_names):
            raise ValueError(f"type_names must be distinct and not 'overall', got {list(type_names)}")
        self.protocol = protocol
        self.by_answer_type = by_answer_type
        self.type_names = tuple(type_names)
        self._type_code = {name: i for i, name in enumerate(self.type_names)}
        self.type_groups = {g: tuple(members) for g, members in (type_groups or {}).items()}
        for group, members in self.type_groups.items():
            unknown = sorted(set(members) - set(self.type_names))
            if group in ("overall", *self.type_names) or unknown or not members:
                raise ValueError(
                    f"type_groups[{group!r}]: a new name over known types is needed; unknown {unknown}"
                )
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
            unknown = sorted({t for t in answer_types if t not in self._type_code})
            if unknown or len(answer_types) != len(preds):
                raise ValueError(
                    f"answer_types must be one per question, each one of {self.type_names}; "
                    f"got {len(answer_types)} for {len(preds)} questions, unknown {unknown}"
                )
            types = torch.tensor([self._type_code[t] for t in answer_types], dtype=torch.long)
        self._append(ids, scores=scores, types=types)

    def compute(self) -> Tensor | dict[str, Tensor]:
        scores, types = self._gathered("scores", "types")
        overall = mean_or(scores)
        if not self.by_answer_type:
            return overall
        out = {"overall": overall}
        for name, code in self._type_code.items():
            if bool((types == code).any()):  # a type without questions has no accuracy to log
                out[name] = mean_or(scores[types == code])
        for group, members in self.type_groups.items():
            inside = torch.isin(
                types, torch.tensor([self._type_code[m] for m in members], device=types.device)
            )
            if bool(inside.any()):
                out[group] = mean_or(scores[inside])
        return out
