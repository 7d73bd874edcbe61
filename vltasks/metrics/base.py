"""The state pattern every vltasks metric shares: per-sample "cat" states plus sample ids.

DistributedSampler pads eval data by repeating samples; keeping one row per id makes the value
independent of the world size. Samples given without an id are all kept.

States are stored flat (1-D) with a declared dtype, so that a rank that saw no data can still join
the all-gather (torchmetrics would otherwise send a float32 `tensor([])` whose shape and dtype do not
match the other ranks'); `_gathered` restores one row per sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat
from torchmetrics.utilities.distributed import gather_all_tensors

from vltasks.metrics.utilities import keep_indices, optional_ids


class SampleMetric(Metric):
    """A Metric whose states are per-sample "cat" lists, de-duplicated by sample id in compute."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    plot_lower_bound = 0.0
    plot_upper_bound = 1.0

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._sample_dtypes: dict[str, torch.dtype] = {}
        self._add_sample_state("ids", torch.long)

    def plot(self, val: Any = None, ax: Any = None) -> Any:
        """torchmetrics' plot (needs matplotlib): the current value, a dict of values, or a series."""
        return self._plot(val, ax)

    def _add_sample_state(self, name: str, dtype: torch.dtype = torch.float64) -> None:
        self.add_state(name, default=[], dist_reduce_fx="cat")
        self._sample_dtypes[name] = dtype

    def _push(self, name: str, value: Tensor) -> None:
        getattr(self, name).append(value.detach().to(self.device, self._sample_dtypes[name]).reshape(-1))

    def _append(self, ids: Sequence[int | str] | Tensor | None, **values: Tensor) -> None:
        """Append one batch: every value has the batch size along dim 0."""
        n = {int(v.shape[0]) for v in values.values()}
        if len(n) != 1:
            shapes = {k: tuple(v.shape) for k, v in values.items()}
            raise ValueError(f"per-sample values disagree on the batch size: {shapes}")
        self._push("ids", optional_ids(ids, n.pop(), device=self.device))
        for name, value in values.items():
            self._push(name, value)

    def _flat(self, name: str) -> Tensor:
        state = getattr(self, name)
        if isinstance(state, list) and not state:
            return torch.zeros(0, dtype=self._sample_dtypes[name], device=self.device)
        return dim_zero_cat(state)

    def _gathered(self, *names: str) -> list[Tensor]:
        """The de-duplicated per-sample states (all ranks after sync): [N] or [N, width] each."""
        ids = self._flat("ids")
        keep = keep_indices(ids)
        out = []
        for name in names:
            flat = self._flat(name)
            rows = flat.reshape(ids.numel(), -1) if ids.numel() else flat.reshape(0, 1)
            rows = rows[keep]
            out.append(rows.squeeze(1) if rows.shape[1] == 1 else rows)
        return out

    def _sync_dist(self, dist_sync_fn=gather_all_tensors, process_group=None) -> None:  # noqa: ANN001
        for name, dtype in self._sample_dtypes.items():  # a rank without data sends typed empties
            if isinstance(getattr(self, name), list) and not getattr(self, name):
                setattr(self, name, [torch.zeros(0, dtype=dtype, device=self.device)])
        super()._sync_dist(dist_sync_fn, process_group)
