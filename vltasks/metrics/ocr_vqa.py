"""ANLS, ExactMatch, TokenF1 and RelaxedAccuracy: per-question string scores as Metrics."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from vltasks.metrics.base import SampleMetric
from vltasks.metrics.functional.ocr_vqa import (
    Answers,
    anls_scores,
    exact_match_scores,
    relaxed_accuracy_scores,
    token_f1_scores,
)
from vltasks.metrics.utilities import mean_or


class _MeanScore(SampleMetric):
    """Mean of a per-question score; `update(preds, answers, ids=None)`."""

    def _scores(self, preds: Sequence[str], answers: Answers) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._add_sample_state("scores")

    def update(
        self, preds: Sequence[str], answers: Answers, ids: Sequence[int | str] | Tensor | None = None
    ) -> None:
        self._append(ids, scores=self._scores(preds, answers))

    def compute(self) -> Tensor:
        (scores,) = self._gathered("scores")
        return mean_or(scores)


class ANLS(_MeanScore):
    """Average Normalized Levenshtein Similarity (DocVQA, InfographicVQA, ST-VQA official script)."""

    def __init__(self, threshold: float = 0.5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.threshold = threshold

    def _scores(self, preds: Sequence[str], answers: Answers) -> Tensor:
        return anls_scores(preds, answers, self.threshold)


class ExactMatch(_MeanScore):
    """SQuAD exact match after SQuAD normalization, max over GT answers."""

    def _scores(self, preds: Sequence[str], answers: Answers) -> Tensor:
        return exact_match_scores(preds, answers)


class TokenF1(_MeanScore):
    """SQuAD token-overlap F1 after SQuAD normalization, max over GT answers."""

    def _scores(self, preds: Sequence[str], answers: Answers) -> Tensor:
        return token_f1_scores(preds, answers)


class RelaxedAccuracy(_MeanScore):
    """ChartQA relaxed accuracy: numbers within `tolerance` relative error, else exact match."""

    def __init__(self, tolerance: float = 0.05, **kwargs) -> None:
        super().__init__(**kwargs)
        self.tolerance = tolerance

    def _scores(self, preds: Sequence[str], answers: Answers) -> Tensor:
        return relaxed_accuracy_scores(preds, answers, self.tolerance)
