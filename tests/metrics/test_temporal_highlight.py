"""QVHighlights: highlight detection and the whole submission scorer against Moment-DETR's published
metrics of its sample predictions (standalone_eval/sample_val_preds_metrics_raw.json)."""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path

import pytest
import torch

from vltasks.metrics import HighlightDetectionMetrics, MomentRetrievalMetrics, qvhighlights_eval
from vltasks.metrics.functional import highlight_detection_metrics, qvhighlights_gt_saliency
from vltasks.metrics.functional.highlight import highlight_query_scores, saliency_average_precision

DATA = Path(__file__).parent / "data"


def _jsonl_gz(name: str) -> list[dict]:
    with gzip.open(DATA / name, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@cache
def _val() -> tuple[list[dict], list[dict], dict]:
    """Moment-DETR's sample val predictions, the val GT (1550 queries) and the published metrics."""
    published = json.loads((DATA / "qvhighlights_sample_val_metrics.json").read_text())["metrics"]
    return (
        _jsonl_gz("qvhighlights_val_sample_preds.jsonl.gz"),
        _jsonl_gz("qvhighlights_val_gt.jsonl.gz"),
        published,
    )


def _percent(value: torch.Tensor) -> float:
    return float(f"{100 * value.item():.2f}")


def test_scorer_reproduces_published_metrics_file() -> None:
    submission, gt, published = _val()
    assert len(submission) == len(gt) == 1550
    out = qvhighlights_eval(submission, gt)
    assert out == published  # every key of every entry, 2 decimals
    assert list(out) == list(published) and list(out["brief"]) == list(published["brief"])


def test_classes_together_give_the_scorer_numbers() -> None:
    submission, gt_records, published = _val()
    gt = {d["qid"]: d for d in gt_records}
    moments, highlights = MomentRetrievalMetrics(), HighlightDetectionMetrics()
    step = 400
    for start in range(0, len(submission), step):
        batch = submission[start : start + step + 3]  # 3 queries seen twice, as a padding sampler does
        qids = [d["qid"] for d in batch]
        moments.update(
            [torch.tensor([w[:2] for w in d["pred_relevant_windows"]], dtype=torch.float64) for d in batch],
            [torch.tensor([w[2] for w in d["pred_relevant_windows"]], dtype=torch.float64) for d in batch],
            [torch.tensor(gt[q]["relevant_windows"], dtype=torch.float64) for q in qids],
            ids=qids,
        )
        highlights.update(
            [torch.tensor(d["pred_saliency_scores"], dtype=torch.float64) for d in batch],
            [
                qvhighlights_gt_saliency(
                    gt[q]["duration"], gt[q]["relevant_clip_ids"], gt[q]["saliency_scores"]
                )
                for q in qids
            ],
            ids=qids,
        )
    got = {k: _percent(v) for k, v in {**moments.compute(), **highlights.compute()}.items()}
    assert {k: got[k] for k in published["brief"]} == published["brief"]
    for bucket in ("full", "short", "middle", "long"):
        table = published[bucket]
        assert got[f"MR-{bucket}-mAP"] == table["MR-mAP"]["average"]
        assert got[f"MR-{bucket}-mAP@0.5"] == table["MR-mAP"]["0.5"]
        assert got[f"MR-{bucket}-mAP@0.75"] == table["MR-mAP"]["0.75"]
        assert got[f"MR-{bucket}-R1@0.5"] == table["MR-R1"]["0.5"]
        assert got[f"MR-{bucket}-R1@0.7"] == table["MR-R1"]["0.7"]


def test_scorer_checks_qids_and_scores_what_is_submitted() -> None:
    submission, gt, published = _val()
    with pytest.raises(ValueError, match="must match"):
        qvhighlights_eval(submission[:10], gt)
    with pytest.raises(ValueError, match="more than once"):
        qvhighlights_eval(submission[:10] + submission[:1], gt[:10])
    mr_only = [{k: v for k, v in d.items() if k != "pred_saliency_scores"} for d in submission[:40]]
    out = qvhighlights_eval(mr_only, gt, match_number=False)
    assert list(out) == ["brief", "full", "long", "middle", "short"]
    assert not any(k.startswith("HL") for k in out["brief"])
    hl_only = [{k: v for k, v in d.items() if k != "pred_relevant_windows"} for d in submission[:40]]
    assert list(qvhighlights_eval(hl_only, gt[:40])["brief"]) == [
        f"HL-min-{level}-{m}" for level in ("Fair", "Good", "VeryGood") for m in ("mAP", "Hit1")
    ]


def test_gt_saliency_covers_the_whole_video() -> None:
    full = qvhighlights_gt_saliency(9.0, [1, 3], [[4, 2, 0], [1, 3, 3]])
    assert full.shape == (4, 3)  # int(9 / 2) clips
    assert full[1].tolist() == [4, 2, 0] and full[3].tolist() == [1, 3, 3] and full[0].sum() == 0
    with pytest.raises(ValueError, match="outside"):
        qvhighlights_gt_saliency(6.0, [3], [[1, 1, 1]])


@pytest.mark.parametrize(
    ("labels", "scores", "ap"),
    [
        ([1, 0, 1, 0], [0.9, 0.8, 0.8, 0.1], 5 / 6),
        ([0, 1, 1], [0.8, 0.8, 0.1], 2 / 3),  # a tie is one level: precision 1/2 there, then lifted
        ([1, 1, 0, 1], [0.5, 0.5, 0.5, 0.2], 0.75),  # the level with 2 positives counts once
        ([0, 0, 0], [0.3, 0.2, 0.1], 0.0),
        ([1, 1], [0.3, 0.3], 1.0),
    ],
)
def test_saliency_ap_follows_get_ap(labels: list[int], scores: list[float], ap: float) -> None:
    """Values from the script's `get_ap` (sklearn's precision_recall_curve) on the same inputs."""
    got = saliency_average_precision(torch.tensor(scores), torch.tensor(labels).bool())
    assert got.item() == pytest.approx(ap, abs=1e-15)


def test_hit_and_alignment_rules() -> None:
    gt = torch.tensor([[0, 0, 0], [2, 1, 0], [4, 0, 0], [3, 3, 1]], dtype=torch.float64)
    # The first maximum wins; any annotator at >= the level makes a hit.
    ap, hit = highlight_query_scores(torch.tensor([0.0, 0.9, 0.9, 0.1]), gt)
    assert hit.tolist() == [1.0, 0.0, 0.0]
    _, hit = highlight_query_scores(torch.tensor([0.0, 0.1, 0.9, 0.1]), gt)
    assert hit.tolist() == [1.0, 1.0, 1.0]
    # A maximum past the video's clips misses; scores past them are cut for the AP.
    ap_long, hit = highlight_query_scores(torch.tensor([0.0, 0.1, 0.9, 0.1, 5.0]), gt)
    assert hit.tolist() == [0.0, 0.0, 0.0]
    ap_cut, _ = highlight_query_scores(torch.tensor([0.0, 0.1, 0.9, 0.1]), gt)
    assert torch.equal(ap_long, ap_cut)
    # A short prediction is padded with 0.0, which ties with an explicit 0.0.
    ap_short, _ = highlight_query_scores(torch.tensor([0.5, 0.0, 0.3]), gt)
    ap_padded, _ = highlight_query_scores(torch.tensor([0.5, 0.0, 0.3, 0.0]), gt)
    assert torch.equal(ap_short, ap_padded)
    # AP: the mean over annotators of each one's AP at that level (Fair: annotator 3 has no positive).
    expected = sum(
        saliency_average_precision(torch.tensor([0.5, 0.0, 0.3, 0.0]), gt[:, a] >= 2) for a in range(3)
    )
    assert ap_short[0].item() == pytest.approx(expected.item() / 3)


def test_functional_matches_class_and_custom_levels() -> None:
    submission, gt_records, _ = _val()
    gt = {d["qid"]: d for d in gt_records}
    preds = [torch.tensor(d["pred_saliency_scores"]) for d in submission[:50]]
    keys = ("duration", "relevant_clip_ids", "saliency_scores")
    gts = [qvhighlights_gt_saliency(*(gt[d["qid"]][k] for k in keys)) for d in submission[:50]]
    levels = {"AtLeast1": 1, "Fair": 2}
    metric = HighlightDetectionMetrics(min_scores=levels)
    metric.update(preds[:30], gts[:30])
    metric.update(preds[30:], gts[30:])
    out = highlight_detection_metrics(preds, gts, min_scores=levels)
    assert list(out) == ["HL-min-AtLeast1-mAP", "HL-min-AtLeast1-Hit1", "HL-min-Fair-mAP", "HL-min-Fair-Hit1"]
    assert {k: v.item() for k, v in metric.compute().items()} == pytest.approx(
        {k: v.item() for k, v in out.items()}
    )
    assert out["HL-min-AtLeast1-Hit1"] >= out["HL-min-Fair-Hit1"]
