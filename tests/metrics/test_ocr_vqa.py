"""ANLS (DocVQA/RRC script), SQuAD EM/F1 and ChartQA relaxed accuracy on published examples."""

from __future__ import annotations

import pytest

from vltasks.metrics import ANLS, ExactMatch, RelaxedAccuracy, TokenF1
from vltasks.metrics.functional import anls, exact_match, relaxed_accuracy, token_f1
from vltasks.metrics.functional.ocr_vqa import levenshtein


def test_anls_examples() -> None:
    assert anls(["Coca Cola"], [["CocaCola"]]).item() == pytest.approx(8 / 9)  # 0.89 in the papers
    assert round(anls(["Coca Cola"], [["CocaCola"]]).item(), 2) == 0.89
    assert anls(["Coca Cola"], [["Coca cola"]]).item() == 1.0
    assert anls(["  Coca   cola "], ["coca cola"]).item() == 1.0
    assert anls(["ab"], [["ac"]]).item() == 0.5  # NL = 0.5 is kept (official: score < 0.5 -> 0)
    assert anls(["abc"], [["xyc"]]).item() == 0.0
    assert anls(["abcd"], [["xyzd", "abcx"]]).item() == 0.75  # best GT
    assert anls([""], [[""]]).item() == 1.0
    assert levenshtein("kitten", "sitting") == 3


def test_squad_em_f1() -> None:
    assert exact_match(["The Cat!"], [["cat"]]).item() == 1.0
    assert exact_match(["a cat"], [["dog", "the  cat"]]).item() == 1.0
    assert token_f1(["red big car"], [["the big red truck"]]).item() == pytest.approx(
        2 * (2 / 3 * 2 / 3) / (4 / 3)
    )
    assert token_f1(["the"], [[""]]).item() == 1.0  # both normalize to no tokens
    assert token_f1(["x"], [["y"]]).item() == 0.0


def test_relaxed_accuracy() -> None:
    assert relaxed_accuracy(["10.4"], ["10"]).item() == 1.0
    assert relaxed_accuracy(["10.6"], ["10"]).item() == 0.0
    assert relaxed_accuracy(["5%"], ["0.05"]).item() == 1.0
    assert relaxed_accuracy(["0.01"], ["0"]).item() == 0.0  # zero target: exact match only
    assert relaxed_accuracy(["Yes"], ["yes"]).item() == 1.0
    assert relaxed_accuracy(["1.04"], [["2", "1"]]).item() == 1.0


@pytest.mark.parametrize(
    ("cls", "expected"),
    [(ANLS, 4 / 9), (ExactMatch, 0.5), (TokenF1, 0.5), (RelaxedAccuracy, 0.0)],
)
def test_classes(cls, expected: float) -> None:
    metric = cls()
    metric.update(["Coca Cola"], [["CocaCola"]], ids=[1])
    metric.update(["the dog", "Coca Cola"], [["Dog"], ["CocaCola"]], ids=[2, 1])
    assert metric.compute().item() == pytest.approx(expected)
