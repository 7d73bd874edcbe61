"""The temporal span head: set matching, losses that reach the backbone, spans in seconds after NMS,
the three benchmarks' metrics, and QVHighlights' submission records."""

from __future__ import annotations

import json
from itertools import permutations

import pytest
import torch
from vltasks.heads import HEADS
from vltasks.heads.span import SpanHead, cw_to_se, se_to_cw

from vltasks.backbones import build_backbone
from vltasks.batch import Instances
from vltasks.metrics.functional.temporal import DIDEMO_MOMENTS

TEXTS = ["the red circle is on the screen", "a blue square appears"] * 3


@pytest.fixture(scope="module")
def clip_backbone():
    torch.manual_seed(0)
    cfg = {
        "preset": "clip_tiny",
        "preset_args": {"hidden_size": 32, "num_layers": 1, "num_heads": 2},
        "vocab_size": 120,
        "video": {"max_frames": 20, "feature_dim": 12},
    }
    return build_backbone(cfg, texts=lambda: TEXTS, needs={"dual", "video"})


def _head(backbone, **kw) -> SpanHead:
    torch.manual_seed(1)
    return SpanHead(
        backbone.hidden_size, **{**SpanHead.backbone_args(backbone), "width": 16, "heads": 2, **kw}
    )


def _batch(backbone, labelled: bool = True) -> dict:
    text = backbone.processor.text(TEXTS[:2])
    batch = {
        **text,
        "video_features": torch.randn(2, 20, 12, generator=torch.Generator().manual_seed(2)),
        "frame_mask": torch.tensor([[1] * 20, [1] * 15 + [0] * 5]),
        "duration": torch.tensor([40.0, 30.0], dtype=torch.float64),
        "saliency": torch.zeros(2, 20),
        "sample_id": ["q1", "q2"],
        "qid": [1, 2],
        "vid": ["v1_0.0_40.0", "v2_0.0_30.0"],
        "query": TEXTS[:2],
    }
    batch["saliency"][0, 4:8] = 3.5
    batch["saliency"][1, 10:12] = 2.0
    if labelled:
        batch["targets"] = [
            Instances(windows=torch.tensor([[8.0, 16.0], [30.0, 34.0]], dtype=torch.float64)),
            Instances(windows=torch.tensor([[20.0, 24.0]], dtype=torch.float64)),
        ]
    return batch


def _cost(head: SpanHead, outputs: dict, target: torch.Tensor, i: int, q: int, g: int) -> float:
    """The matching cost of query q and GT window g, computed directly."""
    from torchvision.ops import generalized_box_iou
    from vltasks.heads.span import span_boxes

    pred = outputs["spans"][i, q : q + 1].detach()
    prob = float(outputs["logits"][i, q].softmax(-1)[0])
    l1 = (pred[0] - se_to_cw(target[g].float())).abs().sum()
    giou = generalized_box_iou(span_boxes(cw_to_se(pred)), span_boxes(target[g : g + 1].float()))[0, 0]
    w = head.weights
    return float(w["l1"] * l1 - w["giou"] * giou - w["class"] * prob)


def test_matching_is_the_min_cost_assignment(clip_backbone):
    head = _head(clip_backbone, num_queries=4)
    outputs = head.run(clip_backbone, _batch(clip_backbone))
    targets = head._targets(_batch(clip_backbone))
    for i, (rows, cols) in enumerate(head.match(outputs, targets)):
        n = len(targets[i])
        assert len(rows) == n
        got = sum(_cost(head, outputs, targets[i], i, int(r), int(c)) for r, c in zip(rows, cols))
        best = min(
            sum(_cost(head, outputs, targets[i], i, p[g], g) for g in range(n))
            for p in permutations(range(4), n)
        )
        assert got == pytest.approx(best, rel=1e-5)


def test_loss_is_finite_and_reaches_the_text_encoder_and_the_video_projection(clip_backbone):
    head = _head(clip_backbone)
    clip_backbone.zero_grad()
    batch = _batch(clip_backbone)
    loss = head.loss(head.run(clip_backbone, batch), batch)
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    assert clip_backbone.video.features.weight.grad.abs().sum() > 0
    assert (
        sum(p.grad.abs().sum() for p in clip_backbone.model.text_model.parameters() if p.grad is not None) > 0
    )
    assert head.saliency.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="no windows"):
        head.loss(head.run(clip_backbone, _batch(clip_backbone, False)), _batch(clip_backbone, False))


