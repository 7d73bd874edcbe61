"""Official-protocol metrics as torchmetrics Metrics; needs only torch and torchmetrics."""

from vltasks.metrics.caption import *  # noqa: F403
from vltasks.metrics.caption import __all__ as _caption_all
from vltasks.metrics.vqa import VQAAccuracy

__all__ = [
    *_caption_all,
    "VQAAccuracy",
]
