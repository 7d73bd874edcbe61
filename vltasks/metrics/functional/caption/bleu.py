"""Corpus BLEU-1..n as the COCO caption evaluation computes it (pycocoevalcap `Bleu`, option "closest").

Why not torchmetrics' BLEUScore: COCO smooths every precision as (correct + 1e-15) / (guess + 1e-9), so
BLEU-4 is tiny but never exactly 0, picks the closest reference length with ties going to the shorter,
and works in float64. Inputs are captions already tokenized into space-separated tokens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from vltasks.metrics.functional.caption._ngrams import NGramStats, check_caption_inputs, encode, ngram_stats

_TINY = 1e-15
_SMALL = 1e-9


def _closest_ref_len(stats: NGramStats) -> np.ndarray:
    """Per image, the reference length closest to the hypothesis length (ties: the shorter one)."""
    hyp = stats.hyp_len[stats.ref_image]
    # sort by (image, |ref - hyp|, ref): the first entry of each image is the chosen length
    order = np.lexsort((stats.ref_len, np.abs(stats.ref_len - hyp), stats.ref_image))
    img_sorted = stats.ref_image[order]
    first = np.ones(order.size, dtype=bool)
    first[1:] = img_sorted[1:] != img_sorted[:-1]
    out = np.zeros(stats.n_images, dtype=np.int64)
    out[img_sorted[first]] = stats.ref_len[order][first]
    return out


def _bleu_update(stats: NGramStats, n_gram: int = 4) -> dict:
    """Corpus totals: testlen, reflen, guess[k], correct[k] (the figures pycocoevalcap prints)."""
    if n_gram > len(stats.orders):
        raise ValueError(f"stats hold {len(stats.orders)} orders, BLEU-{n_gram} needs {n_gram}")
    correct = []
    for order in stats.orders[:n_gram]:
        shared = order.ref_hyp_cnt > 0
        if not shared.any():
            correct.append(0)
            continue
        # clipped count of an n-gram = min(hyp count, max over refs) = max over refs of min(hyp, ref)
        clipped = np.minimum(order.ref_hyp_cnt[shared], order.ref_cnt[shared])
        group = order.ref_group[shared]
        starts = np.flatnonzero(np.concatenate([[True], group[1:] != group[:-1]]))
        correct.append(int(np.maximum.reduceat(clipped, starts).sum()))
    hyp_len = stats.hyp_len
    guess = [int(np.maximum(hyp_len - k, 0).sum()) for k in range(n_gram)]
    return {
        "testlen": int(hyp_len.sum()),
        "reflen": int(_closest_ref_len(stats).sum()),
        "guess": guess,
        "correct": correct,
    }


def _bleu_compute(totals: dict) -> list[float]:
    """BLEU-1..n from corpus totals, in the same float operations as the reference implementation."""
    scores = []
    bleu = 1.0
    for k, (correct, guess) in enumerate(zip(totals["correct"], totals["guess"], strict=True)):
        bleu *= float(correct + _TINY) / (guess + _SMALL)
        scores.append(bleu ** (1.0 / (k + 1)))
    ratio = (totals["testlen"] + _TINY) / (totals["reflen"] + _SMALL)
    if ratio < 1:
        scores = [s * math.exp(1 - 1 / ratio) for s in scores]
    return scores


def bleu_score(preds: Sequence[str], refs: Sequence[Sequence[str]], n_gram: int = 4) -> list[float]:
    """Corpus BLEU-1..`n_gram` of tokenized captions (one prediction, several references per image).

    Tokens are split on whitespace, as pycocoevalcap does. Returns [Bleu_1, ..., Bleu_n].
    """
    check_caption_inputs(preds, refs)
    enc = encode([p.split() for p in preds], [[r.split() for r in rs] for rs in refs])
    stats = ngram_stats(enc, n_gram)
    return _bleu_compute(_bleu_update(stats, n_gram))
