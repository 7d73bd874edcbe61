"""ROUGE-L as the COCO caption evaluation computes it (pycocoevalcap `Rouge`).

Per image: LCS of the hypothesis with each reference; the maximum precision and the maximum recall are
taken separately (they may come from different references), then F with beta = 1.2; mean over images.
Tokens are split on single spaces (so "a  b" has an empty token), unlike rouge-score or torchmetrics.

Speed: the LCS lengths come from the bit-parallel algorithm (Allison-Dix / Crochemore et al.): the
hypothesis positions are bits of one uint64, and each reference token costs three vectorized word
operations over all (image, reference) pairs at once. Hypotheses over 64 tokens use Python integers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vltasks.metrics.functional.caption._ngrams import Encoded, check_caption_inputs, encode

_WORD = 64


def _popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x).astype(np.int64)
    return np.array([bin(int(v)).count("1") for v in x], dtype=np.int64)  # numpy < 2.0


def _lcs_python(hyp: list[str], ref: list[str]) -> int:
    """Same bit-parallel recurrence on an arbitrary-width Python integer."""
    masks: dict[str, int] = {}
    for pos, tok in enumerate(hyp):
        masks[tok] = masks.get(tok, 0) | (1 << pos)
    full = (1 << len(hyp)) - 1
    v = full
    for tok in ref:
        u = v & masks.get(tok, 0)
        v = ((v + u) | (v - u)) & full
    return len(hyp) - bin(v).count("1")


def lcs_lengths(enc: Encoded, hyps: list[list[str]], refs: list[list[str]]) -> np.ndarray:
    """LCS length of every flat reference with the hypothesis of its image (`hyps`/`refs`: long cases)."""
    n_img, ref_image = enc.n_images, enc.ref_image
    hyp_len, ref_len = enc.hyp_len, enc.ref_len
    n_hyp_tok = int(hyp_len.sum())
    hyp_ids, ref_ids = enc.ids[:n_hyp_tok], enc.ids[n_hyp_tok:]
    n_vocab = int(enc.ids.max(initial=0)) + 1
    # match mask of (image, token): OR of the bits of the hypothesis positions holding that token
    hyp_img = np.repeat(np.arange(n_img, dtype=np.int64), hyp_len)
    hyp_pos = np.arange(n_hyp_tok, dtype=np.int64) - np.repeat(np.cumsum(hyp_len) - hyp_len, hyp_len)
    short = hyp_pos < _WORD
    keys, inverse = np.unique(hyp_img[short] * n_vocab + hyp_ids[short], return_inverse=True)
    masks = np.zeros(keys.size, dtype=np.uint64)
    bits = np.left_shift(np.uint64(1), hyp_pos[short].astype(np.uint64))
    np.bitwise_or.at(masks, inverse.reshape(-1), bits)

    # reference tokens ordered by (position, reference rank by decreasing length): at step j the
    # references still running are a prefix of the rank order
    rank_of_ref = np.empty(ref_len.size, dtype=np.int64)
    by_len = np.argsort(-ref_len, kind="stable")
    rank_of_ref[by_len] = np.arange(ref_len.size)
    tok_ref = np.repeat(np.arange(ref_len.size, dtype=np.int64), ref_len)
    tok_pos = np.arange(ref_ids.size, dtype=np.int64) - np.repeat(np.cumsum(ref_len) - ref_len, ref_len)
    order = np.argsort(tok_pos * max(ref_len.size, 1) + rank_of_ref[tok_ref])
    query = ref_image[tok_ref[order]] * n_vocab + ref_ids[order]
    if keys.size == 0:  # no hypothesis tokens at all
        keys, masks = np.array([-1], dtype=np.int64), np.zeros(1, dtype=np.uint64)
    at = np.minimum(np.searchsorted(keys, query), keys.size - 1)
    tok_mask = np.where(keys[at] == query, masks[at], np.uint64(0))
    steps = np.bincount(tok_pos, minlength=int(ref_len.max(initial=0)))

    v = np.full(ref_len.size, np.iinfo(np.uint64).max, dtype=np.uint64)
    start = 0
    for count in steps:
        m = tok_mask[start : start + count]
        head = v[:count]
        u = head & m
        v[:count] = (head + u) | (head - u)
        start += count
    v = v[rank_of_ref]  # back to flat reference order
    m_bits = np.minimum(hyp_len[ref_image], _WORD).astype(np.uint64)
    low = np.where(m_bits == _WORD, np.iinfo(np.uint64).max, (np.uint64(1) << m_bits) - np.uint64(1))
    lcs = hyp_len[ref_image] - _popcount(v & low).astype(np.int64)
    for r in np.flatnonzero(hyp_len[ref_image] > _WORD):
        lcs[r] = _lcs_python(hyps[ref_image[r]], refs[r])
    return lcs


def _rouge_l_per_image(
    enc: Encoded, hyps: list[list[str]], refs: list[list[str]], beta: float = 1.2
) -> np.ndarray:
    """ROUGE-L F of each image (max precision and max recall over its references).

    `enc` must encode the tokens split on single spaces; `hyps`/`refs` (flat) are those tokens.
    """
    lcs = lcs_lengths(enc, hyps, refs).astype(np.float64)
    prec = lcs / enc.hyp_len[enc.ref_image].astype(np.float64)
    rec = lcs / enc.ref_len.astype(np.float64)
    n_refs = np.bincount(enc.ref_image, minlength=enc.n_images)
    starts = np.cumsum(n_refs) - n_refs
    prec_max = np.maximum.reduceat(prec, starts) if prec.size else prec
    rec_max = np.maximum.reduceat(rec, starts) if rec.size else rec
    ok = (prec_max != 0) & (rec_max != 0)
    score = np.zeros(enc.n_images, dtype=np.float64)
    score[ok] = ((1 + beta**2) * prec_max[ok] * rec_max[ok]) / (rec_max[ok] + beta**2 * prec_max[ok])
    return score


def rouge_l(preds: Sequence[str], refs: Sequence[Sequence[str]], beta: float = 1.2) -> float:
    """Mean ROUGE-L (COCO variant) of tokenized captions; tokens are split on single spaces."""
    check_caption_inputs(preds, refs)
    if len(preds) == 0:
        return 0.0
    hyps = [p.split(" ") for p in preds]
    refs_tok = [[r.split(" ") for r in rs] for rs in refs]
    flat = [r for rs in refs_tok for r in rs]
    return float(np.mean(_rouge_l_per_image(encode(hyps, refs_tok), hyps, flat, beta)))
