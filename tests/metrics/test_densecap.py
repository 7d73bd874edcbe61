"""DenseCap mAP against a line-by-line Python transcription of densecap/eval/eval_utils.lua.

Python's `used[-1]` reads the last element exactly as Torch7's tensor indexing does, so the
transcription reproduces the zero-overlap quirk without special code.
"""

from __future__ import annotations

import pytest
import torch

from tests.metrics.metric_cases import CASES, fake_meteor
from vltasks.metrics import DenseCapMAP
from vltasks.metrics.functional import densecap_map
from vltasks.metrics.functional.densecap import RECALL_THRESHOLDS, merge_gt, to_xyxy


def _ov(bb: list[float], gt: list[float]) -> float:
    iw = min(bb[2], gt[2]) - max(bb[0], gt[0]) + 1
    ih = min(bb[3], gt[3]) - max(bb[1], gt[1]) + 1
    if iw > 0 and ih > 0:
        ua = (bb[2] - bb[0] + 1) * (bb[3] - bb[1] + 1) + (gt[2] - gt[0] + 1) * (gt[3] - gt[1] + 1) - iw * ih
        return iw * ih / ua
    return 0.0


def _merge(boxes: list[list[float]], thr: float = 0.7) -> list[list[int]]:
    n = len(boxes)
    d = [[1.0 if i == j else _ov(boxes[i], boxes[j]) for j in range(n)] for i in range(n)]
    groups = []
    while True:
        sums = [sum(d[i][j] >= thr for i in range(n)) for j in range(n)]
        top = max(range(n), key=lambda j: (sums[j], -j))
        if sums[top] == 0:
            return groups
        members = [j for j in range(n) if d[top][j] >= thr]
        groups.append(members)
        for m in members:
            for k in range(n):
                d[m][k] = d[k][m] = 0.0


def _lua_map(images: list[tuple[dict, dict]], meteor) -> dict[str, float]:
    records, npos = [], 0
    for pred, gt in images:
        gt_boxes = gt["boxes"].double().tolist()
        groups = _merge(gt_boxes)
        merged = [[sum(gt_boxes[m][c] for m in g) / len(g) for c in range(4)] for g in groups]
        texts = [[gt["captions"][m] for m in g] for g in groups]
        used = [0] * len(merged)
        scores = pred["scores"].double().tolist()
        for ii in sorted(range(len(scores)), key=lambda i: -scores[i]):
            bb = pred["boxes"][ii].double().tolist()
            ovmax, jmax = 0.0, -1
            for j, gtb in enumerate(merged):
                ov = _ov(bb, gtb)
                if ov > ovmax:
                    ovmax, jmax = ov, j
            ok = 1 if used[jmax] == 0 else 0
            used[jmax] = 1
            refs = texts[jmax] if jmax >= 0 else []
            records.append((scores[ii], ok, ovmax, pred["captions"][ii], refs))
        npos += len(merged)
    meteor_scores = [meteor([c], [r])[0] if r else 0.0 for *_, c, r in records]
    order = sorted(range(len(records)), key=lambda i: -records[i][0])
    ap_results, det_results = [], []
    for min_overlap in (0.3, 0.4, 0.5, 0.6, 0.7):
        for min_score in (-1, 0, 0.05, 0.1, 0.15, 0.2, 0.25):
            tp = fp = 0
            rec, prec = [], []
            for i in order:
                _, ok, ov, _, _ = records[i]
                if ov >= min_overlap and ok == 1 and meteor_scores[i] > min_score:
                    tp += 1
                else:
                    fp += 1
                rec.append(tp / npos)
                prec.append(tp / (tp + fp))
            ap, apn, t = 0.0, 0, 0.0
            while t <= 1:
                ap += max([p for p, r in zip(prec, rec) if r >= t], default=0.0)
                apn += 1
                t += 0.01
            (det_results if min_score == -1 else ap_results).append(ap / apn)
    return {"map": sum(ap_results) / len(ap_results), "det_map": sum(det_results) / len(det_results)}


