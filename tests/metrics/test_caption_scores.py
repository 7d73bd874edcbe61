"""BLEU, ROUGE-L and CIDEr-D against pycocoevalcap 1.2 on the same tokens (to 1e-9)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from vltasks.metrics.functional.caption import bleu_score, cider_d, coco_caption_scores, rouge_l
from vltasks.metrics.functional.caption._ngrams import encode, ngram_stats
from vltasks.metrics.functional.caption.bleu import _bleu_update
from vltasks.metrics.functional.caption.rouge import _lcs_python

Bleu = pytest.importorskip("pycocoevalcap.bleu.bleu").Bleu
Rouge = pytest.importorskip("pycocoevalcap.rouge.rouge").Rouge
Cider = pytest.importorskip("pycocoevalcap.cider.cider").Cider
BleuScorer = pytest.importorskip("pycocoevalcap.bleu.bleu_scorer").BleuScorer


def random_captions(n: int, seed: int, vocab: int = 40) -> tuple[list[str], list[list[str]]]:
    """Small vocabulary (many shared n-grams), 1-6 refs, a few long (>64 tokens) and odd captions."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(vocab)]

    def sent(lo: int = 1, hi: int = 18) -> str:
        return " ".join(rng.choice(words) for _ in range(rng.randint(lo, hi)))

    preds = [sent(1, 90) if i % 37 == 0 else sent() for i in range(n)]
    refs = [
        [sent(1, 80) if rng.random() < 0.02 else sent() for _ in range(rng.randint(1, 6))] for _ in range(n)
    ]
    preds[1], refs[2][0] = "", ""  # empty captions
    preds[3] = preds[3] + "  " + preds[3]  # a double space: ROUGE-L sees an empty token, BLEU does not
    refs[4] = [preds[4]] * 2  # a perfect match
    return preds, refs


def reference_scores(preds: list[str], refs: list[list[str]]) -> dict[str, float]:
    gts = {i: list(r) for i, r in enumerate(refs)}
    res = {i: [p] for i, p in enumerate(preds)}
    out = dict(zip(["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4"], Bleu(4).compute_score(gts, res, verbose=0)[0]))
    out["ROUGE_L"] = Rouge().compute_score(gts, res)[0]
    out["CIDEr"] = Cider().compute_score(gts, res)[0]
    return {k: float(v) for k, v in out.items()}


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_pycocoevalcap(seed: int) -> None:
    preds, refs = random_captions(400, seed)
    ref = reference_scores(preds, refs)
    ours = dict(zip(["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4"], bleu_score(preds, refs)))
    ours["ROUGE_L"] = rouge_l(preds, refs)
    ours["CIDEr"] = cider_d(preds, refs)
    for key, value in ref.items():
        assert ours[key] == pytest.approx(value, abs=1e-9, rel=0), key
    shared = coco_caption_scores(preds, refs, tokenizer="none")
    assert list(shared) == ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"]
    for key, value in ref.items():
        assert shared[key] == pytest.approx(value, abs=1e-9, rel=0), key


def test_bleu_counts_match_reference_totals() -> None:
    """testlen, reflen (closest, ties to the shorter), guess and correct equal BleuScorer's."""
    preds = ["a b c d", "a b", "x y z w v"]
    refs = [["a b c", "a b c d e"], ["a b c", "a"], ["x y z w v u t s", "x y"]]  # image 1: a tie (1 and 3)
    scorer = BleuScorer(n=4)
    for p, r in zip(preds, refs, strict=True):
        scorer += (p, r)
    scorer.compute_score(option="closest", verbose=0)
    stats = ngram_stats(encode([p.split() for p in preds], [[x.split() for x in r] for r in refs]), 4)
    totals = _bleu_update(stats, 4)
    guess = [sum(c["guess"][k] for c in scorer.ctest) for k in range(4)]
    correct = [sum(c["correct"][k] for c in scorer.ctest) for k in range(4)]
    assert (totals["testlen"], totals["reflen"]) == (scorer._testlen, scorer._reflen)
    assert totals["guess"] == guess and totals["correct"] == correct


def test_bleu4_is_tiny_not_zero() -> None:
    """COCO smooths with 1e-15 / 1e-9: no 4-gram match gives a tiny positive BLEU-4 (torchmetrics: 0)."""
    preds, refs = ["a b c d e"], [["a b c x d e"]]
    scores = bleu_score(preds, refs)
    assert 0 < scores[3] < 1e-3
    assert scores == pytest.approx(Bleu(4).compute_score({0: refs[0]}, {0: preds}, verbose=0)[0], abs=1e-15)


def test_cider_single_image_is_zero() -> None:
    assert cider_d(["a dog runs"], [["a dog runs", "a dog is running"]]) == 0.0


def test_lcs_paths_agree() -> None:
    """The uint64 bit-parallel LCS and the Python-integer one give the DP's answer."""
    rng = random.Random(3)
    for _ in range(200):
        a = [rng.choice("abcd") for _ in range(rng.randint(1, 70))]
        b = [rng.choice("abcd") for _ in range(rng.randint(1, 70))]
        table = np.zeros((len(a) + 1, len(b) + 1), dtype=int)
        for i, x in enumerate(a):
            for j, y in enumerate(b):
                table[i + 1, j + 1] = table[i, j] + 1 if x == y else max(table[i, j + 1], table[i + 1, j])
        assert _lcs_python(a, b) == table[-1, -1]
        assert rouge_l([" ".join(a)], [[" ".join(b)]]) == pytest.approx(
            Rouge().calc_score([" ".join(a)], [" ".join(b)]), abs=1e-12
        )


def test_input_errors() -> None:
    with pytest.raises(ValueError, match="2 predictions but 1"):
        bleu_score(["a", "b"], [["a"]])
    with pytest.raises(ValueError, match="non-empty list"):
        cider_d(["a"], [[]])
    with pytest.raises(TypeError):
        rouge_l("a b", [["a b"]])
    with pytest.raises(ValueError, match="metrics must be"):
        coco_caption_scores(["a"], [["a"]], metrics=("BLEU",))
    with pytest.raises(ValueError, match="tokenizer must be"):
        coco_caption_scores(["a"], [["a"]], tokenizer="spacy")
