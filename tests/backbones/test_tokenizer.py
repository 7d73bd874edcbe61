"""The tiny presets' WordPiece tokenizer: a function of the text alone, in any process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from vltasks.backbones import train_wordpiece

TEXTS = ["What color is the circle?", "Is there a red square?", "the red circle", "A zebra."]
CODE = (
    "import json; from vltasks.backbones import train_wordpiece; "
    f"print(json.dumps(train_wordpiece({TEXTS!r} * 3, vocab_size=60).get_vocab(), sort_keys=True))"
)


def test_same_vocabulary_in_separate_processes():
    """tokenizers' trainer broke ties in a per-process random hash order; this build must not."""
    runs = [
        subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
        for _ in range(3)
    ]
    vocabs = [json.loads(r.stdout) for r in runs]
    assert vocabs[0] == vocabs[1] == vocabs[2]
    assert vocabs[0] == dict(sorted(train_wordpiece(TEXTS * 3, vocab_size=60).get_vocab().items()))


def test_frequent_words_whole_rare_words_spelled_and_specials_first():
    tok = train_wordpiece(TEXTS * 3, vocab_size=48)  # 41 specials and characters, 7 of 9 words
    vocab = tok.get_vocab()
    assert [vocab[t] for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")] == [0, 1, 2, 3, 4]
    assert len(vocab) == 48 and "what" not in vocab  # count ties: alphabetical
    assert tok.tokenize("the red circle") == ["the", "red", "circle"]  # most frequent words
    assert tok.tokenize("zebra") == ["z", "##e", "##b", "##r", "##a"]  # below the cut: spelled out
    assert tok("red")["input_ids"] == [tok.cls_token_id, vocab["red"], tok.sep_token_id]
    with pytest.raises(ValueError, match="cannot hold"):
        train_wordpiece(TEXTS, vocab_size=20)
