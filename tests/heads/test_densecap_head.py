"""Dense captioning head: Hungarian matching on the stated costs, set + caption losses that backprop,
top-N + NMS + captions at inference, predictions in original pixels, DenseCap metrics with and
without METEOR, and the TensorBoard panel's boxes."""

from __future__ import annotations

import itertools
import json
import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.ops import box_convert, generalized_box_iou, sigmoid_focal_loss
from vltasks.datamodules.visual_genome import DenseCapCollator
from vltasks.heads import HEADS
from vltasks.heads import densecap as densecap_module
from vltasks.heads.densecap import DenseCapHead, DetectionOnlyMAP, Match

from vltasks.backbones import BlipBackbone
from vltasks.metrics import DenseCapMAP
from vltasks.metrics.functional import densecap as densecap_functional
from vltasks.tasks.visualize import example_panel

TINY = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64}
SMALL_HEAD = {"num_queries": 5, "dim": 32, "layers": 2, "num_heads": 2, "roi_size": 2, "max_length": 6}


@pytest.fixture(scope="module")
def blip(tokenizer) -> BlipBackbone:
    torch.manual_seed(0)
    return BlipBackbone.from_config(TINY, tokenizer)


def _head(blip: BlipBackbone, **kwargs) -> DenseCapHead:
    torch.manual_seed(1)
    return DenseCapHead(blip.hidden_size, **DenseCapHead.backbone_args(blip), **{**SMALL_HEAD, **kwargs})


def _batch(blip: BlipBackbone, tmp_path=None) -> dict:
    """Two images (64x64 and 200x100) with 2 and 1 regions, through the reader's own collate."""
    samples = [
        {
            "image": Image.new("RGB", (64, 64), "red"),
            "boxes": np.array([[4, 4, 20, 20], [30, 10, 60, 40]], dtype=np.float32),
            "phrases": ["a red circle", "blue square on the right"],
            "width": 64,
            "height": 64,
            "image_id": 11,
            "sample_id": "11",
            "image_path": "11.jpg",
        },
        {
            "image": Image.new("RGB", (200, 100), "blue"),
            "boxes": np.array([[50, 25, 150, 75]], dtype=np.float32),
            "phrases": ["a green triangle"],
            "width": 200,
            "height": 100,
            "image_id": 12,
            "sample_id": "12",
            "image_path": "12.jpg",
        },
    ]
    if tmp_path is not None:
        for s in samples:
            s["image_path"] = str(tmp_path / s["image_path"])
            s["image"].save(s["image_path"])
    return DenseCapCollator(blip.processor)(samples)


def _brute_force(cost: torch.Tensor) -> float:
    q, n = cost.shape
    return min(sum(cost[p[j], j].item() for j in range(n)) for p in itertools.permutations(range(q), n))


def test_registered_and_needs_the_decoder():
    assert HEADS.get("densecap") is DenseCapHead and DenseCapHead.needs == frozenset({"decoder"})


def test_matching_picks_the_min_cost_assignment_per_image(blip):
    head = _head(blip, costs={"objectness": 2.0, "l1": 5.0, "giou": 2.0})
    torch.manual_seed(3)
    boxes = torch.rand(2, 5, 4) * 0.5 + 0.25
    logits = torch.randn(2, 5)
    gt = torch.rand(5, 4) * 0.5 + 0.25  # 3 regions of image 0, then 2 of image 1
    match = head._match(boxes, logits, gt, [3, 2])
    xyxy = lambda b: box_convert(b, "cxcywh", "xyxy")  # noqa: E731
    for image, regions in ((0, [0, 1, 2]), (1, [3, 4])):
        mine = match.rows == image
        assert sorted(match.index[mine].tolist()) == regions and len(
            set(match.queries[mine].tolist())
        ) == len(regions)
        b, g = boxes[image], gt[regions]
        cost = (
            -2.0 * logits[image].sigmoid()[:, None]
            + 5.0 * (b[:, None] - g[None]).abs().sum(-1)
            - 2.0 * generalized_box_iou(xyxy(b), xyxy(g))
        )
        chosen = cost[match.queries[mine], match.index[mine] - regions[0]].sum().item()
        assert chosen == pytest.approx(_brute_force(cost), abs=1e-5)
    # the queries sitting on the targets, in another order, are the ones matched
    boxes[0, [4, 0, 2]] = gt[:3]
    match = head._match(boxes[:1], torch.zeros(1, 5), gt[:3], [3])
    assert dict(zip(match.index.tolist(), match.queries.tolist())) == {0: 4, 1: 0, 2: 2}


