"""Shared state handling of the caption metrics: captions kept as UTF-8 bytes, exact under DDP.

COCO metrics are corpus-level (BLEU pools counts, CIDEr-D's idf depends on every image), so a metric
keeps all captions and scores once in `compute`. Strings cannot be metric states, so each update stores
its captions as one uint8 tensor of UTF-8 bytes plus per-string lengths; all states are "cat" lists, so
after a DDP sync every process sees every caption. With `ids`, a sample seen twice (e.g. the padding
that DistributedSampler adds) counts once, so the value does not depend on the world size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from vltasks.metrics.functional.caption._ngrams import check_caption_inputs
from vltasks.metrics.functional.caption.tokenize import TOKENIZERS, tokenize_captions
from vltasks.metrics.utilities import first_occurrence, ids_to_tensor


class CaptionMetricBase(Metric):
    """Accumulates (prediction, references, id) triples; subclasses score them in `_score`."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    plot_lower_bound = 0.0
    plot_upper_bound = 1.0

    def __init__(self, tokenizer: str = "ptb", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if tokenizer not in TOKENIZERS:
            raise ValueError(f"tokenizer must be one of {sorted(TOKENIZERS)}, got {tokenizer!r}")
        self.tokenizer = tokenizer
        self.add_state("text_bytes", default=[], dist_reduce_fx="cat")  # uint8, all strings back to back
        self.add_state("text_lens", default=[], dist_reduce_fx="cat")  # bytes per string
        self.add_state("num_refs", default=[], dist_reduce_fx="cat")  # references per sample
        self.add_state("sample_ids", default=[], dist_reduce_fx="cat")  # id per sample (0 when none)
        self.add_state("has_id", default=[], dist_reduce_fx="cat")  # 1 where an id was given

    def plot(self, val: Any = None, ax: Any = None) -> Any:
        """torchmetrics' plot (needs matplotlib): the current value, a dict of values, or a series."""
        return self._plot(val, ax)

    def update(
        self,
        preds: Sequence[str],
        refs: Sequence[Sequence[str]],
        ids: Sequence[int | str] | Tensor | None = None,
    ) -> None:
        """Add one predicted caption and its reference captions per sample (raw text, not tokenized)."""
        check_caption_inputs(preds, refs)
        if ids is not None and len(ids) != len(preds):
            raise ValueError(f"got {len(ids)} ids for {len(preds)} predictions")
        encoded = [s.encode("utf-8") for p, rs in zip(preds, refs, strict=True) for s in (p, *rs)]
        blob = bytearray(b"".join(encoded))
        device = self.device
        self.text_bytes.append(
            torch.frombuffer(blob, dtype=torch.uint8).clone().to(device)
            if blob
            else torch.zeros(0, dtype=torch.uint8, device=device)
        )
        self.text_lens.append(torch.tensor([len(b) for b in encoded], dtype=torch.long, device=device))
        self.num_refs.append(torch.tensor([len(rs) for rs in refs], dtype=torch.long, device=device))
        if ids is None:
            self.sample_ids.append(torch.zeros(len(preds), dtype=torch.long, device=device))
            self.has_id.append(torch.zeros(len(preds), dtype=torch.long, device=device))
        else:
            self.sample_ids.append(ids_to_tensor(ids, device=device))
            self.has_id.append(torch.ones(len(preds), dtype=torch.long, device=device))

    def _sync_dist(self, dist_sync_fn: Any = None, process_group: Any = None) -> None:
        """A process that saw no caption must still send its states with their dtypes, or the gather breaks.

        (torchmetrics sends an empty tensor of the metric's float dtype, which cannot join uint8/int64 ones.)
        """
        for name in ("text_bytes", "text_lens", "num_refs", "sample_ids", "has_id"):
            if isinstance(getattr(self, name), list) and len(getattr(self, name)) == 0:
                dtype = torch.uint8 if name == "text_bytes" else torch.long
                setattr(self, name, [torch.zeros(0, dtype=dtype, device=self.device)])
        kwargs = {} if dist_sync_fn is None else {"dist_sync_fn": dist_sync_fn}
        super()._sync_dist(process_group=process_group, **kwargs)

    def captions(self) -> tuple[list[str], list[list[str]]]:
        """All (predictions, references) seen so far, on every process, duplicates by id removed."""
        if isinstance(self.text_lens, list) and len(self.text_lens) == 0:
            return [], []
        data = bytes(dim_zero_cat(self.text_bytes).cpu().numpy().tobytes())
        lens = dim_zero_cat(self.text_lens).cpu().tolist()
        num_refs = dim_zero_cat(self.num_refs).cpu().tolist()
        strings, start = [], 0
        for n in lens:
            strings.append(data[start : start + n].decode("utf-8"))
            start += n
        preds, refs, pos = [], [], 0
        for n in num_refs:
            preds.append(strings[pos])
            refs.append(strings[pos + 1 : pos + 1 + n])
            pos += 1 + n
        ids, has_id = dim_zero_cat(self.sample_ids).cpu(), dim_zero_cat(self.has_id).cpu().bool()
        if has_id.any():
            with_id = torch.nonzero(has_id).reshape(-1)
            keep = torch.cat([torch.nonzero(~has_id).reshape(-1), with_id[first_occurrence(ids[with_id])]])
            keep = torch.sort(keep).values.tolist()
            preds, refs = [preds[i] for i in keep], [refs[i] for i in keep]
        return preds, refs

    def tokenized(self) -> tuple[list[str], list[list[str]]]:
        """The captions after this metric's tokenizer (the COCO protocol tokenizes before scoring)."""
        preds, refs = self.captions()
        return tokenize_captions(preds, refs, self.tokenizer) if preds else ([], [])

    def compute(self) -> Any:
        preds, refs = self.tokenized()
        return self._score(preds, refs)

    def _score(self, preds: list[str], refs: list[list[str]]) -> Any:
        raise NotImplementedError


def scalar(value: float) -> Tensor:
    """Scores stay float64: the COCO numbers are compared to 1e-9."""
    return torch.tensor(value, dtype=torch.float64)
