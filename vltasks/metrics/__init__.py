"""Official-protocol metrics as torchmetrics Metrics; needs only torch and torchmetrics.

Every class keeps per-sample states ("cat") and accepts optional sample ids in `update`, so a
sample repeated by a padding DistributedSampler counts once and 2 processes give the 1-process value.
"""

from vltasks.metrics.caption import *  # noqa: F403
from vltasks.metrics.caption import __all__ as _caption_all
from vltasks.metrics.choice import EntailmentAccuracy, MultipleChoiceAccuracy, VCRAccuracy
from vltasks.metrics.densecap import DenseCapMAP
from vltasks.metrics.grounding import GroundingAccuracy, MaskIoU
from vltasks.metrics.ocr_vqa import ANLS, ExactMatch, RelaxedAccuracy, TokenF1
from vltasks.metrics.retrieval import ImageTextRetrieval
from vltasks.metrics.temporal import MomentRetrievalMetrics, TemporalGroundingRecall
from vltasks.metrics.visdial import VisDialMetrics
from vltasks.metrics.vqa import VQAAccuracy

__all__ = [
    *_caption_all,
    "ANLS",
    "DenseCapMAP",
    "EntailmentAccuracy",
    "ExactMatch",
    "GroundingAccuracy",
    "ImageTextRetrieval",
    "MaskIoU",
    "MomentRetrievalMetrics",
    "MultipleChoiceAccuracy",
    "RelaxedAccuracy",
    "TemporalGroundingRecall",
    "TokenF1",
    "VCRAccuracy",
    "VisDialMetrics",
    "VQAAccuracy",
]
