"""VQA accuracy against the official vqaEval.py (hardcoded outputs) and a naive transcription."""

from __future__ import annotations

import random
import re

import pytest
import torch

from vltasks.metrics import VQAAccuracy
from vltasks.metrics.functional import normalize_vqa_answer, vqa_accuracy, vqa_scores
from vltasks.metrics.functional.vqa import CONTRACTIONS, NUMBER_MAP, PUNCTUATION

# (prediction, 10 GT answers, official per-question accuracy): the expected values were printed by
# GT-Vision-Lab/VQA PythonEvaluationTools/vqaEvaluation/vqaEval.py (commit a013f00, 2021) run once
# through benchmarks/bench_vqa.py's shim; that code is not part of this repository.
OFFICIAL = [
    ("Yes", ["yes"] * 10, 0.0),
    ("yes", ["yes"] * 10, 1.0),
    ("yes ", ["yes"] * 9 + ["yes\n"], 1.0),
    ("Yes", ["yes"] * 9 + ["no"], 1.0),
    ("two", ["2", "2", "two", "1", "3", "4", "5", "6", "7", "8"], 0.9),
    ("2", ["2", "2", "1", "1", "3", "4", "5", "6", "7", "8"], 0.6),
    ("the red car.", ["red car"] * 3 + ["blue car"] * 7, 0.9),
    ("1,000", ["1000"] * 4 + ["100"] * 6, 1.0),
    ("none", ["0"] * 5 + ["1"] * 5, 1.0),
    ("dont know", ["don't know"] * 5 + ["no"] * 5, 1.0),
    ("(left)", ["left"] * 5 + ["right"] * 5, 1.0),
    ("hot-dog", ["hot dog"] * 5 + ["hotdog"] * 5, 1.0),
    ("a/b", ["a b"] * 5 + ["ab"] * 5, 1.0),
    ("yes, it is", ["yes it is"] * 5 + ["yes"] * 5, 1.0),
    ("3.5", ["3.5"] * 5 + ["35"] * 5, 1.0),
    ("x" + "." * 40, ["x"] * 5 + ["x" + "." * 8] * 5, 0.0),  # only 32 periods stripped
    ("Man's", ["man's"] * 5 + ["man"] * 5, 1.0),
    ("Im", ["im"] * 5 + ["I'm"] * 5, 1.0),
    ("an apple", ["apple"] * 2 + ["pear"] * 8, 0.6),
    ("ten", ["10"] * 10, 0.0),
]


def _punct(text: str) -> str:
    out = text
    for p in PUNCTUATION:
        if p + " " in text or " " + p in text or re.search(r"(\d)(,)(\d)", text):
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return re.sub(r"(?!<=\d)(\.)(?!\d)", "", out, count=32)


def _digits(text: str) -> str:
    words = [NUMBER_MAP.get(w, w) for w in text.lower().split()]
    return " ".join(CONTRACTIONS.get(w, w) for w in words if w not in ("a", "an", "the"))


def _naive(pred: str, gts: list[str], protocol: str) -> float:
    """The official per-question loop, transcribed literally (leave-one-out over annotators)."""
    clean = [g.replace("\n", " ").replace("\t", " ").strip() for g in gts]
    res = pred.replace("\n", " ").replace("\t", " ").strip()
    if protocol == "vqav2":
        if len(set(clean)) > 1:
            clean = [_digits(_punct(g)) for g in clean]
            res = _digits(_punct(res))
    else:  # lavis
        clean = [_punct(g) for g in gts] if len(set(gts)) > 1 else list(gts)
        res = _digits(_punct(res))
    accs = [min(1, sum(g == res for j, g in enumerate(clean) if j != i) / 3) for i in range(len(clean))]
    return sum(accs) / len(accs)


def _random_data(n: int, seed: int) -> tuple[list[str], list[list[str]]]:
    rng = random.Random(seed)
    pool = ["yes", "Yes", "no", "2", "two", "the dog", "dog", "Dog.", "hot-dog", "1,000", "1000", "none", "0",
            "dont", "don't", " red\n", "red", "a/b", "x, y", "x y", "(left)", "left"]  # fmt: skip
    preds, answers = [], []
    for _ in range(n):
        main = rng.choice(pool)
        gts = [main if rng.random() < 0.6 else rng.choice(pool) for _ in range(rng.choice([10, 10, 3, 1]))]
        preds.append(rng.choice(pool))
        answers.append(gts)
    return preds, answers


@pytest.mark.parametrize(("pred", "gts", "expected"), OFFICIAL)
def test_matches_official_script(pred: str, gts: list[str], expected: float) -> None:
    assert vqa_scores([pred], [gts]).item() == expected


@pytest.mark.parametrize("protocol", ["vqav2", "lavis"])
def test_matches_naive_transcription(protocol: str) -> None:
    preds, answers = _random_data(400, seed=1)
    expected = torch.tensor([_naive(p, a, protocol) for p, a in zip(preds, answers)], dtype=torch.float64)
    assert torch.equal(vqa_scores(preds, answers, protocol), expected)


def test_protocols_and_leave_one_out() -> None:
    ten_yes = [["yes"] * 10]
    assert vqa_accuracy(["Yes"], ten_yes, "vqav2").item() == 0.0
    assert vqa_accuracy(["Yes"], ten_yes, "lavis").item() == 1.0
    assert vqa_accuracy(["Yes"], ten_yes, "evalai").item() == 1.0
    for matches, expected in [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0)]:
        gts = [["cat"] * matches + ["dog"] * (10 - matches)]
        assert vqa_scores(["cat"], gts).item() == pytest.approx(expected, abs=1e-12)
    # evalai drops "?" and "," before anything else and splits "'s"
    assert normalize_vqa_answer("What's That?", "evalai") == "what 's that"
    assert normalize_vqa_answer("The Two Dogs.") == "2 dogs"
    assert normalize_vqa_answer("x" + "." * 40) == "x" + "." * 8


def test_metric_batches_ids_and_answer_types() -> None:
    preds, answers = _random_data(60, seed=2)
    types = [["yes/no", "number", "other"][i % 3] for i in range(60)]
    metric = VQAAccuracy(by_answer_type=True)
    for s in (slice(0, 25), slice(25, 60), slice(20, 30)):  # 20..29 seen twice, counted once
        metric.update(preds[s], answers[s], ids=list(range(60))[s], answer_types=types[s])
    out = metric.compute()
    scores = vqa_scores(preds, answers)
    assert out["overall"].item() == pytest.approx(scores.mean().item())
    for i, name in enumerate(["yes/no", "number", "other"]):
        assert out[name].item() == pytest.approx(scores[i::3].mean().item())
    with pytest.raises(ValueError, match="answer_types"):
        VQAAccuracy(by_answer_type=True).update(["a"], [["a"]])
    with pytest.raises(ValueError, match="protocol"):
        VQAAccuracy(protocol="nope")
