"""Video QA metrics against hand-computed values: exact-match accuracy with one answer, NExT-QA's
per-type table as eval_mc.py computes it, TGIF-QA Count's MSE of the rounded, clipped count."""

from __future__ import annotations

import pytest
import torch

from vltasks.metrics import CountMSE, NExTQAAccuracy, VQAAccuracy
from vltasks.metrics.functional import count_mse, nextqa_accuracy, vqa_accuracy, vqa_scores


def test_one_answer_is_plain_accuracy_under_exact_and_never_under_the_soft_score() -> None:
    preds, answers = ["dog", " cat\n", "Two", "left"], [["dog"], ["cat"], ["two"], ["right"]]
    assert vqa_scores(preds, answers, "exact").tolist() == [1.0, 1.0, 0.0, 0.0]  # stripped, not lowercased
    assert vqa_accuracy(preds, answers, "exact").item() == 0.5
    # the leave-one-out soft score has nothing left to compare a single answer with: 0 for a hit
    assert vqa_accuracy(preds, answers, "vqav2").item() == 0.0


def test_an_answer_outside_the_vocabulary_counts_wrong_and_types_are_the_datasets() -> None:
    metric = VQAAccuracy(protocol="exact", by_answer_type=True, type_names=("what", "how", "where"))
    metric.update(["dog", "3"], [["dog"], ["three"]], ids=[1, 2], answer_types=["what", "how"])
    metric.update(["dog"], [["dog"]], ids=[1], answer_types=["what"])  # a repeated id counts once
    out = {k: v.item() for k, v in metric.compute().items()}
    assert out["overall"] == 0.5 and out["what"] == 1.0 and out["how"] == 0.0 and "where" not in out
    with pytest.raises(ValueError, match="unknown \\['who'\\]"):
        metric.update(["a"], [["a"]], answer_types=["who"])
    with pytest.raises(ValueError, match="not 'overall'"):
        VQAAccuracy(type_names=("overall", "what"))


def test_activitynet_qas_free_column_is_the_accuracy_over_its_six_free_types() -> None:
    """The paper's table: motion, spatial, temporal, then Free (types 3-8 together), then all."""
    from vltasks.datamodules import READERS

    reader = READERS.get("activitynet_qa")
    types, groups = reader.question_types, reader.question_type_groups
    assert groups == {"free": list(types[3:])}
    rows = [
        ("a", "a", "motion"),
        ("b", "x", "yes/no"),
        ("c", "c", "color"),
        ("d", "d", "number"),
        ("e", "y", "other"),
    ]
    metric = VQAAccuracy(protocol="exact", by_answer_type=True, type_names=types, type_groups=groups)
    metric.update([p for p, _, _ in rows], [[a] for _, a, _ in rows], answer_types=[t for *_, t in rows])
    out = {k: v.item() for k, v in metric.compute().items()}
    assert (
        out["free"] == pytest.approx(2 / 4)
        and out["motion"] == 1.0
        and out["overall"] == pytest.approx(3 / 5)
    )
    with pytest.raises(ValueError, match="type_groups"):
        VQAAccuracy(by_answer_type=True, type_names=("what", "how"), type_groups={"free": ("who",)})
    with pytest.raises(ValueError, match="type_groups"):
        VQAAccuracy(by_answer_type=True, type_names=("what", "how"), type_groups={"what": ("how",)})


def _eval_mc(rows: list[tuple[str, int, int]]) -> dict[str, float]:
    """NExT-QA's eval_mc.py, restated: TP joins TN; groups by the type's first letter."""
    groups: dict[str, list[bool]] = {}
    for qtype, pred, answer in rows:
        qtype = "TN" if qtype == "TP" else qtype
        for key in (qtype, qtype[0], "accuracy"):
            groups.setdefault(key, []).append(pred == answer)
    return {k: sum(v) / len(v) for k, v in groups.items()}


def test_nextqa_table_matches_eval_mc_with_tp_counted_under_tn() -> None:
    rows = [("CW", 0, 0), ("CW", 1, 2), ("CH", 3, 3), ("TN", 4, 1), ("TP", 2, 2), ("TC", 0, 0),
            ("DC", 1, 1), ("DL", 2, 0), ("DO", 4, 4), ("TP", 0, 3)]  # fmt: skip
    types = [t for t, _, _ in rows]
    preds, answers = torch.tensor([p for _, p, _ in rows]), torch.tensor([a for *_, a in rows])
    got = {k: v.item() for k, v in nextqa_accuracy(preds, answers, types).items()}
    want = _eval_mc(rows)
    assert {k: got[k] for k in want} == pytest.approx(want)
    assert got["TN"] == pytest.approx(1 / 3) and got["TP"] == 0.5  # TN is the script's "Bef&Aft"
    metric = NExTQAAccuracy()
    scores = torch.nn.functional.one_hot(preds, 5).float()
    metric.update(scores[:6], answers[:6], types[:6], ids=list(range(6)))
    metric.update(scores[4:], answers[4:], types[4:], ids=list(range(4, 10)))
    assert {k: v.item() for k, v in metric.compute().items()} == pytest.approx(got)
    with pytest.raises(ValueError, match="NExT-QA question types"):
        nextqa_accuracy(preds[:1], answers[:1], ["XX"])


def test_count_mse_rounds_half_to_even_and_clips_to_1_10() -> None:
    preds = torch.tensor([0.2, 2.5, 3.5, 12.0, 4.4, -3.0])
    answers = torch.tensor([2, 3, 4, 10, 6, 1])
    # rounded and clipped: 1, 2, 4, 10, 4, 1 -> errors 1, 1, 0, 0, 4, 0
    assert count_mse(preds, answers).item() == pytest.approx(6 / 6)
    metric = CountMSE()
    metric.update(preds[:3], answers[:3], ids=[0, 1, 2])
    metric.update(preds[2:], answers[2:], ids=[2, 3, 4, 5])
    assert metric.compute().item() == pytest.approx(1.0) and metric.higher_is_better is False
    assert CountMSE(low=0, high=3)(torch.tensor([5.0]), torch.tensor([3])).item() == 0.0
