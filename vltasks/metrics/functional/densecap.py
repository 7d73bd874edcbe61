"""Dense captioning mAP exactly as DenseCap's eval/eval_utils.lua computes it (Visual Genome).

Per image: GT boxes overlapping with IoU >= 0.7 are merged greedily (the box with most neighbours
first) into their mean box carrying all their captions; detections, by decreasing score, go to their
best-IoU merged GT; if that GT is already used the detection cannot be a true positive (no
fallback). IoU counts pixels inclusively (+1). Globally, detections sorted by score are true
positives at (IoU t, METEOR m) when unused-at-assignment, IoU >= t and per-sentence METEOR > m; AP is
the mean over 100 recall thresholds (0, 0.01, ..., 0.99, accumulated in floating point as Lua's
`for t=0,1,0.01` does) of the max precision at recall >= r; mAP is the mean of the 5 x 6 APs,
det_map the mean of the 5 detection-only APs (m = -1).

Quirk kept by default (`zero_overlap_marks_last_gt=True`): a detection that overlaps no GT has
best index -1, and Torch7's `used[-1]` is the *last* merged GT, which that detection then marks used.

Boxes: "xyxy" = inclusive pixel corners (DenseCap's internal format); "xcycwh" = DenseCap's model
and data format, converted with x1 = xc - (w - 1) / 2, x2 = xc + (w - 1) / 2.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

Meteor = Callable[[list[str], list[list[str]]], Sequence[float]]
IOU_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)
METEOR_THRESHOLDS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25)


def _recall_thresholds() -> Tensor:
    values, t = [], 0.0
    while t <= 1:  # Lua's numeric for with a float step: 100 values, 1.0 is never reached
        values.append(t)
        t += 0.01
    return torch.tensor(values, dtype=torch.float64)


RECALL_THRESHOLDS = _recall_thresholds()


def to_xyxy(boxes: Tensor, box_format: str = "xyxy") -> Tensor:
    """DenseCap's conversion, in the input dtype (Torch7 ran it in float32)."""
    boxes = torch.as_tensor(boxes).reshape(-1, 4)
    if box_format == "xyxy":
        return boxes
    if box_format != "xcycwh":
        raise ValueError(f"unknown DenseCap box_format {box_format!r}; expected 'xyxy' or 'xcycwh'")
    xc, yc, w, h = boxes.unbind(-1)
    hw, hh = (w - 1) / 2.0, (h - 1) / 2.0
    return torch.stack([xc - hw, yc - hh, xc + hw, yc + hh], -1)


def inclusive_corners(xyxy: Tensor) -> Tensor:
    """Pixel corners whose x2 - x1 is the width (torchvision's) -> DenseCap's inclusive corners, in
    which a box of width w spans x1 .. x1 + w - 1 (its IoU counts pixels, +1)."""
    xyxy = torch.as_tensor(xyxy)
    return xyxy - xyxy.new_tensor([0.0, 0.0, 1.0, 1.0])


def iou_plus_one(a: Tensor, b: Tensor) -> Tensor:
    """[A, B] IoU with inclusive pixel areas; 0 where the boxes do not overlap."""
    a, b = a.double()[:, None, :], b.double()[None, :, :]
    iw = torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0]) + 1
    ih = torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1]) + 1
    area = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1) + (b[..., 2] - b[..., 0] + 1) * (
        b[..., 3] - b[..., 1] + 1
    )
    overlap = (iw > 0) & (ih > 0)
    return torch.where(overlap, iw * ih / (area - iw * ih), torch.zeros_like(iw))


