"""Caption metric speed against pycocoevalcap as the vocabulary grows, and where our time goes.

    .venv/bin/python benchmarks/bench_caption_vocab.py [--images 5000] [--vocab 30 300 3000 10000]

Captions as `bench_caption.caption_set` makes them (8-16 tokens from a Zipf-weighted vocabulary of the
given size, 5 references per image). For each vocabulary: pycocoevalcap's Bleu(4), Rouge and Cider
(one run) against ours (best of 3), and ours split into its stages: splitting and integer-encoding the
tokens (`encode`), counting n-grams (`ngram_stats`, shared by BLEU and CIDEr), and the metric itself.
The reference's cost depends on the vocabulary only through dict sizes; ours has a fixed part (split
and encode every token) that a single cheap metric cannot hide.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_caption import caption_set  # noqa: E402
from vltasks.metrics.functional.caption import bleu_score, cider_d, rouge_l  # noqa: E402
from vltasks.metrics.functional.caption._ngrams import encode, ngram_stats  # noqa: E402
from vltasks.metrics.functional.caption.bleu import _bleu_compute, _bleu_update  # noqa: E402
from vltasks.metrics.functional.caption.rouge import _rouge_l_per_image  # noqa: E402


def best(fn: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def once(fn: Callable[[], object]) -> float:
    return best(fn, 1)


def row(n_images: int, vocab: int) -> str:
    """One table row: the three metrics against pycocoevalcap, then our stages."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    preds, refs = caption_set(n_images, seed=0, vocab=vocab)
    gts = {i: r for i, r in enumerate(refs)}
    res = {i: [c] for i, c in enumerate(preds)}
    distinct = len({w for s in preds + [r for rs in refs for r in rs] for w in s.split()})
    cols = []
    for ours, ref in (
        (lambda: bleu_score(preds, refs), lambda: Bleu(4).compute_score(gts, res, verbose=0)),
        (lambda: rouge_l(preds, refs), lambda: Rouge().compute_score(gts, res)),
        (lambda: cider_d(preds, refs), lambda: Cider().compute_score(gts, res)),
    ):
        o, r = best(ours), once(ref)
        cols.append(f"{o:6.3f}/{r:6.3f} {r / o:5.1f}x")
    split_s = best(lambda: ([p.split() for p in preds], [[r.split() for r in rs] for rs in refs]))
    hyps, refs_tok = [p.split() for p in preds], [[r.split() for r in rs] for rs in refs]
    enc_s = best(lambda: encode(hyps, refs_tok))
    enc = encode(hyps, refs_tok)
    stats_s = best(lambda: ngram_stats(enc, 4))
    stats = ngram_stats(enc, 4)
    bleu_s = best(lambda: _bleu_compute(_bleu_update(stats, 4)))
    flat = [r for rs in refs_tok for r in rs]
    lcs_s = best(lambda: _rouge_l_per_image(enc, hyps, flat))
    parts = f"{split_s:.3f}, {enc_s:.3f}, {stats_s:.3f}, {bleu_s:.3f}, {lcs_s:.3f}"
    return f"{vocab:5d}  {distinct:8d}  | " + " | ".join(cols) + f" | {parts}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=5000)
    p.add_argument("--vocab", type=int, nargs="+", default=[30, 300, 3000, 10000])
    args = p.parse_args(argv)
    head = "vocab  distinct  | BLEU ours/ref speedup | ROUGE-L ours/ref speedup | CIDEr ours/ref speedup"
    print(head + " | ours: split, encode, ngram_stats, bleu core, lcs core (s)")
    for vocab in args.vocab:
        print(row(args.images, vocab))
    return 0


if __name__ == "__main__":
    sys.exit(main())
