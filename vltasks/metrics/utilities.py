"""Helpers shared by the metrics: stable sample ids and de-duplication of samples seen twice.

Lightning's DistributedSampler pads eval data by repeating samples; a metric that is given the
sample ids keeps each id once, so its value does not depend on the world size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from torch import Tensor


def ids_to_tensor(ids: Sequence[int | str] | Tensor, device: torch.device | None = None) -> Tensor:
    """Int64 ids from ints or strings (strings hashed with blake2b, stable across processes)."""
    if isinstance(ids, Tensor):
        return ids.to(device=device, dtype=torch.long).reshape(-1)
    out = []
    for i in ids:
        if isinstance(i, (int,)) or (hasattr(i, "__index__") and not isinstance(i, str)):
            out.append(int(i))
        else:
            digest = hashlib.blake2b(str(i).encode("utf-8"), digest_size=8).digest()
            out.append(int.from_bytes(digest, "little", signed=True))
    return torch.tensor(out, dtype=torch.long, device=device)


def first_occurrence(ids: Tensor) -> Tensor:
    """Indices that keep the first occurrence of each id, in original order."""
    if ids.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=ids.device)
    uniq, inverse = torch.unique(ids, return_inverse=True)
    positions = torch.arange(ids.numel(), device=ids.device)
    first = torch.full((uniq.numel(),), ids.numel(), dtype=torch.long, device=ids.device)
    first = first.scatter_reduce(0, inverse, positions, reduce="amin")
    return torch.sort(first).values


# Id stored for samples given without an id: such samples are never de-duplicated.
NO_ID = torch.iinfo(torch.long).min


def optional_ids(
    ids: Sequence[int | str] | Tensor | None, n: int, device: torch.device | None = None
) -> Tensor:
    """Int64 ids for n samples; NO_ID for each when the caller gave none."""
    if ids is None:
        return torch.full((n,), NO_ID, dtype=torch.long, device=device)
    out = ids_to_tensor(ids, device=device)
    if out.numel() != n:
        raise ValueError(f"got {out.numel()} ids for {n} samples")
    return out


def keep_indices(ids: Tensor) -> Tensor:
    """Rows to keep: the first occurrence of each id, and every row without an id (NO_ID), in order."""
    no_id = ids == NO_ID
    if not bool(no_id.any()):
        return first_occurrence(ids)
    with_id = torch.nonzero(~no_id).flatten()
    kept = with_id[first_occurrence(ids[with_id])]
    return torch.sort(torch.cat([kept, torch.nonzero(no_id).flatten()])).values


def mean_or(values: Tensor, empty: float = 0.0) -> Tensor:
    """Float64 mean of `values`, or `empty` when there is nothing to average.

    torch's mean of an empty tensor is a silent NaN; each metric says instead what an empty set is
    worth: 0.0 for an overall score, NaN for a breakdown with no sample (as the official scripts do).
    """
    if values.numel() == 0:
        return torch.tensor(empty, dtype=torch.float64, device=values.device)
    return values.double().mean()
