"""Referring-expression grounding: box Acc@IoU (OFA/TransVG, or MDETR's GIoU) and mask IoU (LAVT).

Boxes are continuous coordinates (no +1 pixel). Written with torch only: torchvision.ops is not a
dependency of `vltasks.metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from vltasks.metrics.utilities import mean_or

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")
MASK_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def box_to_xyxy(boxes: Tensor, box_format: str = "xyxy") -> Tensor:
    """[..., 4] boxes to (x1, y1, x2, y2); "xywh" is COCO's top-left + size, "cxcywh" DETR's."""
    boxes = torch.as_tensor(boxes).double()
    if boxes.shape[-1] != 4:
        raise ValueError(f"boxes must have 4 coordinates in the last dim, got shape {tuple(boxes.shape)}")
    a, b, c, d = boxes.unbind(-1)
    if box_format == "xyxy":
        return boxes
    if box_format == "xywh":
        return torch.stack([a, b, a + c, b + d], -1)
    if box_format == "cxcywh":
        return torch.stack([a - c / 2, b - d / 2, a + c / 2, b + d / 2], -1)
    raise ValueError(f"unknown box_format {box_format!r}; expected one of {BOX_FORMATS}")


def paired_box_iou(boxes1: Tensor, boxes2: Tensor, generalized: bool = False) -> Tensor:
    """IoU (or GIoU) of boxes1[i] with boxes2[i], both xyxy [N, 4]; an empty union gives IoU 0."""
    area1 = (boxes1[:, 2] - boxes1[:, 0]).clamp(min=0) * (boxes1[:, 3] - boxes1[:, 1]).clamp(min=0)
    area2 = (boxes2[:, 2] - boxes2[:, 0]).clamp(min=0) * (boxes2[:, 3] - boxes2[:, 1]).clamp(min=0)
    lt = torch.maximum(boxes1[:, :2], boxes2[:, :2])
    rb = torch.minimum(boxes1[:, 2:], boxes2[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = area1 + area2 - inter
    iou = torch.where(union > 0, inter / union.clamp(min=1e-300), torch.zeros_like(union))
    if not generalized:
        return iou
    hull = (torch.maximum(boxes1[:, 2:], boxes2[:, 2:]) - torch.minimum(boxes1[:, :2], boxes2[:, :2])).prod(
        -1
    )
    return iou - torch.where(hull > 0, (hull - union) / hull.clamp(min=1e-300), torch.zeros_like(hull))


def grounding_correct(
    pred_boxes: Tensor,
    gt_boxes: Tensor,
    iou_threshold: float = 0.5,
    box_format: str = "xyxy",
    protocol: str = "iou",
) -> Tensor:
    """Per-sample hit (bool [N]): IoU >= threshold ("iou", OFA/TransVG) or GIoU >= threshold ("giou")."""
    if protocol not in ("iou", "giou"):
        raise ValueError(f"unknown grounding protocol {protocol!r}; expected 'iou' or 'giou'")
    pred = box_to_xyxy(pred_boxes, box_format).reshape(-1, 4)
    gt = box_to_xyxy(gt_boxes, box_format).reshape(-1, 4).to(pred.device)
    if pred.shape != gt.shape:
        raise ValueError(f"need one predicted box per GT box: {tuple(pred.shape)} vs {tuple(gt.shape)}")
    return paired_box_iou(pred, gt, generalized=protocol == "giou") >= iou_threshold


def grounding_accuracy(
    pred_boxes: Tensor,
    gt_boxes: Tensor,
    iou_threshold: float = 0.5,
    box_format: str = "xyxy",
    protocol: str = "iou",
) -> Tensor:
    """Acc@threshold: the fraction of expressions whose predicted box overlaps the GT enough."""
    hits = grounding_correct(pred_boxes, gt_boxes, iou_threshold, box_format, protocol)
    return mean_or(hits)


def mask_intersection_union(
    pred_masks: Tensor | Sequence[Tensor], gt_masks: Tensor | Sequence[Tensor]
) -> tuple[Tensor, Tensor]:
    """Per-sample pixel counts (I, U) of binary masks; masks may differ in size between samples."""
    if isinstance(pred_masks, Tensor) and isinstance(gt_masks, Tensor):
        if pred_masks.shape != gt_masks.shape:
            raise ValueError(f"mask shapes differ: {tuple(pred_masks.shape)} vs {tuple(gt_masks.shape)}")
        p, g = pred_masks.bool().flatten(1), gt_masks.bool().flatten(1).to(pred_masks.device)
        return (p & g).sum(1).double(), (p | g).sum(1).double()
    if len(pred_masks) != len(gt_masks):
        raise ValueError(f"got {len(pred_masks)} predicted masks for {len(gt_masks)} GT masks")
    pairs = [mask_intersection_union(p[None], g[None]) for p, g in zip(pred_masks, gt_masks)]
    if not pairs:
        return torch.zeros(0, dtype=torch.float64), torch.zeros(0, dtype=torch.float64)
    return torch.cat([i for i, _ in pairs]), torch.cat([u for _, u in pairs])


def mask_iou_from_counts(
    inter: Tensor, union: Tensor, thresholds: Sequence[float] = MASK_THRESHOLDS
) -> dict[str, Tensor]:
    iou = torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(union))
    nan = torch.tensor(float("nan"), dtype=torch.float64, device=inter.device)
    out = {
        "mIoU": mean_or(iou, float("nan")),
        "oIoU": inter.sum() / union.sum() if float(union.sum()) > 0 else nan,
    }
    for t in thresholds:
        out[f"prec@{t}"] = mean_or(iou >= t, float("nan"))
    return out


def mask_iou(pred_masks: Tensor | Sequence[Tensor], gt_masks: Tensor | Sequence[Tensor]) -> dict[str, Tensor]:
    """LAVT's referring segmentation metrics: mIoU (empty union counts 0), oIoU = sum I / sum U, prec@t."""
    return mask_iou_from_counts(*mask_intersection_union(pred_masks, gt_masks))
