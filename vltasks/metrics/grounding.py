"""GroundingAccuracy (REC Acc@0.5) and MaskIoU (referring segmentation) as torchmetrics Metrics."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from vltasks.metrics.base import SampleMetric
from vltasks.metrics.functional.grounding import (
    MASK_THRESHOLDS,
    box_to_xyxy,
    grounding_correct,
    mask_intersection_union,
    mask_iou_from_counts,
)


class GroundingAccuracy(SampleMetric):
    """Fraction of expressions whose box has IoU (or GIoU, MDETR) >= `iou_threshold` with the GT.

    `update(pred_boxes[N, 4], gt_boxes[N, 4], ids=None)`; boxes in `box_format` ("xyxy", "xywh" as in
    COCO annotations, "cxcywh"), no +1 pixel. To reproduce TransVG, clamp predictions to the image first.
    """

    def __init__(
        self, iou_threshold: float = 0.5, box_format: str = "xyxy", protocol: str = "iou", **kwargs
    ) -> None:
        super().__init__(**kwargs)
        box_to_xyxy(torch.zeros(1, 4), box_format)  # validates the name early
        if protocol not in ("iou", "giou"):
            raise ValueError(f"unknown grounding protocol {protocol!r}; expected 'iou' or 'giou'")
        self.iou_threshold, self.box_format, self.protocol = iou_threshold, box_format, protocol
        self._add_sample_state("hits", torch.long)

    def update(
        self, pred_boxes: Tensor, gt_boxes: Tensor, ids: Sequence[int | str] | Tensor | None = None
    ) -> None:
        hits = grounding_correct(pred_boxes, gt_boxes, self.iou_threshold, self.box_format, self.protocol)
        self._append(ids, hits=hits)

    def compute(self) -> Tensor:
        (hits,) = self._gathered("hits")
        return hits.double().mean() if hits.numel() else torch.tensor(0.0, dtype=torch.float64)


class MaskIoU(SampleMetric):
    """Referring segmentation (LAVT protocol): {"mIoU", "oIoU", "prec@0.5", ..., "prec@0.9"}.

    `update(pred_masks, gt_masks, ids=None)`: binary masks [N, H, W] or lists of [H_i, W_i] masks.
    Only per-sample intersection and union counts are kept, so memory does not grow with mask size.
    """

    def __init__(self, thresholds: Sequence[float] = MASK_THRESHOLDS, **kwargs) -> None:
        super().__init__(**kwargs)
        self.thresholds = tuple(thresholds)
        self._add_sample_state("inter")
        self._add_sample_state("union")

    def update(
        self,
        pred_masks: Tensor | Sequence[Tensor],
        gt_masks: Tensor | Sequence[Tensor],
        ids: Sequence[int | str] | Tensor | None = None,
    ) -> None:
        inter, union = mask_intersection_union(pred_masks, gt_masks)
        self._append(ids, inter=inter, union=union)

    def compute(self) -> dict[str, Tensor]:
        inter, union = self._gathered("inter", "union")
        return mask_iou_from_counts(inter.double(), union.double(), self.thresholds)
