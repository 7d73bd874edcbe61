"""DiDeMo moments (LocalizingMoments `utils/eval.py`): best 3 of the annotators, +1 segment IoU."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from vltasks.metrics import DiDeMoMoments
from vltasks.metrics.functional import didemo_moment_metrics, didemo_rank_moments
from vltasks.metrics.functional.temporal import DIDEMO_MOMENTS, didemo_iou, didemo_query_scores

DATA = json.loads((Path(__file__).parent / "data" / "didemo_val_subset.json").read_text())
GT_TIMES = [times for _, times in DATA["queries"]]
MOMENTS = [(s, e) for s in range(6) for e in range(s, 6)]  # fixed here so the generator cannot drift

# LocalizingMoments (commit b6a555c) utils/eval.py `eval_predictions(segments, data)`, run once with
# numpy 2.4.6 (its Python 2 prints rewritten) on `_predictions(GT_TIMES)` against the 538 queries of
# data/didemo_val_subset.json; full float repr of the returned (rank1, rank5, miou).
OFFICIAL = {"R@1": 0.4256505576208178, "R@5": 0.6152416356877324, "mIoU": 0.6496076001652211}


def _predictions(gt_times: list[list[list[int]]], seed: int = 2017) -> list[list[tuple[int, int]]]:
    """All 21 moments ranked by a random score (only `Random.random`, whose sequence Python keeps
    fixed for a seed), with one annotator's moment lifted to the top for ~60% of the queries."""
    rng = random.Random(seed)
    ranked = []
    for times in gt_times:
        scores = {m: rng.random() for m in MOMENTS}
        if rng.random() < 0.6:
            scores[tuple(times[int(rng.random() * len(times))])] += 1.0
        ranked.append(sorted(MOMENTS, key=lambda m: -scores[m]))
    return ranked


def test_official_numbers_on_seeded_predictions() -> None:
    assert sorted(MOMENTS) == sorted(DIDEMO_MOMENTS) and len(GT_TIMES) == 538
    preds = _predictions(GT_TIMES)
    out = didemo_moment_metrics(preds, GT_TIMES)
    assert out.keys() == OFFICIAL.keys()
    for key, value in OFFICIAL.items():
        assert out[key].item() == pytest.approx(value, abs=1e-12), key


def test_class_in_batches_with_duplicates_matches_official() -> None:
    preds = _predictions(GT_TIMES)
    metric = DiDeMoMoments()
    for start in range(0, len(preds), 100):
        stop = min(start + 110, len(preds))  # overlapping batches: 10 queries seen twice
        metric.update(
            preds[start:stop], GT_TIMES[start:stop], ids=[q for q, _ in DATA["queries"][start:stop]]
        )
    out = metric.compute()
    for key, value in OFFICIAL.items():
        assert out[key].item() == pytest.approx(value, abs=1e-12), key


def test_iou_counts_inclusive_segments() -> None:
    assert didemo_iou((0, 0), (0, 0)) == 1.0
    assert didemo_iou((0, 1), (1, 1)) == 0.5  # 1 shared segment of 2
    assert didemo_iou((0, 2), (3, 5)) == 0.0
    assert didemo_iou((1, 4), (2, 5)) == pytest.approx(3 / 5)


def test_best_three_of_four_chosen_separately_for_rank_and_iou() -> None:
    ranked = [(1, 1), (0, 1), (2, 2), *[m for m in MOMENTS if m not in {(1, 1), (0, 1), (2, 2)}]]
    gts = [(1, 1), (1, 1), (0, 1), (5, 5)]  # ranks 1, 1, 2, 21; IoUs with (1, 1): 1, 1, 0.5, 0
    rank, iou = didemo_query_scores(ranked, gts)
    assert rank == pytest.approx(4 / 3) and iou == pytest.approx(2.5 / 3)
    out = didemo_moment_metrics([ranked], [gts])
    assert out["R@1"].item() == 0.0  # a mean rank of 1 needs 3 annotators on the top-1 moment
    assert out["R@5"].item() == 1.0
    rank, _ = didemo_query_scores(ranked, [(1, 1)] * 3 + [(5, 5)])
    assert rank == 1.0
    # Seven annotators (a few DiDeMo queries): still the best 3; one annotator: just that one.
    assert didemo_query_scores(ranked, [(5, 5)] * 4 + [(1, 1), (0, 1), (2, 2)]) == (2.0, pytest.approx(0.5))
    assert didemo_query_scores(ranked, [(2, 2)]) == (3.0, 0.0)


def test_missing_annotated_moment_is_an_error() -> None:
    with pytest.raises(ValueError, match="not in the ranked list"):
        didemo_query_scores([(0, 0), (1, 1)], [(0, 0), (2, 2)])


def test_rank_moments_from_scores_keeps_order_on_ties() -> None:
    scores = torch.zeros(2, 21)
    scores[0, MOMENTS.index((2, 4))] = 1.0
    ranked = didemo_rank_moments(scores)
    assert ranked.shape == (2, 21, 2)
    assert tuple(ranked[0, 0].tolist()) == (2, 4)
    assert [tuple(m) for m in ranked[1].tolist()] == list(DIDEMO_MOMENTS)  # all tied: fixed order
    with pytest.raises(ValueError):
        didemo_rank_moments(torch.zeros(2, 20))


def test_tensor_inputs() -> None:
    preds = _predictions(GT_TIMES[:20])
    as_lists = didemo_moment_metrics(preds, GT_TIMES[:20])
    as_tensors = didemo_moment_metrics(torch.tensor(preds), [torch.tensor(t) for t in GT_TIMES[:20]])
    assert {k: v.item() for k, v in as_lists.items()} == {k: v.item() for k, v in as_tensors.items()}
