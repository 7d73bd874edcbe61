"""Captioning metrics (COCO caption evaluation protocol): torchmetrics classes, exact under DDP."""

from vltasks.metrics.caption.base import CaptionMetricBase
from vltasks.metrics.caption.metrics import BLEU, METEOR, ROUGEL, SPICE, CaptionMetrics, CIDEr

__all__ = ["BLEU", "CIDEr", "CaptionMetricBase", "CaptionMetrics", "METEOR", "ROUGEL", "SPICE"]
