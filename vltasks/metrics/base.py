"""The state pattern every vltasks metric shares: per-sample "cat" states plus sample ids.

DistributedSampler pads eval data by repeating samples; keeping one row per id makes the value
independent of the world size. Samples given without an id are all kept.

States are stored flat (1-D) with a declared dtype, so that a rank that saw no data can still join
the all-gather (torchmetrics would otherwise send a float32 `tensor([])` whose shape and dtype do not
match the other ranks'); `_gathered` restores one row per sample. Strings cannot be states: a text
state keeps per sample a list of strings as UTF-8 bytes in three such flat states (`_add_text_state`).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate
from typing import Any, TypeVar

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat
from torchmetrics.utilities.distributed import gather_all_tensors

from vltasks.metrics.utilities import keep_indices, optional_ids

# The flat states behind one text state: all strings' UTF-8 bytes back to back, bytes per string,
# strings per sample.
TEXT_PARTS: dict[str, torch.dtype] = {"_bytes": torch.uint8, "_lens": torch.long, "_counts": torch.long}

_Seq = TypeVar("_Seq", bytes, list)
Texts = Sequence[Sequence[str]]  # a list of strings per sample


def _split(seq: _Seq, sizes: list[int]) -> list[_Seq]:
    """Consecutive pieces of `seq` with the given sizes."""
    ends = list(accumulate(sizes))
    return [seq[start:end] for start, end in zip([0, *ends], ends)]


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
        self._text_states: set[str] = set()
        self._add_sample_state("ids", torch.long)

    def plot(self, val: Any = None, ax: Any = None) -> Any:
        """torchmetrics' plot (needs matplotlib): the current value, a dict of values, or a series."""
        return self._plot(val, ax)

    def _add_sample_state(self, name: str, dtype: torch.dtype = torch.float64) -> None:
        self.add_state(name, default=[], dist_reduce_fx="cat")
        self._sample_dtypes[name] = dtype

    def _add_text_state(self, name: str) -> None:
        """A list of strings per sample, given to `_append` under `name`, read with `_gathered_texts`."""
        for suffix, dtype in TEXT_PARTS.items():
            self._add_sample_state(name + suffix, dtype)
        self._text_states.add(name)

    def _push(self, name: str, value: Tensor) -> None:
        getattr(self, name).append(value.detach().to(self.device, self._sample_dtypes[name]).reshape(-1))

    def _encode_texts(self, name: str, rows: Texts) -> dict[str, Tensor]:
        """The flat states of one batch of string lists (checked before anything is stored)."""
        if isinstance(rows, str) or any(isinstance(row, str) for row in rows):
            raise ValueError(f"{name}: need a list of strings per sample, got a bare string")
        encoded = [s.encode("utf-8") for row in rows for s in row]
        blob = bytearray(b"".join(encoded))
        return {
            name + "_bytes": torch.frombuffer(blob, dtype=torch.uint8) if blob else torch.zeros(0),
            name + "_lens": torch.tensor([len(b) for b in encoded], dtype=torch.long),
            name + "_counts": torch.tensor([len(row) for row in rows], dtype=torch.long),
        }

    def _append(self, ids: Sequence[int | str] | Tensor | None, **values: Tensor | Texts) -> None:
        """Append one batch: every value has the batch size along dim 0 (a text state: a list per sample).

        Everything is converted and checked first, so a bad batch leaves the states as they were.
        """
        sizes = {k: len(v) if k in self._text_states else int(v.shape[0]) for k, v in values.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"per-sample values disagree on the batch size: {sizes}")
        parts = {"ids": optional_ids(ids, sizes.popitem()[1], device=self.device)}
        for name, value in values.items():
            parts.update(self._encode_texts(name, value) if name in self._text_states else {name: value})
        for name, value in parts.items():
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

    def _gathered_texts(self, name: str) -> list[list[str]]:
        """The de-duplicated string lists of a text state: the rows `_gathered` keeps, in its order."""
        ids = self._flat("ids")
        data = self._flat(name + "_bytes").cpu().numpy().tobytes()
        strings = [b.decode("utf-8") for b in _split(data, self._flat(name + "_lens").tolist())]
        rows = _split(strings, self._flat(name + "_counts").tolist())
        if len(rows) != ids.numel():
            raise RuntimeError(f"text state {name!r} has {len(rows)} rows for {ids.numel()} samples")
        return [rows[i] for i in keep_indices(ids).tolist()]

    def _sync_dist(self, dist_sync_fn=gather_all_tensors, process_group=None) -> None:  # noqa: ANN001
        for name, dtype in self._sample_dtypes.items():  # a rank without data sends typed empties
            if isinstance(getattr(self, name), list) and not getattr(self, name):
                setattr(self, name, [torch.zeros(0, dtype=dtype, device=self.device)])
        super()._sync_dist(dist_sync_fn, process_group)
