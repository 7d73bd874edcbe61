"""Temporal grounding (Charades-STA, 2D-TAN style) and moment retrieval (QVHighlights, Moment-DETR).

- `temporal_grounding_recall`: R{n}@{m} = any of the top-n predictions has IoU > m (strict),
  continuous IoU; predictions are expected already NMS-ed and sorted by score.
- `moment_retrieval_metrics`: Moment-DETR's standalone_eval: per-query all-point (VOC 2011) AP over
  the first 10 predictions (then sorted by score) at IoU 0.5:0.05:0.95, mean over queries; R1@m with
  >= against the GT window that best overlaps the first prediction; GT-length buckets
  short (0, 10], middle (10, 30], long (30, 150] and full (all windows). Fractions, not percents:
  the official script prints 100x rounded to 2 decimals.
- `didemo_moment_metrics`: DiDeMo (Hendricks et al. 2017, LocalizingMoments `utils/eval.py`): 6
  five-second segments, 21 moments (start <= end, inclusive segment indices, IoU with +1); per
  query the mean of the 3 best (smallest) ranks of the annotators' moments in the ranked list and
  the mean of the 3 best IoUs of the top-1 moment with them, chosen independently; R@k counts a
  query whose mean rank is <= k, so R@1 needs 3 annotators on the top-1 moment.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

MR_THRESHOLDS = tuple(float(f"{0.5 + 0.05 * i:.2f}") for i in range(10))
BUCKETS = {"full": None, "short": (0.0, 10.0), "middle": (10.0, 30.0), "long": (30.0, 150.0)}


def paired_temporal_iou(pred: Tensor, gt: Tensor) -> Tensor:
    """IoU of pred[..., k, :] with gt[..., :] broadcast; 0 where both spans are empty."""
    inter = (torch.minimum(pred[..., 1], gt[..., 1]) - torch.maximum(pred[..., 0], gt[..., 0])).clamp(min=0)
    union = torch.maximum(pred[..., 1], gt[..., 1]) - torch.minimum(pred[..., 0], gt[..., 0])
    return torch.where(union > 0, inter / union.clamp(min=1e-300), torch.zeros_like(union))


def top_n_best_iou(pred_spans: Tensor, gt_spans: Tensor, ns: Sequence[int] = (1, 5)) -> Tensor:
    """[N, len(ns)]: the best IoU among the top-n predictions of each query (top-1 IoU for n = 1)."""
    pred = torch.as_tensor(pred_spans).double()
    gt = torch.as_tensor(gt_spans).double().to(pred.device)
    if pred.ndim == 2:
        pred = pred[:, None]
    if pred.ndim != 3 or pred.shape[-1] != 2 or gt.shape != (pred.shape[0], 2):
        raise ValueError(
            f"need pred_spans [N, K, 2] and gt_spans [N, 2]: {tuple(pred.shape)}, {tuple(gt.shape)}"
        )
    iou = paired_temporal_iou(pred, gt[:, None, :])
    return torch.stack([iou[:, :n].max(1).values for n in ns], 1)


def recall_from_best(best: Tensor, ns: Sequence[int], ious: Sequence[float]) -> dict[str, Tensor]:
    out = {f"R{n}@{m}": (best[:, i] > m).double().mean() for m in ious for i, n in enumerate(ns)}
    if 1 in ns:
        out["mIoU"] = best[:, list(ns).index(1)].double().mean()
    return out


def temporal_grounding_recall(
    pred_spans: Tensor, gt_spans: Tensor, ns: Sequence[int] = (1, 5), ious: Sequence[float] = (0.3, 0.5, 0.7)
) -> dict[str, Tensor]:
    """{"R1@0.3", "R5@0.3", ..., "mIoU" (top-1)} from pred_spans [N, K, 2] and gt_spans [N, 2]."""
    return recall_from_best(top_n_best_iou(pred_spans, gt_spans, ns), ns, ious)


def _cross_iou(pred: list[list[float]], gt: list[list[float]]) -> list[list[float]]:
    rows = []
    for ps, pe in pred:
        row = []
        for gs, ge in gt:
            inter = max(min(pe, ge) - max(ps, gs), 0.0)
            union = (pe - ps) + (ge - gs) - inter
            row.append(inter / union if union > 0 else 0.0)
        rows.append(row)
    return rows


def _query_ap(pred: list[list[float]], gt: list[list[float]], thresholds: Sequence[float]) -> list[float]:
    """Moment-DETR's per-query AP at each threshold; pred rows (start, end) sorted by score."""
    iou = _cross_iou(pred, gt)
    aps = []
    for thr in thresholds:
        locked = [False] * len(gt)
        tp = []
        for row in iou:
            hit = False
            for j in sorted(range(len(gt)), key=lambda j: (-row[j], -j)):  # numpy argsort()[::-1]
                if row[j] < thr:
                    break
                if not locked[j]:
                    hit = locked[j] = True
                    break
            tp.append(hit)
        aps.append(_voc_ap(tp, len(gt)))
    return aps


