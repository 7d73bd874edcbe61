"""Referring expression comprehension: one box per expression, regressed from the fused features.

Boxes are normalized (cx, cy, w, h) through a sigmoid, relative to the original image, so they do
not depend on how the processor resizes; predictions go back to pixels with the image size.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchvision.ops import box_convert, box_iou, generalized_box_iou_loss
from vltasks.heads.base import HEADS, Head, mlp

from vltasks.backbones.base import Features, Fusion
from vltasks.batch import is_labelled
from vltasks.metrics import GroundingAccuracy

POOLINGS = ("tokens", "pooled")


def to_pixels_xyxy(boxes: Tensor, image_size: Tensor) -> Tensor:
    """Normalized cxcywh [N, 4] -> pixel xyxy clamped to the image (as TransVG evaluates)."""
    wh = image_size.to(boxes).repeat(1, 2)
    xyxy = box_convert(boxes, "cxcywh", "xyxy") * wh
    return torch.minimum(xyxy.clamp(min=0), wh)


@HEADS.register("grounding")
class GroundingHead(Head[Fusion]):
    """A box from the fused tokens: each token proposes a box, a softmax over tokens picks and
    blends them (``pooling="tokens"``, the default: the image patch that holds the referent points
    at it); or one MLP on the pooled vector (``pooling="pooled"``, TransVG's [REG] token style).

    Loss: L1 on normalized cxcywh (summed over the 4 coordinates) + generalized IoU, weighted 5 and 2
    by default (DETR's weights). Metric: Acc@0.5 (IoU >= 0.5 on pixel xyxy boxes, no +1), one value
    per split the samples come from (``acc@0.5_testA``, ``acc@0.5_testB``: refer's "test" holds
    both and is reported per part in one pass). ``eval_splits`` (from the data: stage -> the split
    names its samples carry) declares those names and picks the monitored one.
    """

    def __init__(
        self,
        hidden_size: int,
        eval_splits: dict[str, str | list[str]] | None = None,
        pooling: str = "tokens",
        l1_weight: float = 5.0,
        giou_weight: float = 2.0,
        iou_threshold: float = 0.5,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"grounding head: pooling must be one of {POOLINGS}, got {pooling!r}")
        self.pooling, self.l1_weight, self.giou_weight = pooling, l1_weight, giou_weight
        self.iou_threshold = iou_threshold
        self.eval_splits = {  # checkpoints before 2026-11-28 hold one name per stage
            stage: [names] if isinstance(names, str) else list(names)
            for stage, names in (eval_splits or {}).items()
        }
        self.split_names = sorted({n for names in self.eval_splits.values() for n in names})
        self.at = f"@{iou_threshold:g}"  # metric keys: "acc@0.5_<split>", or "acc@0.5" without names
        val = self.eval_splits.get("val")
        self.monitor = f"acc{self.at}_{val[0]}" if val else f"acc{self.at}"
        self.box = mlp(hidden_size, 2 * hidden_size, 4, dropout)
        self.score = nn.Linear(hidden_size, 1) if pooling == "tokens" else None
        self.reads = frozenset({"tokens"} if pooling == "tokens" else {"pooled"})

    def forward(self, features: Features, batch: dict[str, Any]) -> dict[str, Tensor]:
        if self.score is None:
            return {"boxes": self.box(features.pooled).sigmoid()}
        tokens = features.tokens
        scores = self.score(tokens).squeeze(-1)
        if features.mask is not None:
            scores = scores.masked_fill(features.mask == 0, torch.finfo(scores.dtype).min)
        weights = scores.softmax(dim=-1)
        logits = torch.einsum("bl,bld->bd", weights, self.box(tokens))
        return {"boxes": logits.sigmoid(), "weights": weights}

    def loss(self, outputs: dict[str, Tensor], batch: dict[str, Any]) -> Tensor:
        pred, target = outputs["boxes"].float(), batch["targets"].to(outputs["boxes"]).float()
        l1 = (pred - target).abs().sum(-1).mean()
        giou = generalized_box_iou_loss(
            box_convert(pred, "cxcywh", "xyxy"), box_convert(target, "cxcywh", "xyxy"), reduction="mean"
        )
        return self.l1_weight * l1 + self.giou_weight * giou

    def _pixel_boxes(self, outputs: dict[str, Tensor], batch: dict[str, Any]) -> Tensor:
        return to_pixels_xyxy(outputs["boxes"].detach().float(), batch["image_size"])

    def predict(self, outputs: dict[str, Tensor], batch: dict[str, Any]) -> list[dict[str, Any]]:
        """``[{"sent_id", "ref_id", "image_id", "bbox": [x, y, w, h]}]``, bbox in image pixels (COCO)."""
        xywh = box_convert(self._pixel_boxes(outputs, batch), "xyxy", "xywh").cpu().tolist()
        ids = zip(batch["sent_id"].tolist(), batch["ref_id"].tolist(), batch["image_id"].tolist())
        return [
            {"sent_id": int(s), "ref_id": int(r), "image_id": int(i), "bbox": [round(v, 2) for v in box]}
            for (s, r, i), box in zip(ids, xywh)
        ]

    def metrics(self) -> MetricCollection:
        """One accuracy per split name (keys ``acc@0.5_<split>``); without split names, ``acc@0.5``."""
        if not self.split_names:
            accuracy = GroundingAccuracy(iou_threshold=self.iou_threshold, box_format="xyxy")
            return MetricCollection({"acc": accuracy}, postfix=self.at)  # "." is no module name
        by_split = GroundingAccuracy(self.iou_threshold, box_format="xyxy", groups=self.split_names)
        return MetricCollection({"acc": by_split}, prefix=f"acc{self.at}_")

    def update_metrics(
        self, metrics: MetricCollection, outputs: dict[str, Tensor], batch: dict[str, Any]
    ) -> None:
        if not is_labelled(batch):
            return
        gt = box_convert(batch["gt_bbox"].float(), "xywh", "xyxy")
        groups = list(batch["split"]) if self.split_names else None
        metrics["acc"].update(self._pixel_boxes(outputs, batch), gt, ids=batch["sample_id"], groups=groups)

    @torch.no_grad()
    def describe(self, outputs: dict[str, Tensor], batch: dict[str, Any], i: int) -> str:
        """Expression, predicted and GT boxes (pixels, x y w h) and their IoU, for TensorBoard."""
        pred = self._pixel_boxes(
            {"boxes": outputs["boxes"][i : i + 1]}, {"image_size": batch["image_size"][i : i + 1]}
        )
        gt = box_convert(batch["gt_bbox"][i : i + 1].float(), "xywh", "xyxy")
        iou = box_iou(pred.cpu(), gt.cpu())[0, 0].item()

        def fmt(b: Tensor) -> str:
            return " ".join(f"{v:.0f}" for v in box_convert(b, "xyxy", "xywh")[0].tolist())

        return f"{batch['expression'][i]}\npred: {fmt(pred.cpu())}\nGT: {fmt(gt.cpu())}  IoU {iou:.2f}"

    @torch.no_grad()
    def example_boxes(
        self, outputs: dict[str, Tensor], batch: dict[str, Any], i: int
    ) -> list[tuple[tuple[float, ...], str, str]]:
        """The predicted box (red) and the GT box (green) drawn on the TensorBoard panel, as
        fractions of the image (`vltasks.tasks.visualize.example_panel`)."""
        wh = batch["image_size"][i].float().cpu().repeat(2)
        pred = self._pixel_boxes(
            {"boxes": outputs["boxes"][i : i + 1]}, {"image_size": batch["image_size"][i : i + 1]}
        )[0].cpu()
        out = [(tuple((pred / wh).tolist()), "pred", "red")]
        if is_labelled(batch):
            gt = box_convert(batch["gt_bbox"][i : i + 1].float(), "xywh", "xyxy")[0].cpu()
            out.append((tuple((gt / wh).tolist()), "GT", "lime"))
        return out
