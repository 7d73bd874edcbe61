"""All COCO caption metrics in one call, with the tokens and n-gram counts computed once.

Defaults: the pure-Python PTB tokenizer and the metrics that need no Java (BLEU, ROUGE-L, CIDEr-D); ask
for "METEOR" / "SPICE" explicitly (they run the official jars), and for tokenizer="ptb-java" to get the
official tokenization bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vltasks.metrics.functional.caption._ngrams import check_caption_inputs, encode, ngram_stats
from vltasks.metrics.functional.caption.bleu import _bleu_compute, _bleu_update
from vltasks.metrics.functional.caption.cider import _cider_per_image
from vltasks.metrics.functional.caption.meteor import meteor_score
from vltasks.metrics.functional.caption.rouge import _rouge_l_per_image
from vltasks.metrics.functional.caption.spice import spice_score
from vltasks.metrics.functional.caption.tokenize import tokenize_captions

METRIC_NAMES = ("Bleu", "METEOR", "ROUGE_L", "CIDEr", "SPICE")
DEFAULT_METRICS = ("Bleu", "ROUGE_L", "CIDEr")
KEYS = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr", "SPICE")


def _check_metrics(metrics: Sequence[str]) -> tuple[str, ...]:
    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    unknown = [m for m in metrics if m not in METRIC_NAMES]
    if unknown or not metrics:
        raise ValueError(f"metrics must be a non-empty subset of {METRIC_NAMES}, got {metrics}")
    return metrics


def scores_from_tokens(
    preds: Sequence[str], refs: Sequence[Sequence[str]], metrics: Sequence[str] = DEFAULT_METRICS
) -> dict[str, float]:
    """COCO scores of captions that are already tokenized (space-separated tokens)."""
    metrics = _check_metrics(metrics)
    check_caption_inputs(preds, refs)
    out: dict[str, float] = {}
    if len(preds) == 0:
        return out
    hyp_tok = [p.split() for p in preds]
    ref_tok = [[r.split() for r in rs] for rs in refs]
    enc = None
    if "Bleu" in metrics or "CIDEr" in metrics:
        enc = encode(hyp_tok, ref_tok)
        stats = ngram_stats(enc, 4)
        if "Bleu" in metrics:
            for k, value in enumerate(_bleu_compute(_bleu_update(stats, 4))):
                out[f"Bleu_{k + 1}"] = value
        if "CIDEr" in metrics:
            out["CIDEr"] = float(np.mean(_cider_per_image(stats)))
    if "METEOR" in metrics:
        out["METEOR"] = meteor_score(preds, refs)[0]
    if "ROUGE_L" in metrics:
        # ROUGE-L splits on single spaces: reuse the ids when that gives the same tokens as split()
        flat = [r for rs in refs for r in rs]
        same = all(
            s and " ".join(t) == s
            for s, t in zip(list(preds) + flat, hyp_tok + [t for ts in ref_tok for t in ts])
        )
        if not same or enc is None:
            hyp_tok = [p.split(" ") for p in preds]
            ref_tok = [[r.split(" ") for r in rs] for rs in refs]
            enc = encode(hyp_tok, ref_tok)
        flat_tok = [t for ts in ref_tok for t in ts]
        out["ROUGE_L"] = float(np.mean(_rouge_l_per_image(enc, hyp_tok, flat_tok)))
    if "SPICE" in metrics:
        out["SPICE"] = spice_score(preds, refs)[0]
    return {k: out[k] for k in KEYS if k in out}  # pycocoevalcap's order


def coco_caption_scores(
    preds: Sequence[str],
    refs: Sequence[Sequence[str]],
    tokenizer: str = "ptb",
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> dict[str, float]:
    """COCO caption evaluation of raw captions: tokenize ("ptb", "ptb-java" or "none"), then score.

    Returns pycocoevalcap's keys for the metrics asked: Bleu_1..Bleu_4, METEOR, ROUGE_L, CIDEr, SPICE.
    """
    metrics = _check_metrics(metrics)
    check_caption_inputs(preds, refs)
    hyp, ref = tokenize_captions(preds, refs, tokenizer)
    return scores_from_tokens(hyp, ref, metrics)
