"""Grounding Acc@0.5 (vs torchvision.ops, usable in tests) and LAVT's mask IoU metrics."""

from __future__ import annotations

import pytest
import torch
from torchvision.ops import box_iou, generalized_box_iou

from vltasks.metrics import GroundingAccuracy, MaskIoU
from vltasks.metrics.functional import grounding_accuracy, mask_iou
from vltasks.metrics.functional.grounding import box_to_xyxy, paired_box_iou


def _random_boxes(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 50
    return torch.cat([xy, xy + 1 + torch.rand(n, 2, generator=g) * 40], 1).double()


def test_iou_and_giou_match_torchvision() -> None:
    a, b = _random_boxes(64, 0), _random_boxes(64, 1)
    assert torch.allclose(paired_box_iou(a, b), box_iou(a, b).diag())
    assert torch.allclose(paired_box_iou(a, b, generalized=True), generalized_box_iou(a, b).diag())
    for protocol, fn in (("iou", box_iou), ("giou", generalized_box_iou)):
        expected = (fn(a, b).diag() >= 0.3).double().mean()
        assert grounding_accuracy(a, b, 0.3, protocol=protocol).item() == pytest.approx(expected.item())


def test_threshold_is_inclusive_and_no_plus_one() -> None:
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    assert grounding_accuracy(torch.tensor([[0.0, 0.0, 10.0, 5.0]]), gt).item() == 1.0  # IoU exactly 0.5
    assert grounding_accuracy(torch.tensor([[5.0, 0.0, 15.0, 10.0]]), gt).item() == 0.0  # 1/3
    xywh = torch.tensor([[0.0, 0.0, 10.0, 5.0]])
    assert torch.equal(box_to_xyxy(xywh, "xywh"), torch.tensor([[0.0, 0.0, 10.0, 5.0]]).double())
    cxcywh = torch.tensor([[5.0, 2.5, 10.0, 5.0]])
    assert torch.equal(box_to_xyxy(cxcywh, "cxcywh"), torch.tensor([[0.0, 0.0, 10.0, 5.0]]).double())
    assert grounding_accuracy(xywh, torch.tensor([[0.0, 0.0, 10.0, 10.0]]), box_format="xywh").item() == 1.0


def test_grounding_class_formats() -> None:
    metric = GroundingAccuracy(box_format="xywh")
    metric.update(
        torch.tensor([[0.0, 0.0, 10.0, 5.0], [30.0, 30.0, 2.0, 2.0]]),
        torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 2),
    )
    assert metric.compute().item() == 0.5
    with pytest.raises(ValueError, match="box_format"):
        GroundingAccuracy(box_format="yxyx")


def test_grounding_groups_report_each_part() -> None:
    metric = GroundingAccuracy(groups=("testA", "testB"))
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 3)
    pred = torch.tensor([[0.0, 0.0, 10.0, 10.0], [50.0, 50.0, 60.0, 60.0], [0.0, 0.0, 10.0, 10.0]])
    metric.update(pred, gt, groups=["testA", "testA", "testB"])
    assert {k: v.item() for k, v in metric.compute().items()} == {"testA": 0.5, "testB": 1.0}
    with pytest.raises(ValueError, match="one group name per sample"):
        metric.update(pred, gt)
    with pytest.raises(ValueError, match="unknown groups"):
        metric.update(pred, gt, groups=["testA", "testC", "testB"])
    with pytest.raises(ValueError, match="none to the constructor"):
        GroundingAccuracy().update(pred, gt, groups=["testA"] * 3)


def _naive_masks(preds: list[torch.Tensor], gts: list[torch.Tensor]) -> dict[str, float]:
    """LAVT's evaluate loop: cum I / cum U, per-sample I/U with 0 for an empty union, prec@ with >=."""
    cum_i = cum_u = 0
    ious = []
    for p, g in zip(preds, gts):
        i, u = int((p & g).sum()), int((p | g).sum())
        cum_i, cum_u = cum_i + i, cum_u + u
        ious.append(i / u if u > 0 else 0.0)
    out = {"mIoU": sum(ious) / len(ious), "oIoU": cum_i / cum_u}
    for t in (0.5, 0.6, 0.7, 0.8, 0.9):
        out[f"prec@{t}"] = sum(x >= t for x in ious) / len(ious)
    return out


def test_mask_iou_matches_lavt_loop() -> None:
    g = torch.Generator().manual_seed(4)
    preds = [torch.rand(9, 11, generator=g) > 0.3 for _ in range(20)]
    gts = [p ^ (torch.rand(9, 11, generator=g) > 0.85) for p in preds]
    preds.append(torch.zeros(3, 3, dtype=torch.bool))  # different size, empty union -> IoU 0
    gts.append(torch.zeros(3, 3, dtype=torch.bool))
    expected = _naive_masks(preds, gts)
    got = mask_iou(preds, gts)
    assert got.keys() == expected.keys()
    for k, v in expected.items():
        assert got[k].item() == pytest.approx(v), k
    metric = MaskIoU()
    metric.update(torch.stack(preds[:10]), torch.stack(gts[:10]), ids=range(10))
    metric.update(preds[5:], gts[5:], ids=range(5, 21))
    assert metric.compute()["mIoU"].item() == pytest.approx(expected["mIoU"])
