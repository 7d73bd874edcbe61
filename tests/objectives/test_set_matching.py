"""Hungarian matching equals the brute-force minimum over all assignments."""

from itertools import permutations

import pytest
import torch

from vltasks.objectives import hungarian_match, match_sets


def _brute_force(cost: torch.Tensor) -> float:
    q, n = cost.shape
    return min(sum(float(cost[p[j], j]) for j in range(n)) for p in permutations(range(q), n))


@pytest.mark.parametrize(("q", "n"), [(3, 3), (5, 2), (6, 4), (4, 0)])
def test_matching_is_the_minimum_cost_assignment(q, n):
    g = torch.Generator().manual_seed(q * 10 + n)
    for _ in range(5):
        cost = torch.rand(q, n, generator=g)
        rows, cols = hungarian_match(cost)
        assert len(rows) == len(cols) == n
        assert len(set(rows.tolist())) == n and sorted(cols.tolist()) == list(range(n))
        if n:
            assert float(cost[rows, cols].sum()) == pytest.approx(_brute_force(cost))


def test_batched_matching_keeps_each_samples_own_targets():
    costs = [torch.tensor([[0.0, 1.0], [1.0, 0.0], [5.0, 5.0]]), torch.tensor([[3.0], [0.5], [2.0]])]
    (r0, c0), (r1, c1) = match_sets(costs)
    assert r0.tolist() == [0, 1] and c0.tolist() == [0, 1]
    assert r1.tolist() == [1] and c1.tolist() == [0]


def test_non_finite_costs_are_an_error():
    with pytest.raises(ValueError, match="NaN or infinite"):
        hungarian_match(torch.tensor([[0.0, float("nan")], [1.0, 0.0]]))
