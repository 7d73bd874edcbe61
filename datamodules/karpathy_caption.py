"""Karpathy's splits read for captioning: the ``karpathy`` reader's records and validation, with
batches shaped for a caption decoder.

Training samples are captions (one per reference, as BLIP trains); evaluation and predict samples
are images with all their reference captions (the COCO caption evaluation scores one generated
caption per image against them). Each batch also carries one reference as ``input_ids`` and
``targets`` (ids, -100 where not scored), so validation reports the teacher-forced caption loss too.

The collate owns the decoder prompt (the head's ``prompt``, e.g. BLIP's "a picture of "): it is
tokenized once, put after the start token of every caption, never scored, and handed to decoding
as ``prompt_ids``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from vltasks.datamodules.base import READERS, Collator
from vltasks.datamodules.karpathy import KarpathyData

from vltasks.objectives import IGNORE_INDEX


class CaptionCollator(Collator):
    """Images + one caption each (teacher forcing, prompt inserted) + the references, ids and paths."""

    def __init__(self, processor: Any, args: dict[str, Any] | None = None) -> None:
        super().__init__(processor)
        prompt = (args or {}).get("prompt", "")
        self.prompt_ids = torch.tensor(processor.token_ids(prompt), dtype=torch.long)

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        per_caption = "caption" in samples[0]
        texts = [s["caption"] if per_caption else s["captions"][0] for s in samples]
        batch: dict[str, Any] = self.processor([s["image"] for s in samples], texts)
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, IGNORE_INDEX)
        ids, mask, labels = with_prompt(self.prompt_ids, batch["input_ids"], batch["attention_mask"], labels)
        batch["input_ids"], batch["attention_mask"], batch["targets"] = fit(
            ids, mask, labels, self.processor.max_text_len
        )
        batch.pop("token_type_ids", None)  # the decoder takes none; the prompt would misalign them
        batch["prompt_ids"] = self.prompt_ids
        if not per_caption:
            batch["captions"] = [list(s["captions"]) for s in samples]
        return self.copy(batch, samples, lists=("sample_id", "image_path"), ids=("image_id",))


@READERS.register("karpathy_caption")
class KarpathyCaptionData(KarpathyData):
    format = "karpathy_caption"
    collator = CaptionCollator

    def samples(self, stage: str) -> list[dict[str, Any]]:
        """Captions for training (``train_unit=caption``), else images (no retrieval gallery)."""
        if stage == "train" and self.opts["train_unit"] == "caption":
            return self.captions(stage)
        return self.images(stage)


def with_prompt(
    prompt: Tensor, input_ids: Tensor, attention_mask: Tensor, labels: Tensor
) -> tuple[Tensor, ...]:
    """Insert the prompt after the start token; the prompt and padding are never targets."""
    if prompt.numel() == 0:
        return input_ids, attention_mask, labels
    b, p = input_ids.shape[0], prompt.numel()
    ids = torch.cat([input_ids[:, :1], prompt.expand(b, p), input_ids[:, 1:]], dim=1)
    mask = torch.cat([attention_mask[:, :1], attention_mask.new_ones(b, p), attention_mask[:, 1:]], dim=1)
    ignore = labels.new_full((b, p), IGNORE_INDEX)
    return ids, mask, torch.cat([labels[:, :1], ignore, labels[:, 1:]], dim=1)


def fit(ids: Tensor, mask: Tensor, labels: Tensor, limit: int) -> tuple[Tensor, Tensor, Tensor]:
    """Cut rows to the decoder's positions as the tokenizer would: a row the prompt pushed past
    ``limit`` loses caption tokens but keeps its end token, so the model still learns to stop."""
    if ids.shape[1] <= limit:
        return ids, mask, labels
    last = mask.shape[1] - 1 - mask.flip(1).argmax(1)  # the end token: the last unmasked position
    rows = torch.arange(ids.shape[0], device=ids.device)
    end_ids, end_labels = ids[rows, last], labels[rows, last]
    ids, mask, labels = ids[:, :limit].clone(), mask[:, :limit], labels[:, :limit].clone()
    over = last >= limit
    ids[over, limit - 1] = end_ids[over]
    labels[over, limit - 1] = end_labels[over]
    return ids, mask, labels
