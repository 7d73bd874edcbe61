"""Functional forms of the vltasks metrics: plain functions over tensors and strings."""

from vltasks.metrics.functional.caption import *  # noqa: F403
from vltasks.metrics.functional.caption import __all__ as _caption_all
from vltasks.metrics.functional.choice import entailment_accuracy, multiple_choice_accuracy, vcr_accuracy
from vltasks.metrics.functional.densecap import densecap_map
from vltasks.metrics.functional.grounding import grounding_accuracy, mask_iou
from vltasks.metrics.functional.highlight import highlight_detection_metrics, qvhighlights_gt_saliency
from vltasks.metrics.functional.ocr_vqa import anls, exact_match, relaxed_accuracy, token_f1
from vltasks.metrics.functional.qvhighlights import qvhighlights_eval
from vltasks.metrics.functional.retrieval import retrieval_map, retrieval_recall, video_retrieval_metrics
from vltasks.metrics.functional.retrieval_rerank import rerank_recalls
from vltasks.metrics.functional.temporal import (
    didemo_moment_metrics,
    didemo_rank_moments,
    moment_retrieval_metrics,
    temporal_grounding_recall,
)
from vltasks.metrics.functional.video_qa import count_mse, nextqa_accuracy
from vltasks.metrics.functional.visdial import visdial_metrics
from vltasks.metrics.functional.vqa import normalize_vqa_answer, vqa_accuracy, vqa_scores

__all__ = [
    *_caption_all,
    "anls",
    "count_mse",
    "densecap_map",
    "didemo_moment_metrics",
    "didemo_rank_moments",
    "entailment_accuracy",
    "exact_match",
    "grounding_accuracy",
    "highlight_detection_metrics",
    "mask_iou",
    "moment_retrieval_metrics",
    "multiple_choice_accuracy",
    "nextqa_accuracy",
    "normalize_vqa_answer",
    "qvhighlights_eval",
    "qvhighlights_gt_saliency",
    "relaxed_accuracy",
    "rerank_recalls",
    "retrieval_map",
    "retrieval_recall",
    "temporal_grounding_recall",
    "token_f1",
    "vcr_accuracy",
    "video_retrieval_metrics",
    "visdial_metrics",
    "vqa_accuracy",
    "vqa_scores",
]
