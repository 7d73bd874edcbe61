"""Every metric class: batches, duplicated samples and 2 gloo processes give the 1-process value."""

from __future__ import annotations

import math

import pytest

import vltasks.metrics as M
from tests.ddp import run_distributed
from tests.metrics.metric_cases import CASES, run_case

NAMES = sorted(CASES)


SCENARIOS = ("uneven", "empty_rank")


def _split(n: int, rank: int, scenario: str) -> list[int]:
    """Uneven shards, rank 1 also sees sample 0 again (DistributedSampler-style padding); or rank 0
    gets nothing at all (an unrepeated sampler on a tiny set)."""
    cut = n // 3 if scenario == "uneven" else 0
    return list(range(cut)) if rank == 0 else list(range(cut, n)) + [0]


def _all_cases(rank: int, world_size: int) -> dict[tuple[str, str], dict[str, float]]:
    import warnings

    warnings.filterwarnings("ignore", message=".*compute.*before.*update.*")
    out = {}
    for name in NAMES:
        n = len(CASES[name]()[1])
        for scenario in SCENARIOS:
            out[name, scenario] = run_case(name, _split(n, rank, scenario), batch=3)
    return out


def _close(a: dict[str, float], b: dict[str, float]) -> bool:
    if a.keys() != b.keys():
        return False
    return all((math.isnan(a[k]) and math.isnan(b[k])) or math.isclose(a[k], b[k], abs_tol=1e-9) for k in a)


@pytest.fixture(scope="module")
def distributed_results() -> list[dict[tuple[str, str], dict[str, float]]]:
    return run_distributed(_all_cases, 2)


def test_every_public_class_has_a_case() -> None:
    classes = {n for n in M.__all__ if isinstance(getattr(M, n), type)}
    caption = set(getattr(__import__("vltasks.metrics.caption", fromlist=["__all__"]), "__all__", []))
    assert classes - caption <= set(CASES), sorted(classes - caption - set(CASES))


@pytest.mark.parametrize("name", NAMES)
def test_class_attributes(name: str) -> None:
    metric = CASES[name]()[0]()
    assert metric.full_state_update is False
    assert metric.is_differentiable is False
    assert metric.plot_lower_bound == 0.0


@pytest.mark.parametrize("name", NAMES)
def test_batches_and_duplicates_match_one_pass(name: str) -> None:
    n = len(CASES[name]()[1])
    once = run_case(name, list(range(n)), batch=n)
    assert _close(run_case(name, list(range(n)) + [2, 0], batch=3), once)
    assert _close(run_case(name, list(reversed(range(n))), batch=5), once)


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("name", NAMES)
def test_two_processes_match_one(name: str, scenario: str, distributed_results) -> None:
    n = len(CASES[name]()[1])
    once = run_case(name, list(range(n)), batch=n)
    for rank_result in distributed_results:
        assert _close(rank_result[name, scenario], once), (rank_result[name, scenario], once)