@pytest.mark.parametrize("objectness", ["focal", "bce"])
def test_set_loss_is_objectness_on_every_query_and_box_losses_on_the_matched(blip, objectness):
    head = _head(blip, objectness_loss=objectness, no_object_weight=0.1, weights={"objectness": 2.0})
    gt = torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.7, 0.6, 0.3, 0.4]])
    boxes = torch.rand(1, 5, 4) * 0.5 + 0.25
    boxes[0, [1, 3]] = gt
    logits = torch.randn(1, 5)
    match = Match(torch.tensor([0, 0]), torch.tensor([1, 3]), torch.tensor([0, 1]))
    loss = head._set_loss(boxes, logits, gt, match)
    target = torch.tensor([[0.0, 1.0, 0.0, 1.0, 0.0]])
    if objectness == "focal":  # summed over every query, per ground-truth box
        expected = sigmoid_focal_loss(logits, target, alpha=0.25, gamma=2.0, reduction="sum") / 2
    else:
        weight = torch.tensor([[0.1, 1.0, 0.1, 1.0, 0.1]])
        expected = (
            F.binary_cross_entropy_with_logits(logits, target, reduction="none") * weight
        ).sum() / weight.sum()
    torch.testing.assert_close(loss, 2.0 * expected)  # the matched boxes are exact: L1 and GIoU are 0
    moved = boxes.clone()
    moved[0, 1, 0] += 0.1
    assert head._set_loss(moved, logits, gt, match) > loss + 5.0 * 0.1 / 2 - 1e-6


def test_reference_points_start_on_a_grid_and_boxes_are_offsets_from_them(blip):
    head = _head(blip, num_queries=4)
    torch.testing.assert_close(
        head.reference.weight.sigmoid(),
        torch.tensor([[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]),
    )
    with torch.no_grad():
        for p in head.box_head.parameters():
            p.zero_()
        boxes, _ = head._predict_boxes(torch.randn(1, 4, 32))
    torch.testing.assert_close(boxes[0, :, :2], head.reference.weight.sigmoid())  # no offset: the reference
    assert _head(blip, num_queries=5).reference.weight.shape == (5, 2)  # a 3x3 grid's first 5 cells


def test_losses_are_finite_and_reach_queries_backbone_and_decoder(blip):
    head = _head(blip).train()
    blip.train().zero_grad()
    batch = _batch(blip)
    out = head.run(blip, batch)
    assert "detections" not in out and len(out["layers"]) == 2  # the auxiliary layer, then the last
    assert out["boxes"].shape == (2, 5, 4) and out["caption_logits"].shape[0] == 3  # one per region
    loss = head.loss(out, batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    for part in (
        head.queries,
        head.reference,
        head.condition,
        head.objectness,
        blip.model.vision_model,
        blip.model.text_decoder,
    ):
        assert sum(p.grad.abs().sum() for p in part.parameters() if p.grad is not None) > 0, part
    no_aux = _head(blip, aux_loss=False).train()
    assert len(no_aux.run(blip, batch)["layers"]) == 1


def test_the_caption_loss_is_teacher_forced_on_the_matched_regions(blip):
    head = _head(blip, weights={"caption": 1.0}, label_smoothing=0.0).train()
    batch = _batch(blip)
    out = head.run(blip, batch)
    set_part = sum(
        head._set_loss(b, lg, out["target_boxes"], m) for (b, lg), m in zip(out["layers"], out["matches"])
    )
    logits, labels = out["caption_logits"], out["caption_labels"]
    nll = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1))
    torch.testing.assert_close(head.loss(out, batch), set_part + nll)
    all_phrases = [p for t in batch["targets"] for p in t.phrases]
    phrases = [all_phrases[i] for i in out["matches"][-1].index.tolist()]
    assert sorted(phrases) == sorted(all_phrases)  # every region is matched (5 queries, at most 2 regions)
    expected = blip.processor.text(phrases)["input_ids"]
    assert torch.equal(labels.masked_fill(labels == -100, blip.pad_token_id), expected)


