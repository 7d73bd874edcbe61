"""Shared fixtures: a tiny synthetic VQAv2 folder in the official layout, a tiny tokenizer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub: everything is built locally


@pytest.fixture(scope="session")
def vqa_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vltasks.datamodules.synthetic import write_vqav2

    root = tmp_path_factory.mktemp("synthetic_vqav2")
    write_vqav2(
        root, {"train2014": 60, "val2014": 21}, seed=3, test_splits={"test2015": 6, "test-dev2015": 4}
    )
    return root


@pytest.fixture(scope="session")
def tokenizer():
    from vltasks.backbones import train_wordpiece

    texts = [
        "what color is the circle?",
        "how many red objects are there?",
        "is there a blue square?",
        "what shape is the green object?",
        "is the red circle to the left of the blue square?",
    ]
    return train_wordpiece(texts * 4, vocab_size=200)
