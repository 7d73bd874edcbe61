"""Captioning metrics (COCO caption evaluation protocol): functional forms.

Each function reproduces pycocoevalcap 1.2 (see docs/metrics_caption.md); BLEU, ROUGE-L and CIDEr-D take
captions already tokenized into space-separated tokens, `coco_caption_scores` tokenizes raw captions.
"""

from vltasks.metrics.functional.caption._java import JavaUnavailableError
from vltasks.metrics.functional.caption.bleu import bleu_score
from vltasks.metrics.functional.caption.cider import cider_d
from vltasks.metrics.functional.caption.coco import coco_caption_scores, scores_from_tokens
from vltasks.metrics.functional.caption.meteor import meteor_per_sentence, meteor_score
from vltasks.metrics.functional.caption.rouge import rouge_l
from vltasks.metrics.functional.caption.spice import spice_score
from vltasks.metrics.functional.caption.tokenize import (
    PUNCTUATIONS,
    ptb_tokenize,
    ptb_tokenize_java,
    tokenize_captions,
    whitespace_tokenize,
)

__all__ = [
    "JavaUnavailableError",
    "PUNCTUATIONS",
    "bleu_score",
    "cider_d",
    "coco_caption_scores",
    "meteor_per_sentence",
    "meteor_score",
    "ptb_tokenize",
    "ptb_tokenize_java",
    "rouge_l",
    "scores_from_tokens",
    "spice_score",
    "tokenize_captions",
    "whitespace_tokenize",
]
