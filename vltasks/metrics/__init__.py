"""Official-protocol metrics as torchmetrics Metrics; needs only torch and torchmetrics.

Every class keeps per-sample states ("cat") and accepts optional sample ids in `update`, so a
sample repeated by a padding DistributedSampler counts once and 2 processes give the 1-process value.
"""

from vltasks.metrics.caption import *  # noqa: F403
from vltasks.metrics.caption import __all__ as _caption_all
from vltasks.metrics.choice import EntailmentAccuracy, MultipleChoiceAccuracy, VCRAccuracy
from vltasks.metrics.densecap import DenseCapMAP
from vltasks.metrics.functional.qvhighlights import qvhighlights_eval
from vltasks.metrics.grounding import GroundingAccuracy, MaskIoU
from vltasks.metrics.highlight import HighlightDetectionMetrics
from vltasks.metrics.ocr_vqa import ANLS, ExactMatch, RelaxedAccuracy, TokenF1
from vltasks.metrics.retrieval import ImageTextRetrieval, VideoTextRetrieval
from vltasks.metrics.retrieval_rerank import RetrievalCache
from vltasks.metrics.temporal import DiDeMoMoments, MomentRetrievalMetrics, TemporalGroundingRecall
from vltasks.metrics.video_qa import CountMSE, NExTQAAccuracy
from vltasks.metrics.visdial import VisDialMetrics
from vltasks.metrics.vqa import VQAAccuracy

__all__ = [
    *_caption_all,
    "ANLS",
    "CountMSE",
    "DenseCapMAP",
    "DiDeMoMoments",
    "EntailmentAccuracy",
    "ExactMatch",
    "GroundingAccuracy",
    "HighlightDetectionMetrics",
    "ImageTextRetrieval",
    "MaskIoU",
    "MomentRetrievalMetrics",
    "MultipleChoiceAccuracy",
    "NExTQAAccuracy",
    "RelaxedAccuracy",
    "RetrievalCache",
    "TemporalGroundingRecall",
    "TokenF1",
    "VCRAccuracy",
    "VideoTextRetrieval",
    "VisDialMetrics",
    "VQAAccuracy",
    "qvhighlights_eval",
]