def test_inference_takes_the_top_n_applies_nms_and_captions_each_box(blip):
    head = _head(blip, max_detections=4, nms_iou=0.5).eval()
    batch = _batch(blip)
    image = blip.vision_tokens(batch["pixel_values"])
    h = torch.randn(2, 5, 32)
    boxes = torch.tensor([[0.5, 0.5, 0.2, 0.4]] * 5).repeat(2, 1, 1)
    boxes[0, 1] = torch.tensor([0.51, 0.5, 0.2, 0.4])  # a near copy of query 0: suppressed
    boxes[0, 2] = torch.tensor([0.2, 0.2, 0.1, 0.1])
    boxes[0, 3] = torch.tensor([0.8, 0.8, 0.1, 0.1])
    boxes[0, 4] = torch.tensor([0.2, 0.8, 0.1, 0.1])  # apart, but past the top 4
    logits = torch.tensor([[3.0, 2.0, 1.0, -5.0, -6.0], [0.0, -1.0, -2.0, -3.0, -4.0]])
    with torch.no_grad():
        det = head._detect(blip, h, boxes, logits, image, batch["image_size"])
    assert torch.equal(det[0]["scores"], logits[0, [0, 2, 3]].sigmoid())  # 1 suppressed, 4 past the top 4
    assert len(det[1]["captions"]) == 1  # the other image's boxes are all the same box
    # pixels of the original image: a 200x100 image, box centre (100, 50), 40 x 40
    torch.testing.assert_close(det[1]["boxes"], torch.tensor([[80.0, 30.0, 120.0, 70.0]]))
    assert all(isinstance(c, str) for d in det for c in d["captions"])
    kept_all = _head(blip, max_detections=5, nms_iou=1.0)
    with torch.no_grad():
        assert len(kept_all._detect(blip, h, boxes, logits, image, batch["image_size"])[0]["scores"]) == 5


def test_predict_is_json_in_original_pixels_by_decreasing_score(blip):
    head = _head(blip).eval()
    batch = _batch(blip)
    detections = [
        {
            "boxes": torch.tensor([[4.0, 4.0, 20.0, 20.5]]),
            "scores": torch.tensor([0.91234]),
            "captions": ["a red circle"],
        },
        {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "captions": []},
    ]
    rows = head.predict({"detections": detections}, batch)
    assert (
        json.loads(json.dumps(rows))
        == rows
        == [
            {
                "image_id": 11,
                "boxes": [[4.0, 4.0, 16.0, 16.5]],
                "captions": ["a red circle"],
                "scores": [0.9123],
            },
            {"image_id": 12, "boxes": [], "captions": [], "scores": []},
        ]
    )
    with torch.no_grad():
        rows = head.predict(head.run(blip, batch), batch)
    assert [r["image_id"] for r in rows] == [11, 12]
    for r, (w, h) in zip(rows, [(64, 64), (200, 100)]):
        assert r["scores"] == sorted(r["scores"], reverse=True) and len(r["boxes"]) == len(r["captions"])
        assert all(
            0 <= x and 0 <= y and x + bw <= w + 1e-3 and y + bh <= h + 1e-3 for x, y, bw, bh in r["boxes"]
        )


def _perfect(batch: dict) -> list[dict]:
    return [
        {
            "boxes": t.pixel_boxes.clone(),
            "scores": torch.linspace(0.9, 0.5, len(t)),
            "captions": list(t.phrases),
        }
        for t in batch["targets"]
    ]


def test_metrics_give_map_and_det_map_once_per_image(blip, monkeypatch):
    monkeypatch.setattr(densecap_module, "meteor_problem", lambda: None)
    calls = []

    def fake_meteor(preds, refs):
        calls.append(len(preds))
        return [1.0 if p in r else 0.0 for p, r in zip(preds, refs)]

    monkeypatch.setattr(densecap_functional, "default_meteor", lambda: fake_meteor)
    head = _head(blip)
    metrics = head.metrics()
    assert isinstance(metrics["densecap"], DenseCapMAP) and head.monitor == "det_map"
    batch = _batch(blip)
    head.update_metrics(metrics, {"detections": _perfect(batch)}, batch)
    head.update_metrics(
        metrics, {"detections": _perfect(batch)}, batch
    )  # the same images again: counted once
    values = {k: round(v.item(), 6) for k, v in metrics.compute().items()}
    assert values == {"map": 1.0, "det_map": 1.0} and calls == [3, 3]
    wrong = _perfect(batch)
    wrong[0]["captions"] = ["a purple square"] * 2
    metrics = head.metrics()
    head.update_metrics(metrics, {"detections": wrong}, batch)
    values = metrics.compute()
    assert values["det_map"].item() == pytest.approx(1.0) and values["map"].item() < 0.5