def _voc_ap(tp: list[bool], n_gt: int) -> float:
    """All-point interpolated AP (VOC 2011) of a ranked list of hits."""
    prec, rec, hits = [0.0], [0.0], 0
    for i, t in enumerate(tp, 1):
        hits += t
        prec.append(hits / i)
        rec.append(hits / n_gt)
    prec.append(0.0)
    rec.append(1.0)
    for i in range(len(prec) - 2, -1, -1):
        prec[i] = max(prec[i], prec[i + 1])
    return sum((rec[i] - rec[i - 1]) * prec[i] for i in range(1, len(rec)) if rec[i] != rec[i - 1])


def query_moment_scores(
    pred: Tensor, scores: Tensor, gt: Tensor, max_pred: int = 10
) -> tuple[Tensor, Tensor]:
    """Per query: AP [len(BUCKETS), 10] and the R1 IoU [len(BUCKETS)], NaN where the query has no GT
    window in that length bucket."""
    pred_l, score_l = pred.double().tolist(), scores.double().reshape(-1).tolist()
    if not pred_l:
        raise ValueError("every query needs at least one predicted window")
    ranked = [w for _, w in sorted(zip(score_l[:max_pred], pred_l[:max_pred]), key=lambda x: -x[0])]
    ap = torch.full((len(BUCKETS), len(MR_THRESHOLDS)), float("nan"), dtype=torch.float64)
    r1 = torch.full((len(BUCKETS),), float("nan"), dtype=torch.float64)
    for b, bounds in enumerate(BUCKETS.values()):
        windows = [w for w in gt.double().tolist() if bounds is None or bounds[0] < w[1] - w[0] <= bounds[1]]
        if not windows:
            continue
        ap[b] = torch.tensor(_query_ap(ranked, windows, MR_THRESHOLDS), dtype=torch.float64)
        ious = _cross_iou([pred_l[0]], windows)[0]
        best = windows[max(range(len(windows)), key=lambda j: (ious[j], -j))]
        r1[b] = paired_temporal_iou(torch.tensor(pred_l[0]), torch.tensor(best, dtype=torch.float64))
    return ap, r1


def moment_threshold_tables(ap: Tensor, r1: Tensor) -> dict[str, tuple[Tensor, Tensor]]:
    """ap [N, buckets, 10], r1 [N, buckets] (NaN = not in bucket) -> per bucket the mAP and the R1 at
    each of MR_THRESHOLDS [10] each, over the queries with a GT window in that bucket (NaN if none,
    as the official script gives)."""
    thresholds = torch.tensor(MR_THRESHOLDS, dtype=torch.float64, device=r1.device)
    tables = {}
    for b, name in enumerate(BUCKETS):
        valid = ~torch.isnan(r1[:, b])
        recall = (r1[valid, b][:, None] >= thresholds[None, :]).double().mean(0)
        tables[name] = (ap[valid, b].double().mean(0), recall)
    return tables


def moment_metrics_from_scores(ap: Tensor, r1: Tensor) -> dict[str, Tensor]:
    """ap [N, buckets, 10], r1 [N, buckets] (NaN = not in bucket) -> Moment-DETR keys (fractions)."""
    out: dict[str, Tensor] = {}
    for name, (per_thr, recall) in moment_threshold_tables(ap, r1).items():
        out[f"MR-{name}-mAP"] = per_thr.mean()
        out[f"MR-{name}-mAP@0.5"] = per_thr[MR_THRESHOLDS.index(0.5)]
        out[f"MR-{name}-mAP@0.75"] = per_thr[MR_THRESHOLDS.index(0.75)]
        for m in (0.5, 0.7):
            out[f"MR-{name}-R1@{m}"] = recall[MR_THRESHOLDS.index(m)]
    return out


def moment_retrieval_metrics(
    pred_spans: Sequence[Tensor] | Tensor,
    pred_scores: Sequence[Tensor] | Tensor,
    gt_windows: Sequence[Tensor],
) -> dict[str, Tensor]:
    """QVHighlights moment retrieval: per query predicted windows [K, 2] (in the order written to the
    submission), their scores [K] and GT windows [G, 2] (seconds)."""
    if not (len(pred_spans) == len(pred_scores) == len(gt_windows)):
        raise ValueError("pred_spans, pred_scores and gt_windows need one entry per query")
    pairs = [query_moment_scores(torch.as_tensor(p), torch.as_tensor(s), torch.as_tensor(g).reshape(-1, 2))
             for p, s, g in zip(pred_spans, pred_scores, gt_windows)]  # fmt: skip
    if not pairs:
        raise ValueError("no queries")
    return moment_metrics_from_scores(torch.stack([a for a, _ in pairs]), torch.stack([r for _, r in pairs]))