def _harder(images: list[tuple[dict, dict]]) -> list[tuple[dict, dict]]:
    """Add near-duplicate GT boxes (merged) and far-away detections (zero overlap) to some images."""
    out = []
    for k, (pred, gt) in enumerate(images):
        gt = {
            "boxes": torch.cat([gt["boxes"], gt["boxes"][:1] + 1]),
            "captions": [*gt["captions"], "a red man"],
        }
        if k % 2 == 0:
            far = torch.tensor([[500.0, 500.0, 520.0, 530.0]])
            pred = {
                "boxes": torch.cat([pred["boxes"], far]),
                "scores": torch.cat([pred["scores"], torch.tensor([0.99])]),
                "captions": [*pred["captions"], "sky"],
            }
        out.append((pred, gt))
    return out


@pytest.mark.parametrize("harder", [False, True])
def test_matches_lua_transcription(harder: bool) -> None:
    _, images, _ = CASES["DenseCapMAP"]()
    images = _harder(images) if harder else images
    expected = _lua_map(images, fake_meteor)
    got = densecap_map([p for p, _ in images], [g for _, g in images], meteor=fake_meteor)
    assert got["map"].item() == pytest.approx(expected["map"], abs=1e-12)
    assert got["det_map"].item() == pytest.approx(expected["det_map"], abs=1e-12)
    assert 0 < got["map"].item() < got["det_map"].item() <= 1


def test_zero_overlap_detection_marks_last_gt() -> None:
    pred = {"boxes": torch.tensor([[200.0, 200.0, 210.0, 210.0], [0.0, 0.0, 9.0, 9.0]]),
            "scores": torch.tensor([0.9, 0.8]), "captions": ["a dog", "a dog"]}  # fmt: skip
    gt = {"boxes": torch.tensor([[0.0, 0.0, 9.0, 9.0]]), "captions": ["a dog"]}
    with_quirk = densecap_map([pred], [gt], meteor=fake_meteor)
    without = densecap_map([pred], [gt], meteor=fake_meteor, zero_overlap_marks_last_gt=False)
    assert with_quirk["det_map"].item() == 0.0
    assert without["det_map"].item() == pytest.approx(0.5)  # TP at rank 2: precision 1/2 at every recall
    assert _lua_map([(pred, gt)], fake_meteor)["det_map"] == 0.0


def test_merge_and_conventions() -> None:
    boxes = torch.tensor([[0.0, 0.0, 9.0, 9.0], [0.0, 0.0, 9.0, 8.0], [50.0, 50.0, 60.0, 60.0]])
    merged, texts = merge_gt(boxes, ["a", "b", "c"])
    assert texts == [["a", "b"], ["c"]]
    assert torch.equal(merged[0], torch.tensor([0.0, 0.0, 9.0, 8.5]))
    assert torch.equal(
        to_xyxy(torch.tensor([[10.0, 20.0, 5.0, 7.0]]), "xcycwh"), torch.tensor([[8.0, 17.0, 12.0, 23.0]])
    )
    assert len(RECALL_THRESHOLDS) == 100 and RECALL_THRESHOLDS[-1] < 1


def test_class_equals_functional_with_ids() -> None:
    _, images, _ = CASES["DenseCapMAP"]()
    preds, gts = [p for p, _ in images], [g for _, g in images]
    metric = DenseCapMAP(meteor=fake_meteor)
    metric.update(preds[:6], gts[:6], ids=range(6))
    metric.update(preds[4:], gts[4:], ids=range(4, 9))
    expected = densecap_map(preds, gts, meteor=fake_meteor)
    got = metric.compute()
    assert got["map"].item() == pytest.approx(expected["map"].item(), abs=1e-12)
    assert got["det_map"].item() == pytest.approx(expected["det_map"].item(), abs=1e-12)
