"""Highlight detection (QVHighlights, Moment-DETR's standalone_eval `eval_highlight`).

Every 2-second clip of a video has a saliency score 0-4 from each of three annotators (0 for clips
outside `relevant_clip_ids`). For a minimum score m ("Fair" 2, "Good" 3, "VeryGood" 4) a clip is
positive for an annotator when that annotator gave it >= m.

- HIT@1: the clip with the highest predicted score (the first one on ties, over the whole prediction
  list) is a hit when any annotator marked it positive; a clip index past the video's clips misses.
- mAP: per query and annotator, the predicted scores are cut or zero-padded to the video's clip
  count and scored by the script's `get_ap`: 0 when no clip is positive, else the mean, over the
  score levels that add positives (tied clips form one level, as in sklearn's
  `precision_recall_curve`), of the interpolated precision (the best precision at that recall or
  higher); then the mean over annotators and queries.

Values are fractions; the script prints 100x rounded to 2 decimals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

HL_MIN_SCORES: dict[str, int] = {"Fair": 2, "Good": 3, "VeryGood": 4}
CLIP_LENGTH = 2.0


def qvhighlights_gt_saliency(
    duration: float,
    relevant_clip_ids: Sequence[int],
    saliency_scores: Sequence[Sequence[float]],
    clip_length: float = CLIP_LENGTH,
) -> Tensor:
    """The full-video GT saliency [int(duration / clip_length), annotators] of a QVHighlights record,
    0 outside `relevant_clip_ids` (the script's `mk_gt_scores`)."""
    ids = [int(i) for i in relevant_clip_ids]
    n_clips = int(duration / clip_length)
    if len(saliency_scores) != len(ids):
        raise ValueError(f"{len(ids)} relevant_clip_ids but {len(saliency_scores)} rows of saliency_scores")
    if not ids:
        return torch.zeros(n_clips, 3, dtype=torch.float64)
    if max(ids) >= n_clips or min(ids) < 0:
        raise ValueError(f"relevant_clip_ids {ids} outside the {n_clips} clips of a {duration} s video")
    scores = torch.as_tensor(saliency_scores, dtype=torch.float64).reshape(len(ids), -1)
    full = torch.zeros(n_clips, scores.shape[1], dtype=torch.float64)
    full[torch.as_tensor(ids, dtype=torch.long)] = scores
    return full


def saliency_average_precision(scores: Tensor, labels: Tensor) -> Tensor:
    """`get_ap` of Moment-DETR's standalone_eval for each column of labels [C, M] (bool) against one
    score per clip [C]: tied scores are one threshold; 0 for a column without positives."""
    scores = torch.as_tensor(scores, dtype=torch.float64).reshape(-1)
    labels = torch.as_tensor(labels).reshape(scores.numel(), -1).to(torch.float64)
    if scores.numel() == 0:
        raise ValueError("no clips to score")
    order = torch.argsort(scores, descending=True, stable=True)
    ranked = scores[order]
    tp = labels[order].cumsum(0)
    last_of_level = torch.cat([ranked[1:] != ranked[:-1], ranked.new_ones(1, dtype=torch.bool)])
    ends = torch.nonzero(last_of_level).reshape(-1)
    tp = tp[ends]  # [levels, M]: positives among the clips scored >= each distinct score
    precision = tp / (ends + 1).to(torch.float64)[:, None]
    # Past full recall precision only drops, so the max over all lower levels is the max at >= recall.
    interpolated = precision.flip(0).cummax(0).values.flip(0)
    gains = torch.diff(tp, dim=0, prepend=torch.zeros_like(tp[:1])) > 0
    n_levels = gains.sum(0)
    ap = (interpolated * gains).sum(0) / n_levels.clamp(min=1)
    return torch.where(n_levels > 0, ap, torch.zeros_like(ap))


def highlight_query_scores(
    pred_saliency: Tensor, gt_saliency: Tensor, min_scores: Mapping[str, int] = HL_MIN_SCORES
) -> tuple[Tensor, Tensor]:
    """Per query: AP averaged over annotators [len(min_scores)] and HIT@1 [len(min_scores)].

    pred_saliency [K]: one score per clip in video order; gt_saliency [C, A]: full-video scores.
    """
    pred = torch.as_tensor(pred_saliency, dtype=torch.float64).reshape(-1)
    gt = torch.as_tensor(gt_saliency, dtype=torch.float64).to(pred.device)
    if gt.ndim == 1:
        gt = gt[:, None]
    if pred.numel() == 0 or gt.shape[0] == 0:
        raise ValueError(f"need saliency predictions and GT clips: {tuple(pred.shape)}, {tuple(gt.shape)}")
    n_clips, n_annotators = gt.shape
    mins = torch.tensor(list(min_scores.values()), dtype=torch.float64, device=pred.device)
    positive = gt[:, None, :] >= mins[None, :, None]  # [C, T, A]
    top = int(torch.argmax(pred))  # first maximum, as np.argmax
    if top < n_clips:
        hit = positive[top].any(1).to(torch.float64)
    else:
        hit = torch.zeros(len(mins), dtype=torch.float64, device=pred.device)
    aligned = torch.zeros(n_clips, dtype=torch.float64, device=pred.device)
    aligned[: min(n_clips, pred.numel())] = pred[:n_clips]
    ap = saliency_average_precision(aligned, positive.reshape(n_clips, -1)).reshape(len(mins), n_annotators)
    return ap.mean(1), hit


def highlight_metrics_from_scores(
    ap: Tensor, hit: Tensor, min_scores: Mapping[str, int] = HL_MIN_SCORES
) -> dict[str, Tensor]:
    """ap, hit [N, len(min_scores)] -> {"HL-min-{name}-mAP", "HL-min-{name}-Hit1"} (fractions)."""
    out: dict[str, Tensor] = {}
    for t, name in enumerate(min_scores):
        out[f"HL-min-{name}-mAP"] = ap[:, t].double().mean()
        out[f"HL-min-{name}-Hit1"] = hit[:, t].double().mean()
    return out


def highlight_detection_metrics(
    pred_saliency: Sequence[Tensor],
    gt_saliency: Sequence[Tensor],
    min_scores: Mapping[str, int] = HL_MIN_SCORES,
) -> dict[str, Tensor]:
    """QVHighlights highlight detection: per query predicted clip scores [K] and full-video GT
    saliency [C, annotators] (`qvhighlights_gt_saliency` builds it from a GT record)."""
    if len(pred_saliency) != len(gt_saliency):
        raise ValueError("pred_saliency and gt_saliency need one entry per query")
    if not len(pred_saliency):
        raise ValueError("no queries")
    pairs = [highlight_query_scores(p, g, min_scores) for p, g in zip(pred_saliency, gt_saliency)]
    return highlight_metrics_from_scores(
        torch.stack([a for a, _ in pairs]), torch.stack([h for _, h in pairs]), min_scores
    )
