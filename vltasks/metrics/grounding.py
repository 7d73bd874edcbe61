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
from vltasks.metrics.utilities import mean_or


class GroundingAccuracy(SampleMetric):
    """Fraction of expressions whose box has IoU (or GIoU, MDETR) >= `iou_threshold` with the GT.

    `update(pred_boxes[N, 4], gt_boxes[N, 4], ids=None, groups=None)`; boxes in `box_format` ("xyxy",
    "xywh" as in COCO annotations, "cxcywh"), no +1 pixel. To reproduce TransVG, clamp predictions to
    the image first. With `groups` (names, e.g. RefCOCO's ``("testA", "testB")``) each update names
    every sample's group and `compute` gives ``{group: accuracy}`` for the groups that have samples:
    one pass over ``refer``'s "test" reports testA and testB as the papers do.
    """

    def __init__(
        self,
        iou_threshold: float = 0.5,
        box_format: str = "xyxy",
        protocol: str = "iou",
        groups: Sequence[str] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        box_to_xyxy(torch.zeros(1, 4), box_format)  # validates the name early
        if protocol not in ("iou", "giou"):
            raise ValueError(f"unknown grounding protocol {protocol!r}; expected 'iou' or 'giou'")
        self.iou_threshold, self.box_format, self.protocol = iou_threshold, box_format, protocol
        self.groups = tuple(groups) if groups is not None else None
        self._add_sample_state("hits", torch.long)
        if self.groups is not None:
            self._add_sample_state("group", torch.long)

    def update(
        self,
        pred_boxes: Tensor,
        gt_boxes: Tensor,
        ids: Sequence[int | str] | Tensor | None = None,
        groups: Sequence[str] | None = None,
    ) -> None:
        hits = grounding_correct(pred_boxes, gt_boxes, self.iou_threshold, self.box_format, self.protocol)
        if self.groups is None:
            if groups is not None:
                raise ValueError("GroundingAccuracy: groups given to update, but none to the constructor")
            self._append(ids, hits=hits)
            return
        if groups is None or len(groups) != hits.shape[0]:
            raise ValueError(f"GroundingAccuracy: update needs one group name per sample ({hits.shape[0]})")
        unknown = sorted(set(groups) - set(self.groups))
        if unknown:
            raise ValueError(f"GroundingAccuracy: unknown groups {unknown}; declared {list(self.groups)}")
        index = torch.tensor([self.groups.index(g) for g in groups], dtype=torch.long)
        self._append(ids, hits=hits, group=index)

    def compute(self) -> Tensor | dict[str, Tensor]:
        if self.groups is None:
            (hits,) = self._gathered("hits")
            return mean_or(hits)
        hits, group = self._gathered("hits", "group")
        return {
            name: hits[group == k].double().mean()
            for k, name in enumerate(self.groups)
            if bool((group == k).any())
        }


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
