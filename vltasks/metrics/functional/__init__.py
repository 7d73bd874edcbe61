"""Functional forms of the vltasks metrics: plain functions over tensors and strings."""

from vltasks.metrics.functional.caption import *  # noqa: F403
from vltasks.metrics.functional.caption import __all__ as _caption_all
from vltasks.metrics.functional.vqa import normalize_vqa_answer, vqa_accuracy, vqa_scores

__all__ = [
    *_caption_all,
    "normalize_vqa_answer",
    "vqa_accuracy",
    "vqa_scores",
]
