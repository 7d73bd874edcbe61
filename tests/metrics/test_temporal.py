"""Charades-STA recall (2D-TAN rules) and QVHighlights moment retrieval (Moment-DETR's script)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from vltasks.metrics import MomentRetrievalMetrics, TemporalGroundingRecall
from vltasks.metrics.functional import moment_retrieval_metrics, temporal_grounding_recall

REFERENCE = json.loads((Path(__file__).parent / "data" / "moment_detr_reference.json").read_text())


def test_recall_is_strict_and_uses_top_n() -> None:
    gt = torch.tensor([[0.0, 10.0], [0.0, 10.0]])
    pred = torch.tensor([[[0.0, 5.0], [0.0, 9.0]], [[20.0, 30.0], [0.0, 7.0]]])  # IoU .5, .9 | 0, .7
    out = temporal_grounding_recall(pred, gt, ns=(1, 5), ious=(0.5, 0.7))
    assert out["R1@0.5"].item() == 0.0  # IoU exactly 0.5 is not > 0.5
    assert out["R5@0.5"].item() == 1.0
    assert out["R5@0.7"].item() == 0.5  # IoU exactly 0.7 is not > 0.7
    assert out["mIoU"].item() == pytest.approx(0.25)
    metric = TemporalGroundingRecall(ns=(1, 5), ious=(0.5, 0.7))
    metric.update(pred, gt, ids=[0, 1])
    metric.update(pred[:1], gt[:1], ids=[0])
    assert metric.compute()["R5@0.7"].item() == 0.5


def _inputs():
    cases = REFERENCE["cases"]
    spans = [torch.tensor([w[:2] for w in c["pred"]], dtype=torch.float64) for c in cases]
    scores = [torch.tensor([w[2] for w in c["pred"]], dtype=torch.float64) for c in cases]
    gts = [torch.tensor(c["gt"], dtype=torch.float64) for c in cases]
    return spans, scores, gts


def test_moment_retrieval_matches_official_script() -> None:
    out = moment_retrieval_metrics(*_inputs())
    got = {k: float(f"{100 * v.item():.2f}") for k, v in out.items()}
    assert got == REFERENCE["expected"]


def test_moment_retrieval_class_in_batches() -> None:
    spans, scores, gts = _inputs()
    metric = MomentRetrievalMetrics()
    metric.update(spans[:7], scores[:7], gts[:7], ids=range(7))
    metric.update(spans[5:], scores[5:], gts[5:], ids=range(5, len(gts)))
    got = {k: float(f"{100 * v.item():.2f}") for k, v in metric.compute().items()}
    assert got == REFERENCE["expected"]