def merge_gt(boxes: Tensor, captions: Sequence[str], thr: float = 0.7) -> tuple[Tensor, list[list[str]]]:
    """box_utils.merge_boxes + pluck_boxes: groups of GT boxes, mean box, all captions of the group."""
    d = iou_plus_one(boxes, boxes)
    d.fill_diagonal_(1.0)
    merged, texts = [], []
    while d.numel():
        good = d >= thr
        counts = good.sum(0)
        top = int(torch.argmax(counts))  # first of the maxima, like Torch7's max
        if int(counts[top]) == 0:
            break
        members = torch.nonzero(good[top]).flatten()
        merged.append(boxes[members].double().mean(0).to(boxes.dtype))
        texts.append([captions[int(i)] for i in members])
        d[members, :] = 0
        d[:, members] = 0
    out = torch.stack(merged) if merged else boxes.new_zeros((0, 4))
    return out, texts


def match_image(
    boxes: Tensor, scores: Tensor, merged: Tensor, zero_overlap_marks_last_gt: bool = True
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One image: detection order (by decreasing score), best IoU, best merged GT (-1: none) and ok
    (the detection was first to claim its GT), the last three in that order."""
    scores = torch.as_tensor(scores).double().reshape(-1)
    order = torch.sort(scores, descending=True, stable=True).indices
    n, n_gt = len(order), merged.shape[0]
    if n_gt == 0:
        none = torch.full((n,), -1, dtype=torch.long)
        return order, torch.zeros(n, dtype=torch.float64), none, torch.zeros(n, dtype=torch.bool)
    best_ov, best = iou_plus_one(boxes[order], merged).max(1)  # first of equal maxima, like `ov > ovmax`
    best = torch.where(best_ov > 0, best, torch.full_like(best, -1))
    target = best
    if zero_overlap_marks_last_gt:
        target = torch.where(best < 0, torch.full_like(best, n_gt - 1), best)
    ok = torch.zeros(n, dtype=torch.bool)
    claims = torch.nonzero(target >= 0).flatten()
    if claims.numel():
        uniq, inverse = torch.unique(target[claims], return_inverse=True)
        first = torch.full((uniq.numel(),), n, dtype=torch.long).scatter_reduce(
            0, inverse, claims, reduce="amin"
        )
        ok[first] = True
    return order, best_ov, best, ok


def densecap_ap(scores: Tensor, ov: Tensor, ok: Tensor, meteor: Tensor, npos: int) -> dict[str, Tensor]:
    """{"map", "det_map"} from all detections of all images (any order) and the merged GT count."""
    order = torch.sort(scores.double(), descending=True, stable=True).indices
    ov, ok, meteor = ov.double()[order], ok.bool()[order], meteor.double()[order]
    n = torch.arange(1, len(order) + 1, dtype=torch.float64)

    def ap(iou_t: float, meteor_t: float) -> Tensor:
        if npos == 0 or len(order) == 0:
            return torch.tensor(0.0, dtype=torch.float64)
        tp = torch.cumsum(((ov >= iou_t) & ok & (meteor > meteor_t)).double(), 0)
        rec, prec = tp / npos, tp / n
        suffix_max = torch.flip(torch.cummax(torch.flip(prec, [0]), 0).values, [0])
        first = torch.searchsorted(rec, RECALL_THRESHOLDS)
        padded = torch.cat([suffix_max, torch.zeros(1, dtype=torch.float64)])
        return padded[first].mean()

    caps = torch.stack([ap(t, m) for t in IOU_THRESHOLDS for m in METEOR_THRESHOLDS])
    dets = torch.stack([ap(t, -1.0) for t in IOU_THRESHOLDS])
    return {"map": caps.mean(), "det_map": dets.mean()}


def default_meteor() -> Meteor:
    """Per-sentence METEOR from the captioning metrics (needs Java and meteor-1.5.jar)."""
    try:
        from vltasks.metrics.functional.caption import meteor_per_sentence
    except ImportError as e:  # pragma: no cover - depends on the captioning package
        raise ImportError("densecap_map needs a `meteor` callable (preds, refs) -> scores, or "
                          "vltasks.metrics.functional.caption.meteor_per_sentence") from e  # fmt: skip
    return meteor_per_sentence


def meteor_problem() -> str | None:
    """Why the official METEOR cannot run here, saying what is missing and how to get it (Java, or
    pycocoevalcap's jar and paraphrase table), or None when it can. Checked without starting the jar."""
    try:
        from vltasks.metrics.functional.caption._java import (
            JavaUnavailableError,
            find_java,
            pycocoevalcap_file,
        )
    except ImportError as e:  # pragma: no cover - depends on the captioning package
        return f"the captioning metrics package is not importable ({e})"
    try:
        pycocoevalcap_file("meteor", "meteor-1.5.jar")
        pycocoevalcap_file("meteor", "data", "paraphrase-en.gz")
        find_java("java", "DenseCap mAP's METEOR")
    except JavaUnavailableError as e:
        return str(e)
    return None


def image_records(
    predictions: Sequence[dict],
    ground_truth: Sequence[dict],
    meteor: Meteor | None = None,
    box_format: str = "xyxy",
    zero_overlap_marks_last_gt: bool = True,
) -> dict[str, Tensor]:
    """Everything DenseCap computes per image, for a batch of images: per detection score, IoU, ok
    and METEOR (only scored where it can matter: ok and IoU >= 0.3; 0 elsewhere), and per image
    the merged GT count and the number of detections.

    predictions[i]: {"boxes": [B, 4], "scores": [B], "captions": B strings};
    ground_truth[i]: {"boxes": [M, 4], "captions": M strings}.
    """
    if len(predictions) != len(ground_truth):
        raise ValueError(f"got predictions for {len(predictions)} images and GT for {len(ground_truth)}")
    cols: dict[str, list[Tensor]] = {"scores": [], "ov": [], "ok": [], "npos": [], "n_det": []}
    candidates, references, where = [], [], []
    offset = 0
    for i, (pred, gt) in enumerate(zip(predictions, ground_truth)):
        boxes, gt_boxes = to_xyxy(pred["boxes"], box_format), to_xyxy(gt["boxes"], box_format)
        if not (len(boxes) == len(pred["scores"]) == len(pred["captions"])) or len(gt_boxes) != len(
            gt["captions"]
        ):
            raise ValueError(f"image {i}: boxes, scores and captions must have the same length")
        merged, texts = merge_gt(gt_boxes, list(gt["captions"]))
        order, ov, best, ok = match_image(boxes, pred["scores"], merged, zero_overlap_marks_last_gt)
        for k in torch.nonzero(ok & (ov >= min(IOU_THRESHOLDS))).flatten().tolist():
            candidates.append(pred["captions"][int(order[k])])
            references.append(texts[int(best[k])])
            where.append(offset + k)
        offset += len(order)
        cols["scores"].append(torch.as_tensor(pred["scores"]).double().reshape(-1)[order])
        cols["ov"].append(ov)
        cols["ok"].append(ok)
        cols["npos"].append(torch.tensor([len(texts)]))
        cols["n_det"].append(torch.tensor([len(order)]))
    out = {k: torch.cat(v) if v else torch.zeros(0) for k, v in cols.items()}
    out["meteor"] = torch.zeros(offset, dtype=torch.float64)
    if candidates:
        values = (meteor or default_meteor())(candidates, references)
        out["meteor"][torch.tensor(where)] = torch.tensor([float(v) for v in values], dtype=torch.float64)
    return out


def densecap_map(
    predictions: Sequence[dict],
    ground_truth: Sequence[dict],
    meteor: Meteor | None = None,
    box_format: str = "xyxy",
    zero_overlap_marks_last_gt: bool = True,
) -> dict[str, Tensor]:
    """DenseCap {"map", "det_map"} over a set of images (see `image_records` for the inputs).

    `meteor(preds, refs) -> scores` scores one candidate against its references per entry; the
    default is `vltasks.metrics.functional.caption.meteor_per_sentence` (Java, meteor-1.5.jar).
    """
    r = image_records(predictions, ground_truth, meteor, box_format, zero_overlap_marks_last_gt)
    return densecap_ap(r["scores"], r["ov"], r["ok"], r["meteor"], int(r["npos"].sum()))
