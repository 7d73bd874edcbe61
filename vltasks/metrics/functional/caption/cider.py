"""CIDEr-D as the COCO caption evaluation computes it (pycocoevalcap `Cider`, reported as "CIDEr").

The document frequency of an n-gram is the number of evaluated images whose references contain it, and
ref_len = log(#images): the score depends on the whole evaluated set, so it cannot be averaged over
batches (a metric class keeps all captions and computes once). With a single image every idf is 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vltasks.metrics.functional.caption._ngrams import NGramStats, check_caption_inputs, encode, ngram_stats


def _cider_per_image(stats: NGramStats, sigma: float = 6.0) -> np.ndarray:
    """CIDEr-D of every image: mean over orders and references of the clipped tf-idf cosine, x10."""
    n_images, n_refs = stats.n_images, stats.ref_image.size
    log_images = np.log(float(n_images))
    # lengths for the penalty are bigram counts (as in the reference implementation)
    hyp_length = np.maximum(stats.hyp_len - 1, 0) if len(stats.orders) > 1 else np.zeros(n_images)
    ref_length = np.maximum(stats.ref_len - 1, 0) if len(stats.orders) > 1 else np.zeros(n_refs)
    delta = (hyp_length[stats.ref_image] - ref_length).astype(np.float64)
    penalty = np.e ** (-(delta**2) / (2 * sigma**2))
    total = np.zeros(n_refs, dtype=np.float64)
    for order in stats.orders:
        weight = log_images - np.log(np.maximum(1.0, order.doc_freq.astype(np.float64)))
        hyp_vec = order.hyp_cnt * weight[order.hyp_gram]
        ref_w = weight[order.ref_gram]
        ref_vec = order.ref_cnt * ref_w
        hyp_norm = np.sqrt(np.bincount(order.hyp_image, weights=hyp_vec**2, minlength=n_images))
        ref_norm = np.sqrt(np.bincount(order.ref_idx, weights=ref_vec**2, minlength=n_refs))
        # sum over the hypothesis n-grams of min(hyp, ref) * ref; absent n-grams have ref = 0
        clipped = np.minimum(order.ref_hyp_cnt * ref_w, ref_vec) * ref_vec
        val = np.bincount(order.ref_idx, weights=clipped, minlength=n_refs).astype(np.float64)
        denom = hyp_norm[stats.ref_image] * ref_norm
        nonzero = denom != 0
        val[nonzero] /= denom[nonzero]
        total += val * penalty
    per_image = np.bincount(stats.ref_image, weights=total, minlength=n_images)
    n_refs_per_image = np.bincount(stats.ref_image, minlength=n_images)
    return per_image / len(stats.orders) / n_refs_per_image * 10.0


def cider_d(
    preds: Sequence[str], refs: Sequence[Sequence[str]], n_gram: int = 4, sigma: float = 6.0
) -> float:
    """Corpus CIDEr-D (mean over images) of tokenized captions; 0 for a single image."""
    check_caption_inputs(preds, refs)
    if len(preds) == 0:
        return 0.0
    enc = encode([p.split() for p in preds], [[r.split() for r in rs] for rs in refs])
    stats = ngram_stats(enc, n_gram)
    return float(np.mean(_cider_per_image(stats, sigma)))
