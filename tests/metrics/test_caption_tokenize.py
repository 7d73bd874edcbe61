"""PTB tokenization: the documented examples, the jar wrapper against pycocoevalcap's, the Python follower."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vltasks.metrics.functional.caption import (
    coco_caption_scores,
    ptb_tokenize,
    ptb_tokenize_java,
    tokenize_captions,
    whitespace_tokenize,
)

CAPTIONS = Path(__file__).resolve().parents[2] / "benchmarks" / "ptb_captions.txt"
needs_java = pytest.mark.skipif(
    shutil.which("java") is None, reason="java is not on PATH (apt-get install default-jre)"
)

EXAMPLES = {
    "don't": "do n't",
    "96%": "96 %",
    "A man (in red) rides.": "a man -lrb- in red -rrb- rides",  # -LRB- is lowercased, so not dropped
    'He said "hi," then left...': "he said hi then left",
    "The U.S. flag, etc. The end.": "the u.s. flag etc. the end",
    "It costs $5.50 -- or £3!": "it costs $ 5.50 or # 3",
    "A 3-year-old's toy; 1,000 pieces: 1/2 off": "a 3-year-old 's toy 1,000 pieces 1/2 off",
    "I cannot go, gonna stay": "i can not go gon na stay",
    "Rock 'n' roll at 10:30 a.m.": "rock 'n' roll at 10:30 a.m.",
    "Mr. Smith's café": "mr. smith 's café",
}


def test_documented_examples() -> None:
    assert ptb_tokenize(list(EXAMPLES)) == list(EXAMPLES.values())


def test_stream_semantics_and_cleaning() -> None:
    """Captions are one per line (newlines inside a caption become spaces); empty ones stay empty."""
    assert ptb_tokenize(["a\ndog.", "", "  ", "cat"]) == ["a dog", "", "", "cat"]
    assert whitespace_tokenize(["a  b", "c\nd"]) == ["a  b", "c d"]
    with pytest.raises(TypeError):
        ptb_tokenize("a caption")
    preds, refs = tokenize_captions(["A dog."], [["The cat.", "Two cats!"], ["Birds."]], "ptb")
    assert preds == ["a dog"] and refs == [["the cat", "two cats"], ["birds"]]


@needs_java
@pytest.mark.java
def test_java_wrapper_matches_pycocoevalcap() -> None:
    """ptb_tokenize_java is token-identical to pycocoevalcap's PTBTokenizer on the same captions."""
    PTBTokenizer = pytest.importorskip("pycocoevalcap.tokenizer.ptbtokenizer").PTBTokenizer
    lines = CAPTIONS.read_text(encoding="utf-8").splitlines()
    ref = PTBTokenizer().tokenize({i: [{"caption": c}] for i, c in enumerate(lines)})
    assert ptb_tokenize_java(lines) == [ref[i][0] for i in range(len(lines))]
    assert ptb_tokenize_java(list(EXAMPLES)) == list(EXAMPLES.values())


@needs_java
@pytest.mark.java
def test_python_follower_agrees_with_jar() -> None:
    """Measured agreement on the varied caption set (the figure in docs/metrics_caption.md)."""
    lines = CAPTIONS.read_text(encoding="utf-8").splitlines()
    ours, jar = ptb_tokenize(lines), ptb_tokenize_java(lines)
    same = sum(a == b for a, b in zip(ours, jar, strict=True)) / len(lines)
    assert len(lines) >= 300 and same >= 0.99, [(a, b) for a, b in zip(ours, jar, strict=True) if a != b][:5]
    preds, refs = lines[0::6], [lines[i + 1 : i + 6] for i in range(0, len(lines) - 5, 6)]
    preds = preds[: len(refs)]
    a = coco_caption_scores(preds, refs, tokenizer="ptb")
    b = coco_caption_scores(preds, refs, tokenizer="ptb-java")
    assert abs(a["CIDEr"] - b["CIDEr"]) < 1e-2


def test_java_errors_name_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    from vltasks.metrics.functional.caption import JavaUnavailableError

    with pytest.raises(JavaUnavailableError, match="Java was not found"):
        ptb_tokenize_java(["a"], java="no-such-java-binary")
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(JavaUnavailableError, match="pycocoevalcap"):
        ptb_tokenize_java(["a"])
