"""Every metric class plots its value with torchmetrics' plot() (matplotlib is a dev dependency)."""

from __future__ import annotations

import matplotlib
import pytest

from tests.metrics.metric_cases import CASES
from vltasks.metrics import BLEU, CaptionMetrics, CIDEr

matplotlib.use("Agg")


@pytest.mark.parametrize("name", sorted(CASES))
def test_plot_after_update(name):
    factory, items, update = CASES[name]()
    metric = factory()
    update(metric, items, list(range(len(items))))
    fig, ax = metric.plot()
    assert fig is not None and ax.has_data()


@pytest.mark.parametrize("cls", [BLEU, CIDEr, CaptionMetrics])
def test_caption_plot(cls):
    metric = cls(tokenizer="none")
    metric.update(
        ["a red circle", "two blue squares"], [["a red circle", "one red circle"], ["two blue squares"]]
    )
    fig, ax = metric.plot()
    assert fig is not None and ax.has_data()
