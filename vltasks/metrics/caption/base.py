"""Shared state handling of the caption metrics: captions kept as UTF-8 bytes, exact under DDP.

COCO metrics are corpus-level (BLEU pools counts, CIDEr-D's idf depends on every image), so a metric
keeps all captions and scores once in `compute`. Each sample's prediction and references are one row of
a `SampleMetric` text state (UTF-8 bytes in flat "cat" states), so after a DDP sync every process sees
every caption, a process that saw none still joins the gather, and with `ids` a sample seen twice (e.g.
the padding that DistributedSampler adds) counts once: the value does not depend on the world size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from vltasks.metrics.base import SampleMetric
from vltasks.metrics.functional.caption._ngrams import check_caption_inputs
from vltasks.metrics.functional.caption.tokenize import TOKENIZERS, tokenize_captions


class CaptionMetricBase(SampleMetric):
    """Accumulates (prediction, references, id) triples; subclasses score them in `_score`."""

    def __init__(self, tokenizer: str = "ptb", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if tokenizer not in TOKENIZERS:
            raise ValueError(f"tokenizer must be one of {sorted(TOKENIZERS)}, got {tokenizer!r}")
        self.tokenizer = tokenizer
        self._add_text_state("captions")  # per sample: the prediction, then its references

    def update(
        self,
        preds: Sequence[str],
        refs: Sequence[Sequence[str]],
        ids: Sequence[int | str] | Tensor | None = None,
    ) -> None:
        """Add one predicted caption and its reference captions per sample (raw text, not tokenized)."""
        check_caption_inputs(preds, refs)
        self._append(ids, captions=[[p, *rs] for p, rs in zip(preds, refs, strict=True)])

    def captions(self) -> tuple[list[str], list[list[str]]]:
        """All (predictions, references) seen so far, on every process, duplicates by id removed."""
        rows = self._gathered_texts("captions")
        return [row[0] for row in rows], [row[1:] for row in rows]

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