DIDEMO_SEGMENTS = 6
# The 21 DiDeMo moments (start, end), inclusive segment indices, in a fixed order.
DIDEMO_MOMENTS: tuple[tuple[int, int], ...] = tuple(
    (s, e) for s in range(DIDEMO_SEGMENTS) for e in range(s, DIDEMO_SEGMENTS)
)


def _moment_pairs(moments: Sequence[Sequence[int]] | Tensor) -> list[tuple[int, int]]:
    rows = moments.tolist() if isinstance(moments, Tensor) else moments
    if any(len(m) != 2 for m in rows):
        raise ValueError(f"moments are (start_segment, end_segment) pairs: {rows}")
    return [(int(m[0]), int(m[1])) for m in rows]


def didemo_iou(pred: Sequence[int], gt: Sequence[int]) -> float:
    """IoU of two moments given by inclusive segment indices (hence the +1)."""
    inter = max(0, min(pred[1], gt[1]) + 1 - max(pred[0], gt[0]))
    return inter / (max(pred[1], gt[1]) + 1 - min(pred[0], gt[0]))


def didemo_query_scores(
    ranked_moments: Sequence[Sequence[int]] | Tensor,
    gt_moments: Sequence[Sequence[int]] | Tensor,
    best_of: int = 3,
) -> tuple[float, float]:
    """(mean rank, mean IoU) of one query: the `best_of` smallest 1-based ranks of the annotators'
    moments in the ranked list, and the `best_of` largest IoUs of the top-1 moment with them.

    Every annotated moment must be in the ranked list (the official script ranks all 21)."""
    ranked, gts = _moment_pairs(ranked_moments), _moment_pairs(gt_moments)
    if not ranked or not gts:
        raise ValueError("every query needs a ranked moment and at least one annotated moment")
    position = {}
    for i, m in enumerate(ranked):
        position.setdefault(m, i + 1)  # list.index: the first occurrence
    missing = [g for g in gts if g not in position]
    if missing:
        raise ValueError(f"annotated moments {missing} are not in the ranked list")
    ranks = sorted(float(position[g]) for g in gts)[:best_of]
    ious = sorted(didemo_iou(ranked[0], g) for g in gts)[-best_of:]
    return sum(ranks) / len(ranks), sum(ious) / len(ious)


def didemo_metrics_from_scores(rank: Tensor, iou: Tensor, ks: Sequence[int] = (1, 5)) -> dict[str, Tensor]:
    """Per-query mean rank and mean IoU [N] -> {"R@1", "R@5", "mIoU"} (fractions)."""
    out = {f"R@{k}": (rank.double() <= k).double().mean() for k in ks}
    out["mIoU"] = iou.double().mean()
    return out


def didemo_moment_metrics(
    ranked_moments: Sequence[Sequence[Sequence[int]]] | Tensor,
    gt_moments: Sequence[Sequence[Sequence[int]]] | Tensor,
    ks: Sequence[int] = (1, 5),
    best_of: int = 3,
) -> dict[str, Tensor]:
    """DiDeMo R@1, R@5 and mIoU: per query a ranked list of (start_seg, end_seg) moments (usually all
    21, best first) and the annotators' moments (4 per query in DiDeMo, a few have more)."""
    if len(ranked_moments) != len(gt_moments):
        raise ValueError("ranked_moments and gt_moments need one entry per query")
    if not len(ranked_moments):
        raise ValueError("no queries")
    pairs = [didemo_query_scores(r, g, best_of) for r, g in zip(ranked_moments, gt_moments)]
    rank = torch.tensor([r for r, _ in pairs], dtype=torch.float64)
    return didemo_metrics_from_scores(rank, torch.tensor([i for _, i in pairs], dtype=torch.float64), ks)


def didemo_rank_moments(scores: Tensor) -> Tensor:
    """[N, 21] scores over DIDEMO_MOMENTS -> [N, 21, 2] moments best first (ties: DIDEMO_MOMENTS order)."""
    scores = torch.as_tensor(scores)
    if scores.ndim != 2 or scores.shape[1] != len(DIDEMO_MOMENTS):
        raise ValueError(f"need scores [N, {len(DIDEMO_MOMENTS)}]: {tuple(scores.shape)}")
    order = torch.argsort(scores, dim=1, descending=True, stable=True)
    return torch.tensor(DIDEMO_MOMENTS, dtype=torch.long, device=scores.device)[order]
