"""The metric classes: same values as the functions, ids de-duplicate, 2 gloo processes = 1 process."""

from __future__ import annotations

import math

import pytest
import torch

from tests.ddp import run_distributed
from vltasks.metrics.caption import BLEU, ROUGEL, CaptionMetrics, CIDEr
from vltasks.metrics.functional.caption import bleu_score, cider_d, coco_caption_scores, rouge_l

PREDS = [
    "A man riding a wave on a surfboard.",
    "Two dogs play with a frisbee.",
    "A café with outdoor seating (at night).",
    "The U.S. flag waves in the wind.",
    "A cat doesn't like the bath.",
    "A plate of food: rice, chicken and broccoli.",
    "A red bus on a street.",
    "Kids' bikes lined up by a wall.",
    "A 3-year-old eats ice cream.",
    'A sign that says "STOP".',
    "A train at 10:30 a.m.",
    "A man holds a $5 bill.",
]
REFS = [
    ["A surfer rides a big wave.", "A man on a surfboard riding a wave."],
    ["Dogs playing frisbee in a park.", "Two dogs chase a frisbee.", "A dog jumps for a frisbee."],
    ["An outdoor café at night.", "People sit outside a café."],
    ["A U.S. flag on a pole.", "The American flag waving."],
    ["A cat that doesn't want a bath.", "A wet cat in a tub."],
    ["Rice, chicken and broccoli on a plate.", "A plate of food."],
    ["A red double-decker bus.", "A bus driving down a street."],
    ["Bikes lined up against a wall.", "Children's bikes by a wall."],
    ["A little girl eating ice cream.", "A 3-year-old child with ice cream."],
    ["A red stop sign.", 'A sign reading "STOP" at a corner.'],
    ["A train arriving at a station.", "A train at the platform in the morning."],
    ["A man holding money.", "Someone holds a five dollar bill."],
]


def test_classes_equal_functions() -> None:
    """Updates in two batches give the corpus value of the functions on tokenized captions."""
    scores = coco_caption_scores(PREDS, REFS, tokenizer="ptb")
    from vltasks.metrics.functional.caption import tokenize_captions

    hyp, ref = tokenize_captions(PREDS, REFS, "ptb")
    for metric, value in [
        (BLEU(n=4), bleu_score(hyp, ref)[3]),
        (BLEU(n=2), bleu_score(hyp, ref)[1]),
        (ROUGEL(), rouge_l(hyp, ref)),
        (CIDEr(), cider_d(hyp, ref)),
    ]:
        metric.update(PREDS[:5], REFS[:5])
        metric.update(PREDS[5:], REFS[5:])
        out = metric.compute()
        assert out.dtype == torch.float64 and float(out) == pytest.approx(value, abs=1e-12)
    collection = CaptionMetrics()
    collection.update(PREDS, REFS)
    out = collection.compute()
    assert list(out) == list(scores) and all(
        float(out[k]) == pytest.approx(scores[k], abs=1e-12) for k in out
    )
    for cls in (BLEU, ROUGEL, CIDEr, CaptionMetrics):
        assert cls.higher_is_better and not cls.is_differentiable and not cls.full_state_update


def test_ids_deduplicate_and_reset() -> None:
    metric = CaptionMetrics(tokenizer="none")
    metric.update(PREDS[:8], REFS[:8], ids=[f"img{i}" for i in range(8)])
    metric.update(PREDS[6:], REFS[6:], ids=[f"img{i}" for i in range(6, 12)])  # img6, img7 again
    assert metric.captions() == (PREDS, REFS)
    expected = coco_caption_scores(PREDS, REFS, tokenizer="none")
    assert float(metric.compute()["CIDEr"]) == pytest.approx(expected["CIDEr"], abs=1e-12)
    metric.reset()
    assert metric.captions() == ([], [])
    with pytest.raises(ValueError, match="ids"):
        metric.update(PREDS[:2], REFS[:2], ids=[1])


def test_single_image_cider_is_zero() -> None:
    metric = CIDEr()
    metric.update(PREDS[:1], REFS[:1])
    assert float(metric.compute()) == 0.0


def test_plot() -> None:
    metric = BLEU()
    metric.update(PREDS, REFS)
    fig, _ = metric.plot()
    assert fig is not None


def _ddp_worker(rank: int, world_size: int) -> dict[str, float]:
    """Uneven split (8 + 5 samples); sample 7 is on both ranks, with the same id; then an empty rank."""
    idx = list(range(8)) if rank == 0 else [7, 8, 9, 10, 11]
    metric = CaptionMetrics()
    metric.update([PREDS[i] for i in idx[:3]], [REFS[i] for i in idx[:3]], ids=idx[:3])
    metric.update([PREDS[i] for i in idx[3:]], [REFS[i] for i in idx[3:]], ids=idx[3:])
    bleu = BLEU()
    bleu.update([PREDS[i] for i in idx], [REFS[i] for i in idx], ids=[f"id-{i}" for i in idx])
    out = {k: float(v) for k, v in metric.compute().items()}
    out["BLEU"] = float(bleu.compute())
    only_rank0 = CIDEr(tokenizer="none")  # a process without any caption still joins the gather
    if rank == 0:
        only_rank0.update(PREDS, REFS)
    out["CIDEr rank 0 only"] = float(only_rank0.compute())
    return out


def test_ddp_equals_single_process() -> None:
    single = coco_caption_scores(PREDS, REFS, tokenizer="ptb")
    results = run_distributed(_ddp_worker, 2)
    for out in results:
        for key, value in single.items():
            assert math.isclose(out[key], value, abs_tol=1e-12), key
        assert math.isclose(out["BLEU"], single["Bleu_4"], abs_tol=1e-12)
        expected = coco_caption_scores(PREDS, REFS, tokenizer="none", metrics=("CIDEr",))["CIDEr"]
        assert math.isclose(out["CIDEr rank 0 only"], expected, abs_tol=1e-12)
