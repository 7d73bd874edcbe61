"""Caption metrics: speed and agreement against pycocoevalcap 1.2, and PTB tokenizer drift.

    .venv/bin/python benchmarks/bench_caption.py [n_images]

`run()` times BLEU-1..4, ROUGE-L and CIDEr-D on a generated, pre-tokenized caption set (random sentences
from a small Zipf-weighted vocabulary, 5 references per image) against pycocoevalcap on the same strings.
`ptb_agreement()` compares the pure-Python PTB tokenizer with the official jar (needs Java).
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vltasks.metrics.functional.caption import bleu_score, cider_d, rouge_l, scores_from_tokens

CAPTIONS = Path(__file__).with_name("ptb_captions.txt")


def caption_set(n_images: int, seed: int = 0, vocab: int = 1000) -> tuple[list[str], list[list[str]]]:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(vocab)]
    weights = [1.0 / (i + 1) for i in range(vocab)]

    def sent() -> str:
        return " ".join(rng.choices(words, weights, k=rng.randint(8, 16)))

    return [sent() for _ in range(n_images)], [[sent() for _ in range(5)] for _ in range(n_images)]


def _timed(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def run(n_images: int = 5000, seed: int = 0, repeat: int = 3) -> list[dict]:
    """Rows {name, ours_s, ref_s, speedup, max_abs_diff}: ours best of `repeat`, the reference run once."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    preds, refs = caption_set(n_images, seed)
    gts = {i: r for i, r in enumerate(refs)}
    res = {i: [p] for i, p in enumerate(preds)}
    cases = [
        ("Bleu_1-4", lambda: bleu_score(preds, refs), lambda: Bleu(4).compute_score(gts, res, verbose=0)[0]),
        ("ROUGE_L", lambda: rouge_l(preds, refs), lambda: Rouge().compute_score(gts, res)[0]),
        ("CIDEr", lambda: cider_d(preds, refs), lambda: Cider().compute_score(gts, res)[0]),
    ]
    rows, ref_total, ref_values = [], 0.0, []
    for name, ours_fn, ref_fn in cases:
        ours_s, ours = _timed(ours_fn, repeat)
        ref_s, ref = _timed(ref_fn, 1)
        ref_total += ref_s
        ref_values.extend(np.atleast_1d(ref).tolist())
        diff = float(np.max(np.abs(np.atleast_1d(ours) - np.atleast_1d(ref))))
        rows.append(
            {"name": name, "ours_s": ours_s, "ref_s": ref_s, "speedup": ref_s / ours_s, "max_abs_diff": diff}
        )
    ours_s, shared = _timed(lambda: scores_from_tokens(preds, refs, ("Bleu", "ROUGE_L", "CIDEr")), repeat)
    diff = float(np.max(np.abs(np.array([shared[k] for k in shared]) - np.array(ref_values))))
    rows.append(
        {"name": "Bleu+ROUGE_L+CIDEr (shared)", "ours_s": ours_s, "ref_s": ref_total,
         "speedup": ref_total / ours_s, "max_abs_diff": diff}
    )  # fmt: skip
    return rows


def stress_captions(n: int, seed: int = 0) -> list[str]:
    """Adversarial captions: random runs of tricky fragments, sometimes glued together."""
    fragments = (
        "a man dog The A I U.S. Mr. Dr. St. etc. e.g. i.e. vs. Jan. Inc. Co. p.m. a.m. No. ft. don't can't "
        "won't it's he's she'd we'll they're I'm you've isn't 'tis gonna cannot y'all o'clock rock'n'roll 5 "
        "42 3.5 1,000 10:30 1/2 5-6 2/3/2014 $5 $ £3 €4 ¥5 96% 100 % #1 @user ( ) [ ] { } < > \" ' ` `` '' "
        "“ ” ‘ ’ « » . , ; : ! ? ?! ... .. - -- --- — – / * & + = ~ | _ well-known x-ray 3-year-old and/or "
        "w/ AT&T S&P b&w www.x.com http://a.b/c a@b.com :) :( ;) :D 'em '90s '60s cont'd ma'am O'Neil "
        "d'Artagnan l'amour naïve café ½ ° × ™ © B. I. You He The An It When What"
    ).split()
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        toks = [rng.choice(fragments) for _ in range(rng.randint(3, 12))]
        out.append("".join(t + rng.choice([" ", " ", " ", "", "  "]) for t in toks).strip())
    return out


def ptb_agreement(lines: list[str]) -> dict:
    """Token-identical fraction of ptb_tokenize vs the jar, and the CIDEr difference it causes.

    CIDEr set: caption 6k is the prediction of image k, captions 6k+1..6k+5 its references.
    """
    from vltasks.metrics.functional.caption import ptb_tokenize, ptb_tokenize_java
    from vltasks.metrics.functional.caption.cider import _cider_per_image
    from vltasks.metrics.functional.caption.coco import encode, ngram_stats

    ours, jar = ptb_tokenize(lines), ptb_tokenize_java(lines)
    same = sum(a == b for a, b in zip(ours, jar, strict=True))
    n_img = len(lines) // 6
    per_image = []
    for toks in (ours, jar):
        hyp = [toks[6 * k].split() for k in range(n_img)]
        ref = [[t.split() for t in toks[6 * k + 1 : 6 * k + 6]] for k in range(n_img)]
        per_image.append(_cider_per_image(ngram_stats(encode(hyp, ref), 4)))
    return {
        "captions": len(lines),
        "identical": same,
        "fraction": same / len(lines),
        "cider_corpus_diff": float(abs(per_image[0].mean() - per_image[1].mean())),
        "cider_max_image_diff": float(np.max(np.abs(per_image[0] - per_image[1]))),
    }


def main() -> None:
    n_images = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    print(f"{'metric':30s} {'ours (s)':>9s} {'pycocoevalcap (s)':>18s} {'speedup':>8s} {'max |diff|':>11s}")
    for row in run(n_images):
        print(
            f"{row['name']:30s} {row['ours_s']:9.3f} {row['ref_s']:18.3f} {row['speedup']:7.1f}x "
            f"{row['max_abs_diff']:11.2e}"
        )
    for name, lines in [
        ("varied set (benchmarks/ptb_captions.txt)", CAPTIONS.read_text(encoding="utf-8").splitlines()),
        ("stress set (stress_captions(3000, seed=0))", stress_captions(3000, 0)),
    ]:
        agg = ptb_agreement(lines)
        print(
            f"PTB python vs jar, {name}: {agg['identical']}/{agg['captions']} identical "
            f"({100 * agg['fraction']:.2f}%), CIDEr diff corpus {agg['cider_corpus_diff']:.2e}, "
            f"max per image {agg['cider_max_image_diff']:.2e}"
        )


if __name__ == "__main__":
    main()