def test_saliency_loss_is_zero_once_every_relevant_step_leads_by_the_margin(clip_backbone):
    head = _head(clip_backbone, saliency_margin=0.2)
    batch = _batch(clip_backbone)
    scores = torch.where(batch["saliency"] > 0, 1.0, 0.0)
    assert float(head.saliency_loss(scores, batch)) == 0.0
    assert float(head.saliency_loss(scores * 0.1, batch)) == pytest.approx(0.1)


def test_spans_come_out_in_seconds_ranked_and_without_duplicates(clip_backbone):
    head = _head(clip_backbone, protocol="qvhighlights", num_queries=4, nms_iou=0.7)
    batch = _batch(clip_backbone, labelled=False)
    spans = torch.tensor([[[0.3, 0.2], [0.3, 0.21], [0.8, 0.1], [0.5, 2.0]]] * 2)  # (center, width)
    logits = torch.tensor([[[2.0, 0.0], [1.0, 0.0], [0.5, 0.0], [-1.0, 0.0]]] * 2)
    outputs = {"spans": spans, "logits": logits, "saliency": torch.randn(2, 20)}
    ranked = head.ranked(outputs, batch)
    first = ranked[0]
    assert first[:, 2].tolist() == sorted(first[:, 2].tolist(), reverse=True)
    assert len(first) == 3  # the near copy of the best span is suppressed
    assert first[0, :2].tolist() == pytest.approx([8.0, 16.0])  # 0.3 +- 0.1 of 40 s
    assert first[:, :2].min() >= 0 and first[:, :2].max() <= 40.0  # the too-wide span is clipped
    rows = head.predict(outputs, batch)
    assert json.loads(json.dumps(rows)) == rows
    assert set(rows[0]) == {"qid", "query", "vid", "pred_relevant_windows", "pred_saliency_scores"}
    assert len(rows[0]["pred_saliency_scores"]) == 20 and len(rows[1]["pred_saliency_scores"]) == 15


@pytest.mark.parametrize("protocol", ["charades_sta", "qvhighlights", "didemo"])
def test_each_benchmark_reports_its_own_metrics(clip_backbone, protocol):
    head = _head(clip_backbone, protocol=protocol)
    assert HEADS.get("span") is SpanHead
    batch = _batch(clip_backbone)
    if protocol == "qvhighlights":
        batch["gt_saliency"] = [torch.zeros(20, 3), torch.zeros(15, 3)]
        batch["gt_saliency"][0][4:8] = 4.0
        batch["gt_saliency"][1][10:12] = 3.0
    if protocol == "didemo":
        batch["gt_moments"] = [[[1, 2]] * 4, [[4, 4]] * 4]
    metrics = head.metrics()
    with torch.no_grad():
        head.update_metrics(metrics, head.run(clip_backbone, batch), batch)
    values = metrics.compute()
    assert head.monitor in values, sorted(values)
    # fractions (NaN for a QVHighlights length bucket without queries, as the official script gives)
    assert all(0.0 <= float(v) <= 1.0 or v != v for v in values.values())


def test_didemo_moments_are_ranked_by_the_spans_that_cover_them(clip_backbone):
    head = _head(clip_backbone, protocol="didemo", num_queries=2)
    batch = _batch(clip_backbone)
    batch["duration"] = torch.tensor([30.0, 30.0], dtype=torch.float64)
    batch["gt_moments"] = [[[1, 2]] * 4, [[4, 4]] * 4]
    # query 1 predicts 5-15 s (moment (1, 2)); query 2 predicts 20-25 s (moment (4, 4))
    spans = torch.tensor([[[10 / 30, 10 / 30], [0.9, 0.05]], [[22.5 / 30, 5 / 30], [0.1, 0.05]]])
    logits = torch.tensor([[[3.0, 0.0], [0.0, 0.0]], [[3.0, 0.0], [0.0, 0.0]]])
    metrics = head.metrics()
    head.update_metrics(metrics, {"spans": spans, "logits": logits, "saliency": torch.zeros(2, 20)}, batch)
    values = metrics.compute()
    assert float(values["R@1"]) == 1.0 and float(values["mIoU"]) == pytest.approx(1.0)
    assert (1, 2) in DIDEMO_MOMENTS and (4, 4) in DIDEMO_MOMENTS
