"""Temporal span prediction: moment retrieval and highlight detection (Moment-DETR on the shared backbone).

The clip's time steps (``encode_video``: frames through the image encoder, or a feature file through
the video adapter's projection; each step's tokens averaged) and the sentence's tokens (the backbone's
text encoder) are projected to one width and fused by a small transformer encoder over their
concatenation, as Moment-DETR fuses its CLIP features. ``num_queries`` learned queries attend to that
through a small decoder; each gives a span (normalized center and width, sigmoid) and a foreground
logit. A linear layer on the encoder's time-step outputs scores each step's saliency (highlights).

Training: per sample, Hungarian matching (`vltasks.objectives.match_sets`) on L1 + generalized
temporal IoU + foreground probability; L1 and gIoU losses on matched queries; cross-entropy of
foreground vs background on every query (background down-weighted, DETR's ``eos_coef``); a margin
ranking loss between every relevant and every other time step (saliency). Temporal IoU and gIoU are
torchvision's box functions on ``[start, 0, end, 1]`` boxes, whose areas are the spans' lengths.

Inference: spans in seconds (x the clip's duration, clipped to it), ranked by foreground
probability, temporal NMS (`torchvision.ops.nms` on the same boxes), at most ``max_spans``.

Why set prediction rather than a start/end classifier (one span per query: QVHighlights has several
relevant windows per query) or a 2D proposal map (2D-TAN scores every (start, end) cell: T^2 cells,
5,625 for a 150 s QVHighlights video at 2 s per step, and spans snapped to a grid): queries give any
number of spans of any length from one pass, at the cost of a matching per sample (scipy, on the CPU;
microseconds for 10 queries) and a slower start (DETR-style heads need more epochs than proposals).

The reader says which benchmark it is (``protocol``): ``charades_sta`` (R{1,5}@{0.3,0.5,0.7}, mIoU),
``qvhighlights`` (MR mAP / R1 and the length buckets, HL mAP / HIT@1) or ``didemo`` (R@1, R@5, mIoU
over its 21 segment moments, best 3 of 4 annotators; predicted spans score a moment by score x IoU).
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchvision.ops import box_iou, generalized_box_iou, nms
from vltasks.heads.base import HEADS, Head, mlp

from vltasks.backbones.base import DualEncoder, Features, Video
from vltasks.batch import is_labelled, visual_input
from vltasks.metrics import (
    DiDeMoMoments,
    HighlightDetectionMetrics,
    MomentRetrievalMetrics,
    TemporalGroundingRecall,
)
from vltasks.metrics.functional.temporal import DIDEMO_MOMENTS, didemo_rank_moments
from vltasks.objectives import match_sets

PROTOCOLS = ("charades_sta", "qvhighlights", "didemo")
MONITORS = {"charades_sta": "R1@0.5", "qvhighlights": "MR-full-R1@0.5", "didemo": "R@1"}
CLIP_SECONDS = 2.0  # QVHighlights' clip length: saliency is scored per 2 s clip


class TextVideo(DualEncoder, Video, Protocol):
    """What the span head calls: the text encoder and clip encoding."""


def span_boxes(spans: Tensor) -> Tensor:
    """[..., 2] (start, end) -> [..., 4] boxes (start, 0, end, 1): box IoU is then temporal IoU."""
    zeros, ones = torch.zeros_like(spans[..., :1]), torch.ones_like(spans[..., :1])
    return torch.cat([spans[..., :1], zeros, spans[..., 1:], ones], dim=-1)


def sine_positions(steps: int, width: int, like: Tensor) -> Tensor:
    """[steps, width] fixed sine/cosine codes of the time steps' normalized positions (DETR's, as
    Moment-DETR adds to its clip features): the span regressor reads where a step is from these."""
    pos = (torch.arange(steps, dtype=torch.float32, device=like.device) + 0.5) / steps
    freq = 10000.0 ** (torch.arange(width // 2, dtype=torch.float32, device=like.device) * 2 / width)
    angle = pos[:, None] * 2 * math.pi / freq * 4
    return torch.cat([angle.sin(), angle.cos()], -1).to(like.dtype)


def cw_to_se(cw: Tensor) -> Tensor:
    """Normalized (center, width) -> (start, end)."""
    return torch.stack([cw[..., 0] - cw[..., 1] / 2, cw[..., 0] + cw[..., 1] / 2], dim=-1)


def se_to_cw(se: Tensor) -> Tensor:
    return torch.stack([(se[..., 0] + se[..., 1]) / 2, se[..., 1] - se[..., 0]], dim=-1)


@HEADS.register("span")
class SpanHead(Head[TextVideo]):
    needs = frozenset({"dual", "video"})
    reads = frozenset({"text_tokens"})  # and the clip's tokens (encode_video)

    def __init__(
        self,
        hidden_size: int,
        protocol: str = "charades_sta",
        width: int = 128,
        layers: int = 2,
        heads: int = 4,
        num_queries: int = 10,
        max_spans: int = 10,
        nms_iou: float = 0.7,
        l1_weight: float = 10.0,
        giou_weight: float = 1.0,
        class_weight: float = 4.0,
        eos_coef: float = 0.1,
        saliency_weight: float = 1.0,
        saliency_margin: float = 0.2,
        dropout: float = 0.1,
        vision_width: int = 128,
        text_width: int = 128,
    ) -> None:
        super().__init__()
        if protocol not in PROTOCOLS:
            raise ValueError(f"span head: protocol must be one of {PROTOCOLS}, got {protocol!r}")
        self.protocol, self.monitor = protocol, MONITORS[protocol]
        self.submission_suffix = ".jsonl" if protocol == "qvhighlights" else ".json"  # the leaderboard's
        self.num_queries, self.max_spans, self.nms_iou = num_queries, max_spans, nms_iou
        self.weights = {
            "l1": l1_weight,
            "giou": giou_weight,
            "class": class_weight,
            "saliency": saliency_weight,
        }
        self.eos_coef, self.margin = eos_coef, saliency_margin
        self.width = width
        self.video_proj, self.text_proj = nn.Linear(vision_width, width), nn.Linear(text_width, width)
        self.modality = nn.Embedding(2, width)
        layer = nn.TransformerEncoderLayer(
            width, heads, 4 * width, dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        dec = nn.TransformerDecoderLayer(width, heads, 4 * width, dropout, batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(dec, layers)
        self.queries = nn.Embedding(num_queries, width)
        self.span = mlp(width, width, 2, 0.0)
        self.cls = nn.Linear(width, 2)  # foreground, background
        self.saliency = nn.Linear(width, 1)

    @classmethod
    def backbone_args(cls, backbone: Any) -> dict[str, Any]:
        return {"vision_width": backbone.vision_width, "text_width": backbone.text_width}

    # -- forward -----------------------------------------------------------------------------------
    def run(self, backbone: TextVideo, batch: dict[str, Any]) -> dict[str, Tensor]:
        video = backbone.encode_video(visual_input(batch), batch.get("frame_mask"))
        steps = video.tokens.mean(2)  # [B, T, Dv]: each time step's tokens averaged
        text = backbone.encode_text(batch["input_ids"], batch["attention_mask"]).tokens
        return self.fuse(steps, video.frame_mask, text, batch["attention_mask"])

    def fuse(self, steps: Tensor, step_mask: Tensor, text: Tensor, text_mask: Tensor) -> dict[str, Tensor]:
        """Encoder over [steps; text], decoder queries over it: spans, foreground logits, saliency."""
        t = steps.shape[1]
        x = torch.cat(
            [
                self.video_proj(steps) + self.modality.weight[0] + sine_positions(t, self.width, steps),
                self.text_proj(text) + self.modality.weight[1],
            ],
            1,
        )
        pad = torch.cat([step_mask, text_mask], 1) == 0
        memory = self.encoder(x, src_key_padding_mask=pad)
        q = self.queries.weight[None].expand(steps.shape[0], -1, -1)
        h = self.decoder(q, memory, memory_key_padding_mask=pad)
        saliency = self.saliency(memory[:, :t]).squeeze(-1).masked_fill(step_mask == 0, float("-inf"))
        return {"spans": self.span(h).sigmoid(), "logits": self.cls(h), "saliency": saliency}

    def forward(self, features: Features, batch: dict[str, Any]) -> dict[str, Tensor]:  # pragma: no cover
        raise RuntimeError(
            "the span head encodes the clip and the text itself: call head.run(backbone, batch)"
        )

    # -- training --------------------------------------------------------------------------------
    def _targets(self, batch: dict[str, Any]) -> list[Tensor]:
        """Per sample, the GT windows as normalized (start, end) in [0, 1]."""
        return [
            (inst.windows.to(batch["duration"].dtype) / batch["duration"][i]).clamp(0, 1)
            for i, inst in enumerate(batch["targets"])
        ]

    def match(self, outputs: dict[str, Tensor], targets: list[Tensor]) -> list[tuple[Tensor, Tensor]]:
        """Hungarian matching per sample on L1 + gIoU + foreground cost (weights as the losses')."""
        with torch.no_grad():
            costs = []
            prob = outputs["logits"].float().softmax(-1)[..., 0]
            for i, gt in enumerate(targets):
                pred = cw_to_se(outputs["spans"][i].float())
                l1 = torch.cdist(se_to_cw(pred), se_to_cw(gt.float()), p=1)
                giou = generalized_box_iou(span_boxes(pred), span_boxes(gt.float()))
                w = self.weights
                costs.append(w["l1"] * l1 - w["giou"] * giou - w["class"] * prob[i][:, None])
        return match_sets(costs)

    def loss(self, outputs: dict[str, Tensor], batch: dict[str, Any]) -> Tensor:
        if not is_labelled(batch):
            raise ValueError("span head: this batch has no windows (a predict-only split?)")
        targets = self._targets(batch)
        matches = self.match(outputs, targets)
        spans, logits = outputs["spans"].float(), outputs["logits"].float()
        labels = torch.ones(logits.shape[:2], dtype=torch.long, device=logits.device)  # 1 = background
        l1, giou, n = spans.new_zeros(()), spans.new_zeros(()), 0
        for i, (rows, cols) in enumerate(matches):
            labels[i, rows] = 0
            pred, gt = spans[i, rows], se_to_cw(targets[i][cols].float())
            l1 = l1 + F.l1_loss(pred, gt, reduction="sum")
            giou = (
                giou
                + (
                    1 - torch.diag(generalized_box_iou(span_boxes(cw_to_se(pred)), span_boxes(cw_to_se(gt))))
                ).sum()
            )
            n += len(rows)
        weight = torch.tensor([1.0, self.eos_coef], device=logits.device)
        cls = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), weight=weight)
        w = self.weights
        total = w["l1"] * l1 / max(n, 1) + w["giou"] * giou / max(n, 1) + w["class"] * cls
        return total + w["saliency"] * self.saliency_loss(outputs["saliency"], batch)

    def saliency_loss(self, scores: Tensor, batch: dict[str, Any]) -> Tensor:
        """Margin ranking: every relevant step above every other valid step by ``margin`` (mean)."""
        target, mask = batch["saliency"], batch.get("frame_mask")
        valid = torch.ones_like(target, dtype=torch.bool) if mask is None else mask.bool()
        losses = []
        for s, y, v in zip(scores.float(), target, valid):
            pos, neg = s[(y > 0) & v], s[(y <= 0) & v]
            if len(pos) and len(neg):
                losses.append(F.relu(self.margin - (pos[:, None] - neg[None, :])).mean())
        return torch.stack(losses).mean() if losses else scores.sum() * 0.0

    # -- predictions -----------------------------------------------------------------------------
    @torch.no_grad()
    def ranked(self, outputs: dict[str, Tensor], batch: dict[str, Any]) -> list[Tensor]:
        """Per sample [K, 3] rows (start s, end s, score): best first, after temporal NMS."""
        out = []
        probs = outputs["logits"].float().softmax(-1)[..., 0]
        for i in range(probs.shape[0]):
            duration = float(batch["duration"][i])
            se = (cw_to_se(outputs["spans"][i].float()) * duration).clamp(0, duration)
            se = torch.stack([se.min(-1).values, se.max(-1).values], -1)
            keep = nms(span_boxes(se), probs[i], self.nms_iou)[: self.max_spans]
            out.append(torch.cat([se[keep], probs[i][keep, None]], -1))
        return out

    def clip_saliency(self, outputs: dict[str, Tensor], batch: dict[str, Any], i: int) -> Tensor:
        """Saliency per 2 s clip of sample i: each clip takes the time step its middle falls in."""
        scores, duration = outputs["saliency"][i].float(), float(batch["duration"][i])
        steps = int(
            (batch["frame_mask"][i] if batch.get("frame_mask") is not None else torch.ones_like(scores)).sum()
        )
        clips = max(int(duration / CLIP_SECONDS), 1)
        centers = (torch.arange(clips, dtype=torch.float64) + 0.5) * CLIP_SECONDS / duration
        return scores[(centers * steps).long().clamp(max=steps - 1)]

    def predict(self, outputs: dict[str, Tensor], batch: dict[str, Any]) -> list[dict[str, Any]]:
        rows = []
        for i, spans in enumerate(self.ranked(outputs, batch)):
            windows = [[round(s, 2), round(e, 2), round(p, 4)] for s, e, p in spans.tolist()]
            if self.protocol == "qvhighlights":  # the leaderboard's jsonl record
                saliency = [round(v, 4) for v in self.clip_saliency(outputs, batch, i).tolist()]
                rows.append(
                    {
                        "qid": batch["qid"][i],
                        "query": batch["query"][i],
                        "vid": batch["vid"][i],
                        "pred_relevant_windows": windows,
                        "pred_saliency_scores": saliency,
                    }
                )
            else:
                rows.append(
                    {
                        "sample_id": batch["sample_id"][i],
                        "vid": batch["vid"][i],
                        "query": batch["query"][i],
                        "pred_relevant_windows": windows,
                    }
                )
        return rows

    # -- metrics ---------------------------------------------------------------------------------
    def metrics(self) -> MetricCollection:
        if self.protocol == "charades_sta":
            return MetricCollection({"recall": TemporalGroundingRecall()})
        if self.protocol == "didemo":
            return MetricCollection({"didemo": DiDeMoMoments()})
        return MetricCollection(
            {"moments": MomentRetrievalMetrics(), "highlights": HighlightDetectionMetrics()}
        )

    def update_metrics(
        self, metrics: MetricCollection, outputs: dict[str, Tensor], batch: dict[str, Any]
    ) -> None:
        if not is_labelled(batch):
            return
        ranked, ids = self.ranked(outputs, batch), batch["sample_id"]
        if self.protocol == "charades_sta":
            k = max(5, self.max_spans)
            padded = torch.stack([_pad_rows(r[:, :2], k) for r in ranked])
            gt = torch.stack([inst.windows[0].float().cpu() for inst in batch["targets"]])
            metrics["recall"].update(padded, gt, ids=ids)
        elif self.protocol == "didemo":
            moments = torch.tensor(DIDEMO_MOMENTS, dtype=torch.float64)
            seconds = torch.stack([moments[:, 0] * 5, (moments[:, 1] + 1) * 5], -1)
            scores = torch.stack(
                [
                    (
                        box_iou(span_boxes(seconds), span_boxes(r[:, :2].double().cpu()))
                        * r[:, 2].double().cpu()
                    ).amax(1)
                    if len(r)
                    else torch.zeros(len(moments), dtype=torch.float64)
                    for r in ranked
                ]
            )
            metrics["didemo"].update(didemo_rank_moments(scores), batch["gt_moments"], ids=ids)
        else:
            metrics["moments"].update(
                [r[:, :2].cpu() for r in ranked],
                [r[:, 2].cpu() for r in ranked],
                [inst.windows.cpu() for inst in batch["targets"]],
                ids=ids,
            )
            preds = [self.clip_saliency(outputs, batch, i).cpu() for i in range(len(ranked))]
            metrics["highlights"].update(preds, batch["gt_saliency"], ids=ids)

    @torch.no_grad()
    def describe(self, outputs: dict[str, Tensor], batch: dict[str, Any], i: int) -> str:
        """The query, the best spans with their scores, and the GT windows (seconds)."""
        spans = self.ranked(outputs, batch)[i][:3].tolist()
        lines = [f"Q: {batch['query'][i]}"] + [f"pred: {s:.1f}-{e:.1f} s ({p:.2f})" for s, e, p in spans]
        if is_labelled(batch):
            gt = batch["targets"][i].windows.tolist()
            lines.append("GT: " + ", ".join(f"{s:.1f}-{e:.1f}" for s, e in gt))
        return "\n".join(lines)


def _pad_rows(rows: Tensor, k: int) -> Tensor:
    """[n, 2] spans -> [k, 2]: the last span repeated (or an empty span) where fewer than k."""
    rows = rows.float().cpu()
    if len(rows) >= k:
        return rows[:k]
    fill = rows[-1:] if len(rows) else torch.zeros(1, 2)
    return torch.cat([rows, fill.expand(k - len(rows), 2)])
