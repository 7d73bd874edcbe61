"""The state pattern every vltasks metric shares: per-sample "cat" states plus sample ids.

DistributedSampler pads eval data by repeating samples; keeping one row per id makes the value
independent of the world size. Samples given without an id are all kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

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
        self.add_state("ids", default=[], dist_reduce_fx="cat")

    def _add_sample_state(self, name: str) -> None:
        self.add_state(name, default=[], dist_reduce_fx="cat")

    def _append(self, ids: Sequence[int | str] | Tensor | None, **values: Tensor) -> None:
        """Append one batch: every value has the batch size along dim 0."""
        n = {int(v.shape[0]) for v in values.values()}
        if len(n) != 1:
            shapes = {k: tuple(v.shape) for k, v in values.items()}
            raise ValueError(f"per-sample values disagree on the batch size: {shapes}")
        self.ids.append(optional_ids(ids, n.pop(), device=self.device))
        for name, value in values.items():
            getattr(self, name).append(value.to(self.device))

    def _gathered(self, *names: str) -> list[Tensor]:
        """The de-duplicated per-sample states (all ranks after sync), one tensor per name."""
        ids = self.ids
        if isinstance(ids, list) and len(ids) == 0:
            return [torch.zeros(0, device=self.device) for _ in names]
        keep = keep_indices(dim_zero_cat(ids))
        return [dim_zero_cat(getattr(self, name))[keep] for name in names]
