"""Functional forms of the vltasks metrics: plain functions over tensors and strings."""

from vltasks.metrics.functional.caption import *  # noqa: F403
from vltasks.metrics.functional.caption import __all__ as _caption_all
from vltasks.metrics.functional.choice import entailment_accuracy, multiple_choice_accuracy, vcr_accuracy
from vltasks.metrics.functional.densecap import densecap_map
from vltasks.metrics.functional.grounding import grounding_accuracy, mask_iou
from vltasks.metrics.functional.ocr_vqa import anls, exact_match, relaxed_accuracy, token_f1
from vltasks.metrics.functional.retrieval import retrieval_map, retrieval_recall
from vltasks.metrics.functional.temporal import moment_retrieval_metrics, temporal_grounding_recall
from vltasks.metrics.functional.visdial import visdial_metrics
from vltasks.metrics.functional.vqa import normalize_vqa_answer, vqa_accuracy, vqa_scores

__all__ = [
    *_caption_all,
    "anls",
    "densecap_map",
    "entailment_accuracy",
    "exact_match",
    "grounding_accuracy",
    "mask_iou",
    "moment_retrieval_metrics",
    "multiple_choice_accuracy",
    "normalize_vqa_answer",
    "relaxed_accuracy",
    "retrieval_map",
    "retrieval_recall",
    "temporal_grounding_recall",
    "token_f1",
    "vcr_accuracy",
    "visdial_metrics",
    "vqa_accuracy",
    "vqa_scores",
]
