"""Grounding head: L1 + GIoU loss, pixel-box results JSON, Acc@0.5 keyed by the evaluated split."""

from __future__ import annotations

import json

import pytest
import torch
from torchvision.ops import box_convert, generalized_box_iou_loss
from vltasks.heads import HEADS
from vltasks.heads.grounding import GroundingHead

from vltasks.backbones.base import Features


def _batch(split: str = "testA") -> dict:
    gt_xywh = torch.tensor([[10.0, 20.0, 40.0, 30.0], [0.0, 0.0, 50.0, 100.0]])
    size = torch.tensor([[100.0, 100.0], [200.0, 100.0]])
    xyxy = torch.cat([gt_xywh[:, :2], gt_xywh[:, :2] + gt_xywh[:, 2:]], 1) / size.repeat(1, 2)
    return {
        "targets": box_convert(xyxy, "xyxy", "cxcywh"),
        "gt_bbox": gt_xywh,
        "image_size": size,
        "sent_id": torch.tensor([7, 8]),
        "ref_id": torch.tensor([3, 4]),
        "image_id": torch.tensor([11, 12]),
        "sample_id": ["7", "8"],
        "expression": ["the red circle", "the square on the left"],
        "split": [split, split],
    }


@pytest.mark.parametrize("pooling", ["tokens", "pooled"])
def test_loss_is_l1_plus_giou_and_backpropagates(pooling):
    torch.manual_seed(0)
    head = HEADS.get("grounding")(8, eval_splits={"val": "val"}, pooling=pooling)
    tokens = torch.randn(2, 5, 8, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    feats = Features(tokens=tokens, mask=mask, pooled=tokens[:, 0])
    out = head(feats, _batch())
    boxes, target = out["boxes"], _batch()["targets"]
    assert boxes.shape == (2, 4) and bool(((boxes > 0) & (boxes < 1)).all())
    loss = head.loss(out, _batch())
    giou = generalized_box_iou_loss(
        box_convert(boxes, "cxcywh", "xyxy"), box_convert(target, "cxcywh", "xyxy"), reduction="mean"
    )
    torch.testing.assert_close(loss, 5.0 * (boxes - target).abs().sum(-1).mean() + 2.0 * giou)
    loss.backward()
    assert tokens.grad is not None and head.box[0].weight.grad.abs().sum() > 0
    if pooling == "tokens":  # padded tokens get no weight
        assert out["weights"][1, 3:].abs().max() == 0 and torch.allclose(
            out["weights"].sum(-1), torch.ones(2)
        )
    perfect = {"boxes": target}
    assert head.loss(perfect, _batch()).item() == pytest.approx(0.0, abs=1e-5)


def test_predict_is_pixel_xywh_results_json():
    head = GroundingHead(8)
    batch = _batch()
    preds = head.predict({"boxes": batch["targets"]}, batch)
    assert json.loads(json.dumps(preds)) == [
        {"sent_id": 7, "ref_id": 3, "image_id": 11, "bbox": [10.0, 20.0, 40.0, 30.0]},
        {"sent_id": 8, "ref_id": 4, "image_id": 12, "bbox": [0.0, 0.0, 50.0, 100.0]},
    ]
    outside = torch.tensor([[0.95, 0.5, 0.3, 0.2], [0.5, 0.5, 0.1, 0.1]])  # sticks out on the right
    assert head.predict({"boxes": outside}, batch)[0]["bbox"] == [80.0, 40.0, 20.0, 20.0]  # clamped


def test_metric_is_acc_at_half_keyed_by_split_and_counts_each_sentence_once():
    head = GroundingHead(8, eval_splits={"val": ["val"], "test": ["testA", "testB"]})
    assert head.monitor == "acc@0.5_val"
    batch = _batch("testB")
    good = batch["targets"].clone()
    shifted = good.clone()
    shifted[1, 0] += 0.2  # 50 px wide box moved by 40 px: IoU 1/9
    metrics = head.metrics()
    head.update_metrics(metrics, {"boxes": shifted}, batch)
    head.update_metrics(metrics, {"boxes": shifted}, batch)  # the same sentences again count once
    assert {k: round(v.item(), 6) for k, v in metrics.compute().items()} == {"acc@0.5_testB": 0.5}
    # refer's "test" = testA + testB in one pass: each part keeps its own key
    other = {**batch, "split": ["testA", "testA"], "sample_id": ["9", "10"]}
    head.update_metrics(metrics, {"boxes": good}, other)
    got = {k: round(v.item(), 6) for k, v in metrics.compute().items()}
    assert got == {"acc@0.5_testA": 1.0, "acc@0.5_testB": 0.5}
    with pytest.raises(ValueError, match=r"unknown groups \['testC'\]"):
        head.update_metrics(head.metrics(), {"boxes": good}, {**batch, "split": ["testC", "testA"]})
    # checkpoints written before: one name per stage
    old = GroundingHead(8, eval_splits={"val": "val", "test": "testA"})
    assert old.monitor == "acc@0.5_val" and old.split_names == ["testA", "val"]
    # no split names at all: one plain key
    plain = GroundingHead(8).metrics()
    GroundingHead(8).update_metrics(plain, {"boxes": good}, batch)
    assert list(plain.compute()) == ["acc@0.5"]


def test_describe_gives_expression_and_boxes_as_text():
    head = GroundingHead(8)
    batch = _batch()
    text = head.describe({"boxes": batch["targets"]}, batch, 0)
    assert text == "the red circle\npred: 10 20 40 30\nGT: 10 20 40 30  IoU 1.00"


def test_demo_backbone_starts_with_sincos_patch_positions():
    from vltasks.backbones import build_backbone
    from vltasks.config import load_config, to_plain

    cfg = to_plain(load_config("refcoco_demo").backbone)
    assert cfg["preset_args"]["pos_init"] == "sincos"
    texts = lambda: ["the red circle on the left"] * 4  # noqa: E731
    pos = build_backbone(cfg, texts=texts).model.embeddings.position_embeddings
    assert pos[0, 1:].std() > 0.3 and not torch.equal(pos[0, 1], pos[0, 2])  # HF's default: all zeros
    zeros = build_backbone({**cfg, "preset_args": {}}, texts=texts).model.embeddings.position_embeddings
    assert zeros.abs().max() == 0
