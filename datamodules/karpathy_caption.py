"""Karpathy's splits read for captioning: the ``karpathy`` reader's records and validation, with
batches shaped for a caption decoder (datamodules/caption_corpus.py: `CaptionBatches`).

Training samples are captions (one per reference, as BLIP trains); evaluation and predict samples
are images with all their reference captions (the COCO caption evaluation scores one generated
caption per image against them). Each batch also carries one reference as ``input_ids`` and
``targets`` (ids, -100 where not scored), so validation reports the teacher-forced caption loss too.
"""

from __future__ import annotations

from vltasks.datamodules.base import READERS
from vltasks.datamodules.caption_corpus import CaptionBatches
from vltasks.datamodules.karpathy import KarpathyData


@READERS.register("karpathy_caption")
class KarpathyCaptionData(CaptionBatches, KarpathyData):
    format = "karpathy_caption"