def test_without_meteor_only_det_map_is_reported_and_the_log_says_why(blip, monkeypatch, caplog):
    why = "Java was not found ('java' is not on PATH); install a Java runtime"
    monkeypatch.setattr(densecap_module, "meteor_problem", lambda: why)
    monkeypatch.setattr(densecap_module, "_WARNED", set())
    head = _head(blip)
    with caplog.at_level(logging.WARNING):
        metrics = head.metrics()
    assert isinstance(metrics["densecap"], DetectionOnlyMAP)
    assert "reporting det_map only" in caplog.text and why in caplog.text
    batch = _batch(blip)
    head.update_metrics(metrics, {"detections": _perfect(batch)}, batch)
    assert {k: v.item() for k, v in metrics.compute().items()} == {"det_map": pytest.approx(1.0)}
    with pytest.raises(RuntimeError, match="meteor=java, but METEOR cannot run: Java was not found"):
        _head(blip, meteor="java")
    with pytest.raises(ValueError, match="monitor=map needs METEOR.*monitor det_map instead"):
        _head(blip, monitor="map")
    assert _head(blip, meteor="never").meteor_missing.startswith("head_args.meteor=never")


def test_bad_settings_are_refused(blip):
    with pytest.raises(ValueError, match="meteor must be one of"):
        _head(blip, meteor=False)
    with pytest.raises(ValueError, match="decoding must be one of"):
        _head(blip, decoding="sample")
    with pytest.raises(
        ValueError, match=r"weights has no \['box'\]; known: \['caption', 'giou', 'l1', 'objectness'\]"
    ):
        _head(blip, weights={"box": 1.0})
    assert _head(blip, decoding="beam", num_beams=2).gen["num_beams"] == 2
    with pytest.raises(ValueError, match="dim must be a multiple of 4"):
        _head(blip, dim=30, num_heads=1).run(blip, _batch(blip))


def test_vision_width_may_differ_from_the_text_width():
    head = DenseCapHead(32, vision_width=48, **SMALL_HEAD)
    image = torch.randn(2, 17, 48)  # [CLS] + a 4x4 grid
    hs = head._queries(head._memory(image))
    assert len(hs) == 2 and hs[-1].shape == (2, 5, 32)
    memory = head._caption_memory(
        hs[-1][:, 0], torch.tensor([[0.5, 0.5, 0.4, 0.4]] * 2), image, torch.arange(2)
    )
    assert memory.shape == (2, 1 + 2 * 2, 48)


def test_describe_and_the_panel_draw_the_boxes(blip, tmp_path):
    head = _head(blip).eval()
    batch = _batch(blip, tmp_path)
    out = {"detections": _perfect(batch)}
    text = head.describe(out, batch, 0)
    assert text.splitlines() == [
        "1. a red circle (0.90)",
        "2. blue square on the right (0.50)",
        "GT: a red circle",
        "GT: blue square on the right",
    ]
    boxes = head.example_boxes(out, batch, 1)
    assert boxes[0][1:] == ("", "lime") and boxes[-1][1:] == ("1 a green triangle", "red")
    assert boxes[-1][0] == pytest.approx((0.25, 0.25, 0.75, 0.75))
    panel = example_panel(batch["image_path"][1], text, size=100, boxes=boxes[-1:])
    assert panel.shape == (3, 164, 100)
    edge = panel[:, 50, 24:27].permute(1, 0).tolist()  # the box's left edge, x = 0.25 * 99
    assert [255, 0, 0] in edge and example_panel(batch["image_path"][1], text, size=100)[
        :, 50, 25
    ].tolist() != [255, 0, 0]
