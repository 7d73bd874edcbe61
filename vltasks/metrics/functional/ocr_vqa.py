"""Answer-string metrics of OCR-heavy VQA: ANLS (DocVQA / InfoVQA / ST-VQA), SQuAD EM and F1,
ChartQA's relaxed accuracy. Each returns a per-question score so the Metric classes stay exact.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

import torch
from torch import Tensor

from vltasks.metrics.utilities import mean_or

Answers = Sequence[str] | Sequence[Sequence[str]]


def _answer_lists(preds: Sequence[str], answers: Answers) -> list[list[str]]:
    if isinstance(preds, str) or len(preds) != len(answers):
        raise ValueError(
            f"need one prediction per question: {len(preds)} predictions, {len(answers)} answers"
        )
    lists = [[a] if isinstance(a, str) else list(a) for a in answers]
    for i, a in enumerate(lists):
        if not a:
            raise ValueError(f"question {i} has no ground-truth answer")
    return lists


def levenshtein(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def anls_scores(preds: Sequence[str], answers: Answers, threshold: float = 0.5) -> Tensor:
    """Per-question ANLS as the DocVQA / RRC evaluation script computes it.

    Both strings are normalized with `" ".join(s.strip().lower().split())` for the edit distance, but
    the length it is divided by is that of the raw strings (as in the official script); the score is
    1 - min NL over GT answers, set to 0 when below `threshold` (so NL = 0.5 still scores 0.5).
    """
    out = []
    for pred, gts in zip(preds, _answer_lists(preds, answers)):
        det = " ".join(pred.strip().lower().split())
        values = []
        for gt in gts:
            length = max(len(gt.upper()), len(pred.upper()))
            dist = levenshtein(" ".join(gt.strip().lower().split()), det)
            values.append(0.0 if length == 0 else dist / length)
        score = 1 - min(values)
        out.append(0.0 if score < threshold else score)
    return torch.tensor(out, dtype=torch.float64)


def anls(preds: Sequence[str], answers: Answers, threshold: float = 0.5) -> Tensor:
    """Mean ANLS; `answers` holds one GT string or a list of GT strings per question."""
    return mean_or(anls_scores(preds, answers, threshold))


def normalize_squad(text: str) -> str:
    """SQuAD's normalize_answer: lowercase, drop punctuation, drop a/an/the, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


_PUNCT = frozenset(string.punctuation)


def _f1(pred: str, gt: str) -> float:
    p, g = normalize_squad(pred).split(), normalize_squad(gt).split()
    if not p or not g:  # SQuAD 2.0: no-answer matches only no-answer
        return float(p == g)
    same = sum((Counter(p) & Counter(g)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def exact_match_scores(preds: Sequence[str], answers: Answers) -> Tensor:
    lists = _answer_lists(preds, answers)
    hits = [max(float(normalize_squad(p) == normalize_squad(g)) for g in gts) for p, gts in zip(preds, lists)]
    return torch.tensor(hits, dtype=torch.float64)


def token_f1_scores(preds: Sequence[str], answers: Answers) -> Tensor:
    lists = _answer_lists(preds, answers)
    return torch.tensor([max(_f1(p, g) for g in gts) for p, gts in zip(preds, lists)], dtype=torch.float64)


def exact_match(preds: Sequence[str], answers: Answers) -> Tensor:
    """SQuAD exact match (max over GT answers) after SQuAD normalization."""
    return mean_or(exact_match_scores(preds, answers))


def token_f1(preds: Sequence[str], answers: Answers) -> Tensor:
    """SQuAD token-overlap F1 (max over GT answers) after SQuAD normalization."""
    return mean_or(token_f1_scores(preds, answers))


def _to_float(text: str) -> float | None:
    try:
        return float(text.rstrip("%")) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        return None


def relaxed_correct(pred: str, target: str, tolerance: float = 0.05) -> bool:
    """ChartQA (pix2struct's relaxed_correctness): numbers within `tolerance` relative error when
    both parse and the target is non-zero (a trailing % divides by 100), else case-insensitive match."""
    p, t = _to_float(pred), _to_float(target)
    if p is not None and t:
        return abs(p - t) / abs(t) <= tolerance
    return pred.lower() == target.lower()


def relaxed_accuracy_scores(preds: Sequence[str], targets: Answers, tolerance: float = 0.05) -> Tensor:
    lists = _answer_lists(preds, targets)
    hits = [max(float(relaxed_correct(p, t, tolerance)) for t in ts) for p, ts in zip(preds, lists)]
    return torch.tensor(hits, dtype=torch.float64)


def relaxed_accuracy(preds: Sequence[str], targets: Answers, tolerance: float = 0.05) -> Tensor:
    """ChartQA relaxed accuracy (a list of targets per question scores the best one)."""
    return mean_or(relaxed_accuracy_scores(preds, targets, tolerance))
