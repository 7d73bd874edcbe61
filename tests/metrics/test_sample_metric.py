"""SampleMetric's text states (strings as UTF-8 byte states) and the shared `mean_or` helper."""

from __future__ import annotations

import math

import pytest
import torch

from tests.ddp import run_distributed
from vltasks.metrics.base import SampleMetric
from vltasks.metrics.utilities import mean_or

ROWS = [["a cat", "ein Kätzchen"], [], ["", "😀 émoji", "x"], ["日本語"], ["dog"], ["one", "two"]]


class _Texts(SampleMetric):
    """Per sample a number and a list of strings; compute returns both as `_gathered` keeps them."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._add_sample_state("value")
        self._add_text_state("texts")

    def update(self, values: list[float], rows: list[list[str]], ids: list | None = None) -> None:
        self._append(ids, value=torch.tensor(values, dtype=torch.float64), texts=rows)

    def compute(self) -> tuple[list[float], list[list[str]]]:
        (values,) = self._gathered("value")
        return values.tolist(), self._gathered_texts("texts")


def _feed(metric: _Texts, order: list[int], ids: list | None, batch: int = 2) -> None:
    for start in range(0, len(order), batch):
        part = order[start : start + batch]
        metric.update(
            [float(i) for i in part], [ROWS[i] for i in part], None if ids is None else [ids[i] for i in part]
        )


@pytest.mark.filterwarnings("ignore:.*compute.*before.*update")
def test_text_rows_follow_the_kept_samples() -> None:
    metric = _Texts()
    _feed(metric, [3, 0, 1, 0, 2, 3, 4, 5], ids=["c", "a", "b", "d", "e", "f"], batch=3)
    values, rows = metric.compute()
    assert values == [3.0, 0.0, 1.0, 2.0, 4.0, 5.0]  # repeated ids count once, first occurrence
    assert rows == [ROWS[int(v)] for v in values]
    metric.reset()
    assert metric.compute() == ([], [])


def test_samples_without_ids_are_all_kept_next_to_ids() -> None:
    metric = _Texts()
    metric.update([0.0, 1.0], [ROWS[0], ROWS[1]])
    metric.update([2.0, 0.0], [ROWS[2], ROWS[0]], ids=[7, 8])
    metric.update([0.0, 3.0], [ROWS[0], ROWS[3]], ids=[8, 9])  # 8 again
    metric.update([0.0], [ROWS[0]])
    values, rows = metric.compute()
    assert values == [0.0, 1.0, 2.0, 0.0, 3.0, 0.0] and rows == [ROWS[int(v)] for v in values]


def test_bad_text_input_is_an_error() -> None:
    metric = _Texts()
    with pytest.raises(ValueError, match="bare string"):
        metric.update([1.0], ["a cat"])
    with pytest.raises(ValueError, match="batch size"):
        metric.update([1.0, 2.0], [["a"]])
    with pytest.raises(ValueError, match="ids"):
        metric.update([1.0], [["a"]], ids=[1, 2])
    with pytest.raises(AttributeError):
        metric.update([1.0], [["a", None]])  # type: ignore[list-item]
    metric.update([4.0], [ROWS[4]])  # the failed updates stored nothing
    assert metric.compute() == ([4.0], [ROWS[4]])


def _ddp_worker(rank: int, world_size: int) -> dict[str, tuple]:
    """Uneven with sample 0 on both ranks; then everything on rank 1 and nothing on rank 0."""
    out = {}
    for scenario, cut in (("uneven", 2), ("empty_rank", 0)):
        metric = _Texts()
        order = list(range(cut)) if rank == 0 else list(range(cut, len(ROWS))) + [0]
        _feed(metric, order, ids=[f"s{i}" for i in range(len(ROWS))])
        out[scenario] = metric.compute()
    return out


def test_two_processes_gather_every_text_once() -> None:
    single = _Texts()
    _feed(single, list(range(len(ROWS))), ids=None)
    expected = single.compute()
    for result in run_distributed(_ddp_worker, 2):
        assert result["uneven"] == expected and result["empty_rank"] == expected


def test_mean_or() -> None:
    hits = torch.tensor([True, False, True])
    assert mean_or(hits).dtype == torch.float64 and mean_or(hits).item() == pytest.approx(2 / 3)
    scores = torch.rand(101, dtype=torch.float64)
    assert mean_or(scores).item() == scores.mean().item()  # bit for bit: the values must not move
    assert mean_or(torch.zeros(0)).dtype == torch.float64 and mean_or(torch.zeros(0)).item() == 0.0
    assert math.isnan(mean_or(torch.zeros(0, dtype=torch.bool), float("nan")).item())
