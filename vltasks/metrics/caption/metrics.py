"""COCO caption metrics as classes; each keeps all captions and scores them once in `compute`.

`CaptionMetrics` computes several from one set of states (captions tokenized once, n-grams counted
once): cheaper than a MetricCollection of the single metrics, and it returns pycocoevalcap's keys.

All take raw captions and a tokenizer ("ptb" pure Python by default, "ptb-java" for the official jar,
"none" for captions that are already tokenized). Values are float64 tensors equal to pycocoevalcap's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from vltasks.metrics.caption.base import CaptionMetricBase, scalar
from vltasks.metrics.functional.caption._ngrams import encode, ngram_stats
from vltasks.metrics.functional.caption.bleu import _bleu_compute, _bleu_update
from vltasks.metrics.functional.caption.cider import cider_d
from vltasks.metrics.functional.caption.coco import DEFAULT_METRICS, KEYS, _check_metrics, scores_from_tokens
from vltasks.metrics.functional.caption.meteor import meteor_score
from vltasks.metrics.functional.caption.rouge import rouge_l
from vltasks.metrics.functional.caption.spice import spice_score


class BLEU(CaptionMetricBase):
    """Corpus BLEU-n of the COCO evaluation (smoothed, closest reference length, float64).

    Example:
        >>> m = BLEU(n=1)
        >>> m.update(["A dog runs."], [["A dog runs.", "A dog is running."]])
        >>> round(float(m.compute()), 4)
        1.0
    """

    def __init__(self, n: int = 4, tokenizer: str = "ptb", **kwargs: Any) -> None:
        super().__init__(tokenizer=tokenizer, **kwargs)
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.n = n

    def _score(self, preds: list[str], refs: list[list[str]]) -> Tensor:
        if not preds:
            return scalar(0.0)
        enc = encode([p.split() for p in preds], [[r.split() for r in rs] for rs in refs])
        return scalar(_bleu_compute(_bleu_update(ngram_stats(enc, self.n), self.n))[-1])


class ROUGEL(CaptionMetricBase):
    """ROUGE-L of the COCO evaluation (max precision and max recall over references, beta 1.2)."""

    def __init__(self, beta: float = 1.2, tokenizer: str = "ptb", **kwargs: Any) -> None:
        super().__init__(tokenizer=tokenizer, **kwargs)
        self.beta = beta

    def _score(self, preds: list[str], refs: list[list[str]]) -> Tensor:
        return scalar(rouge_l(preds, refs, self.beta))


class CIDEr(CaptionMetricBase):
    """CIDEr-D of the COCO evaluation (idf over the whole evaluated set, so never per batch); 0..10."""

    plot_upper_bound = 10.0

    def __init__(self, n: int = 4, sigma: float = 6.0, tokenizer: str = "ptb", **kwargs: Any) -> None:
        super().__init__(tokenizer=tokenizer, **kwargs)
        self.n, self.sigma = n, sigma

    def _score(self, preds: list[str], refs: list[list[str]]) -> Tensor:
        return scalar(cider_d(preds, refs, self.n, self.sigma))


class METEOR(CaptionMetricBase):
    """METEOR 1.5 from the official jar (needs Java and pycocoevalcap); corpus score from pooled stats."""

    def __init__(self, tokenizer: str = "ptb", java: str = "java", **kwargs: Any) -> None:
        super().__init__(tokenizer=tokenizer, **kwargs)
        self.java = java

    def _score(self, preds: list[str], refs: list[list[str]]) -> Tensor:
        return scalar(meteor_score(preds, refs, java=self.java)[0] if preds else 0.0)


class SPICE(CaptionMetricBase):
    """SPICE from the official jar: needs CoreNLP 3.6.0 jars and Java <= 11, else a precise error."""

    def __init__(self, tokenizer: str = "ptb", java: str | None = None, **kwargs: Any) -> None:
        super().__init__(tokenizer=tokenizer, **kwargs)
        self.java = java

    def _score(self, preds: list[str], refs: list[list[str]]) -> Tensor:
        return scalar(spice_score(preds, refs, java=self.java)[0])


class CaptionMetrics(CaptionMetricBase):
    """COCO caption evaluation as one metric: `compute()` returns {"Bleu_1": ..., "CIDEr": ...}.

    Args:
        metrics: any of "Bleu", "METEOR", "ROUGE_L", "CIDEr", "SPICE". The default needs no Java.
        tokenizer: "ptb" (pure Python), "ptb-java" (the official jar) or "none" (already tokenized).

    Example:
        >>> m = CaptionMetrics()
        >>> m.update(["a dog runs", "a cat sleeps"], [["a dog runs"], ["a cat is sleeping"]], ids=[1, 2])
        >>> sorted(m.compute())
        ['Bleu_1', 'Bleu_2', 'Bleu_3', 'Bleu_4', 'CIDEr', 'ROUGE_L']
    """

    plot_upper_bound = None

    def __init__(
        self, metrics: Sequence[str] = DEFAULT_METRICS, tokenizer: str = "ptb", **kwargs: Any
    ) -> None:
        super().__init__(tokenizer=tokenizer, **kwargs)
        self.metrics = _check_metrics(metrics)

    def _score(self, preds: list[str], refs: list[list[str]]) -> dict[str, Tensor]:
        if not preds:
            keys = [k for k in KEYS if k.split("_")[0] in self.metrics or k in self.metrics]
            return {k: scalar(0.0) for k in keys}
        return {k: scalar(v) for k, v in scores_from_tokens(preds, refs, self.metrics).items()}
