"""Karpathy's splits read for captioning: the ``karpathy`` reader's records and validation, with
batches shaped for a caption decoder.

Training samples are captions (one per reference, as BLIP trains); evaluation and predict samples
are images with all their reference captions (the COCO caption evaluation scores one generated
caption per image against them). Each batch also carries one reference as ``input_ids`` and
``targets`` (ids, -100 on padding), so validation reports the teacher-forced caption loss too.
"""

from __future__ import annotations

from typing import Any

import torch
from vltasks.datamodules.base import READERS
from vltasks.datamodules.karpathy import KarpathyData

from vltasks.objectives import IGNORE_INDEX


@READERS.register("karpathy_caption")
class KarpathyCaptionData(KarpathyData):
    format = "karpathy_caption"

    def samples(self, stage: str) -> list[dict[str, Any]]:
        """Captions for training (``train_unit=caption``), else images (no retrieval gallery)."""
        if stage == "train" and self.opts["train_unit"] == "caption":
            return self.captions(stage)
        return self.images(stage)

    def collate(self, processor: Any, head_args: dict[str, Any]) -> CaptionCollator:
        return CaptionCollator(processor)


class CaptionCollator:
    """Images + one caption each (teacher forcing) + the references, ids and paths heads need."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        per_caption = "caption" in samples[0]
        texts = [s["caption"] if per_caption else s["captions"][0] for s in samples]
        batch: dict[str, Any] = self.processor([s["image"] for s in samples], texts)
        batch["targets"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, IGNORE_INDEX)
        if not per_caption:
            batch["captions"] = [list(s["captions"]) for s in samples]
        batch["sample_id"] = [s["sample_id"] for s in samples]
        batch["image_id"] = torch.tensor([s["image_id"] for s in samples], dtype=torch.long)
        batch["image_path"] = [s["image_path"] for s in samples]
        return batch
