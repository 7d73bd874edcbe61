"""N-gram counts of a whole caption set as numpy arrays, extracted once and shared by BLEU and CIDEr-D.

pycocoevalcap counts n-grams with one Python dict per sentence and walks them again per metric. Here the
tokens become integer ids, every n-gram a dense integer id (built order by order with `np.unique`), and
one sort per order lays the counts out by (n-gram, image, sentence) with the hypothesis first: the
hypothesis count of every reference entry, the clipped BLEU counts and the CIDEr document frequencies are
then group operations on contiguous runs.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def check_caption_inputs(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> None:
    """The COCO tools assert one prediction and at least one reference per image; say which is wrong."""
    if isinstance(preds, str) or not all(isinstance(p, str) for p in preds):
        raise TypeError("preds must be a list of strings (one caption per image)")
    if len(preds) != len(refs):
        raise ValueError(f"got {len(preds)} predictions but {len(refs)} reference lists")
    for i, r in enumerate(refs):
        if isinstance(r, str) or len(r) == 0 or not all(isinstance(x, str) for x in r):
            raise ValueError(f"refs[{i}] must be a non-empty list of strings, got {r!r}")


@dataclass
class Encoded:
    """Token ids of one hypothesis and several references per image (hypotheses first, then refs)."""

    ids: np.ndarray  # flat int64 token ids of all sentences
    lengths: np.ndarray  # tokens per sentence
    ref_image: np.ndarray  # image index of each flat reference
    n_images: int

    @property
    def hyp_len(self) -> np.ndarray:
        return self.lengths[: self.n_images]

    @property
    def ref_len(self) -> np.ndarray:
        return self.lengths[self.n_images :]


def encode(hyp_tokens: list[list[str]], ref_tokens: list[list[list[str]]]) -> Encoded:
    """Integer ids for the tokens (one C-level pass through a dict)."""
    vocab: defaultdict[str, int] = defaultdict(itertools.count().__next__)
    flat_refs = list(itertools.chain.from_iterable(ref_tokens))
    sentences = hyp_tokens + flat_refs
    ids = np.fromiter(map(vocab.__getitem__, itertools.chain.from_iterable(sentences)), dtype=np.int64)
    lengths = np.fromiter(map(len, sentences), dtype=np.int64, count=len(sentences))
    ref_image = np.repeat(np.arange(len(hyp_tokens), dtype=np.int64), [len(r) for r in ref_tokens])
    return Encoded(ids, lengths, ref_image, len(hyp_tokens))


@dataclass
class OrderCounts:
    """Counts of the n-grams of one order (key = image * n_grams + gram id)."""

    n_grams: int
    hyp_image: np.ndarray  # hypothesis entries: image, gram, count
    hyp_gram: np.ndarray
    hyp_cnt: np.ndarray
    ref_idx: np.ndarray  # reference entries: flat reference index, gram, count,
    ref_gram: np.ndarray
    ref_cnt: np.ndarray
    ref_hyp_cnt: np.ndarray  # count of the same gram in the image's hypothesis (0 if absent)
    ref_group: np.ndarray  # id of the (image, gram) run, non-decreasing
    doc_freq: np.ndarray  # per gram: number of images whose references contain it


@dataclass
class NGramStats:
    """Everything BLEU and CIDEr-D need from a tokenized caption set."""

    n_images: int
    ref_image: np.ndarray
    hyp_len: np.ndarray
    ref_len: np.ndarray
    orders: list[OrderCounts]  # orders 1..n


def _starts_of_runs(sorted_values: np.ndarray) -> np.ndarray:
    """True where a run of equal values begins (empty in, empty out)."""
    new = np.ones(sorted_values.size, dtype=bool)
    new[1:] = sorted_values[1:] != sorted_values[:-1]
    return new


def ngram_stats(enc: Encoded, n: int = 4) -> NGramStats:
    """Count the n-grams (orders 1..n) of every sentence, laid out per (image, n-gram)."""
    ids, lengths, n_images = enc.ids, enc.lengths, enc.n_images
    n_sent = lengths.size
    n_refs_img = np.bincount(enc.ref_image, minlength=n_images)
    ref_offset = np.cumsum(n_refs_img) - n_refs_img
    # local sentence index inside its image: 0 = hypothesis, 1.. = references
    ref_local = np.arange(n_sent - n_images) + 1 - np.repeat(ref_offset, n_refs_img)
    local_of_sent = np.concatenate([np.zeros(n_images, np.int64), ref_local])
    image_of_sent = np.concatenate([np.arange(n_images, dtype=np.int64), enc.ref_image])
    wbits = int(n_refs_img.max(initial=0)).bit_length()  # bits of the local sentence index
    shift = wbits + max(n_images - 1, 0).bit_length()  # bits of (image, local sentence)
    sent = np.repeat(np.arange(n_sent, dtype=np.int64), lengths)
    position = np.arange(ids.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    remaining = np.repeat(lengths, lengths) - position  # tokens from here to the sentence end
    vocab_size = int(ids.max(initial=0)) + 1

    slot = ((image_of_sent << wbits) | local_of_sent)[sent]  # (image, local sentence) of every position
    orders = []
    code = ids
    for k in range(1, n + 1):
        if k > 1:  # n-gram = ((k-1)-gram id, next token id)
            code = code[:-1] * vocab_size + ids[k - 1 :]
        valid = remaining[: code.size] >= k
        raw = code[valid]
        if raw.size and int(raw.max()) >= 1 << (62 - shift):  # huge sets: make the codes dense first
            raw = np.unique(raw, return_inverse=True)[1].reshape(-1)
            if raw.size >= 1 << (62 - shift):
                raise OverflowError("caption set too large for 64-bit n-gram keys")
        # one sort per order: by n-gram, then image, then sentence (hypothesis first)
        key = (raw << shift) | slot[: code.size][valid]
        if k < n:
            key, inverse, cnt = np.unique(key, return_inverse=True, return_counts=True)
        else:
            key, cnt = np.unique(key, return_counts=True)
        gram_raw, image_gram = key >> shift, key >> wbits
        gram_of = np.cumsum(_starts_of_runs(gram_raw)) - 1
        g = int(gram_of[-1]) + 1 if gram_of.size else 1
        local, image = key & ((1 << wbits) - 1), image_gram & ((1 << (shift - wbits)) - 1)
        new_run = _starts_of_runs(image_gram)
        run = np.cumsum(new_run) - 1
        starts = np.flatnonzero(new_run)
        run_hyp_cnt = np.where(local[starts] == 0, cnt[starts], 0)
        is_ref = local > 0
        has_ref = np.zeros(starts.size, dtype=bool)
        has_ref[run[is_ref]] = True
        orders.append(
            OrderCounts(
                n_grams=g,
                hyp_image=image[~is_ref],
                hyp_gram=gram_of[~is_ref],
                hyp_cnt=cnt[~is_ref],
                ref_idx=ref_offset[image[is_ref]] + local[is_ref] - 1,
                ref_gram=gram_of[is_ref],
                ref_cnt=cnt[is_ref],
                ref_hyp_cnt=run_hyp_cnt[run[is_ref]],
                ref_group=run[is_ref],
                doc_freq=np.bincount(gram_of[starts[has_ref]], minlength=g),
            )
        )
        if k < n:  # dense ids of this order feed the next one
            code = np.zeros(code.size, dtype=np.int64)
            code[valid] = gram_of[inverse.reshape(-1)]
    return NGramStats(n_images, enc.ref_image, enc.hyp_len, enc.ref_len, orders)
