"""Score a QVHighlights submission the way Moment-DETR's `standalone_eval/eval.py` does.

`qvhighlights_eval(submission, ground_truth)` takes the records of a submission jsonl
(`qid, pred_relevant_windows [[start, end, score], ...], pred_saliency_scores`) and of the GT jsonl
(`qid, duration, relevant_windows, relevant_clip_ids, saliency_scores`) and returns the dict the
script writes: `"brief"` (MR keys sorted, then `HL-min-{Fair,Good,VeryGood}-{mAP,Hit1}`), one entry
per saliency level and one per GT-length bucket (`"full"`, `"long"`, `"middle"`, `"short"`, each with
`"MR-mAP"` per IoU threshold plus `"average"` and `"MR-R1"` per threshold), in percent rounded to 2
decimals. The per-query work is the moment-retrieval and highlight functional code that the
`MomentRetrievalMetrics` and `HighlightDetectionMetrics` classes use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from vltasks.metrics.functional.highlight import (
    CLIP_LENGTH,
    HL_MIN_SCORES,
    highlight_query_scores,
    qvhighlights_gt_saliency,
)
from vltasks.metrics.functional.temporal import MR_THRESHOLDS, moment_threshold_tables, query_moment_scores

Record = Mapping[str, Any]


def _percent(value: torch.Tensor | float) -> float:
    """The script's `float(f"{100 * v:.2f}")`."""
    return float(f"{100 * float(value):.2f}")


def _moment_tables(submission: Sequence[Record], gt: Mapping[Any, Record]) -> dict[str, dict[str, Any]]:
    aps, r1s = [], []
    for d in submission:
        windows = torch.tensor([w[:2] for w in d["pred_relevant_windows"]], dtype=torch.float64)
        scores = torch.tensor([w[2] for w in d["pred_relevant_windows"]], dtype=torch.float64)
        relevant = torch.tensor(gt[d["qid"]]["relevant_windows"], dtype=torch.float64).reshape(-1, 2)
        ap, r1 = query_moment_scores(windows.reshape(-1, 2), scores, relevant)
        aps.append(ap)
        r1s.append(r1)
    out = {}
    for name, (per_thr, recall) in moment_threshold_tables(torch.stack(aps), torch.stack(r1s)).items():
        m_ap = {str(t): _percent(v) for t, v in zip(MR_THRESHOLDS, per_thr)}
        m_ap["average"] = _percent(per_thr.mean())
        out[name] = {"MR-mAP": m_ap, "MR-R1": {str(t): _percent(v) for t, v in zip(MR_THRESHOLDS, recall)}}
    return out


def _highlight_tables(
    submission: Sequence[Record], gt: Mapping[Any, Record], clip_length: float
) -> dict[str, dict[str, float]]:
    aps, hits = [], []
    for d in submission:
        g = gt[d["qid"]]
        saliency = qvhighlights_gt_saliency(
            g["duration"], g["relevant_clip_ids"], g["saliency_scores"], clip_length
        )
        pred = torch.tensor(d["pred_saliency_scores"], dtype=torch.float64)
        ap, hit = highlight_query_scores(pred, saliency)
        aps.append(ap)
        hits.append(hit)
    ap, hit = torch.stack(aps), torch.stack(hits)
    return {
        f"HL-min-{name}": {"HL-mAP": _percent(ap[:, t].mean()), "HL-Hit1": _percent(hit[:, t].mean())}
        for t, name in enumerate(HL_MIN_SCORES)
    }


def qvhighlights_eval(
    submission: Sequence[Record],
    ground_truth: Sequence[Record],
    match_number: bool = True,
    clip_length: float = CLIP_LENGTH,
) -> dict[str, Any]:
    """The metrics dict of Moment-DETR's `eval_submission` (percent, 2 decimals).

    With `match_number=True` the submission must cover exactly the GT qids (as the script asserts);
    with False only the shared qids are scored. Moment retrieval is scored when the first record has
    `pred_relevant_windows`, highlight detection when it has `pred_saliency_scores`.
    """
    pred_qids = [d["qid"] for d in submission]
    if len(set(pred_qids)) != len(pred_qids):
        raise ValueError("a qid appears more than once in the submission")
    gt = {d["qid"]: d for d in ground_truth}
    if match_number and set(pred_qids) != set(gt):
        raise ValueError(
            f"qids in ground_truth and submission must match ({len(set(pred_qids) - set(gt))} only in the "
            f"submission, {len(set(gt) - set(pred_qids))} only in the GT); use match_number=False to score "
            "the shared ones"
        )
    submission = [d for d in submission if d["qid"] in gt]
    if not submission:
        raise ValueError("no submission record has a GT record")

    brief: dict[str, float] = {}
    tables: dict[str, Any] = {}
    if "pred_relevant_windows" in submission[0]:
        moments = _moment_tables(submission, gt)
        tables.update(moments)
        full = moments["full"]
        mr_brief = {
            "MR-full-mAP": full["MR-mAP"]["average"],
            "MR-full-mAP@0.5": full["MR-mAP"]["0.5"],
            "MR-full-mAP@0.75": full["MR-mAP"]["0.75"],
            **{f"MR-{name}-mAP": moments[name]["MR-mAP"]["average"] for name in ("short", "middle", "long")},
            "MR-full-R1@0.5": full["MR-R1"]["0.5"],
            "MR-full-R1@0.7": full["MR-R1"]["0.7"],
        }
        brief.update(sorted(mr_brief.items()))
    if "pred_saliency_scores" in submission[0]:
        highlights = _highlight_tables(submission, gt, clip_length)
        tables.update(highlights)
        for level, values in highlights.items():
            brief[f"{level}-mAP"] = values["HL-mAP"]
            brief[f"{level}-Hit1"] = values["HL-Hit1"]
    return {"brief": brief, **dict(sorted(tables.items()))}
