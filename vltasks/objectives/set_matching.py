"""Hungarian matching for set prediction (DETR, Moment-DETR, GRiT): each target gets one prediction.

The cost of giving prediction q to target n is a weighted sum the head computes (class, L1, GIoU,
temporal IoU...); the assignment that minimises the total is scipy's ``linear_sum_assignment``
(the Jonker-Volgenant algorithm). Matching is not differentiated: the cost is detached.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

__all__ = ["hungarian_match", "match_sets"]


def hungarian_match(cost: Tensor) -> tuple[Tensor, Tensor]:
    """(prediction indices, target indices) of the min-cost matching of a [Q, N] cost matrix.

    With Q >= N every target is matched and Q - N predictions stay unmatched (the "no object"
    ones); pairs come sorted by prediction index. A cost that is not finite cannot be matched and
    is an error, not a silent wrong match.
    """
    if cost.ndim != 2:
        raise ValueError(f"hungarian_match: cost must be [predictions, targets], got {tuple(cost.shape)}")
    c = cost.detach().to("cpu", torch.float64)
    if not bool(torch.isfinite(c).all()):
        raise ValueError("hungarian_match: the cost matrix has NaN or infinite entries")
    if c.numel() == 0:
        empty = torch.zeros(0, dtype=torch.long, device=cost.device)
        return empty, empty.clone()
    rows, cols = linear_sum_assignment(c.numpy())
    as_long = dict(dtype=torch.long, device=cost.device)
    return torch.as_tensor(rows, **as_long), torch.as_tensor(cols, **as_long)


def match_sets(costs: Sequence[Tensor]) -> list[tuple[Tensor, Tensor]]:
    """One matching per sample of a batch: ``costs[b]`` is [Q, N_b] (samples have their own N)."""
    return [hungarian_match(c) for c in costs]
