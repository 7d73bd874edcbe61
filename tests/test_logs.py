"""Logs a person wants to read: a `make demo`-like fit prints each line once, no advertisement and no
warning from our dependencies' internals; the filters match only what they name; the model summary
counts parameters per part, trainable and frozen."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from collections import Counter

import pytest

from tests.tiny import BACKBONE
from vltasks.logs import QUIET_RECORDS, PartsSummary, _QuietFilter, parts, quiet_warnings, summary_table


def test_a_demo_fit_prints_each_line_once_and_no_advertisement(tmp_path):
    """`make demo` with a tiny world and backbone, in its own process (Lightning's logging set-up on
    import is part of what is checked), progress bar on as the demo has it."""
    args = [
        "fit",
        "--config",
        "vqa_demo",
        f"data.root={tmp_path / 'data'}",
        f"trainer.default_root_dir={tmp_path / 'runs'}",
        "synthetic.train=12",
        "synthetic.val=7",
        "synthetic.test=3",
        *BACKBONE,
        "data.batch_size=4",
        "data.eval_batch_size=5",
        "trainer.max_epochs=2",
        "logging.num_images=1",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        [sys.executable, "-m", "vltasks.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        timeout=600,
    )
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:]
    lines = [line for line in out.splitlines() if line.strip()]
    repeated = {line: n for line, n in Counter(lines).items() if n > 1}
    assert repeated == {}, repeated
    for noise in ("litlogger", "litmodels", "💡", "Tip:", "LeafSpec", "FLOPs", "INFO"):
        assert noise not in out, noise
    # what the run does print: the summary by part, the metrics, the files
    assert "model: " in out and "heads.vqa" in out and "backbone" in out
    assert "validation metrics of the best checkpoint" in out and "run directory: " in out


def test_record_filter_drops_only_what_it_names():
    keep = _QuietFilter().filter
    name = "lightning.pytorch.utilities.rank_zero"

    def record(logger: str, msg: str) -> logging.LogRecord:
        return logging.LogRecord(logger, logging.INFO, __file__, 1, msg, None, None)

    tip = (
        "💡 Tip: For seamless cloud logging, try installing [litlogger](https://pypi.org/project/litlogger/)"
    )
    assert not keep(record(name, tip))
    assert keep(record("my.own.logger", tip))  # the same words from elsewhere pass
    assert keep(record(name, "GPU available: False, used: False"))
    assert all(why for *_, why in QUIET_RECORDS)  # every entry says why it is there


def test_warning_filter_matches_message_and_module_only():
    message = "`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec)` instead."
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_warnings()  # inserted in front of "always"
        for module in ("lightning.pytorch.utilities._pytree", "somebody.else"):
            warnings.warn_explicit(message, FutureWarning, "x.py", 21, module=module, registry={})
        warnings.warn_explicit(
            "another deprecation",
            FutureWarning,
            "x.py",
            22,
            module="lightning.pytorch.utilities._pytree",
            registry={},
        )
    shown = [(str(w.message), w.filename) for w in seen]
    assert shown == [(message, "x.py"), ("another deprecation", "x.py")]


@pytest.mark.parametrize("freeze", [False, True])
def test_summary_counts_each_part_trainable_and_frozen(freeze, capsys):
    from tests.test_export import _module

    model = _module("retrieval_demo", [f"backbone.freeze={freeze}"], {})  # CLIP + fusion block + head
    rows = {name.strip(): (n, t) for name, _, n, t in parts(model)}
    backbone = sum(p.numel() for p in model.backbone.parameters())
    fusion = sum(p.numel() for p in model.backbone.fusion.parameters())
    head = sum(p.numel() for p in model.heads["retrieval"].parameters())
    assert rows["backbone"][0] == backbone and rows["backbone.fusion"] == (fusion, 0 if freeze else fusion)
    assert rows["heads.retrieval"] == (head, head)
    clip = sum(p.numel() for p in model.backbone.model.parameters() if p.requires_grad)
    assert rows["backbone.model"][1] == (0 if freeze else clip)
    table = summary_table(model)
    assert "ClipBackbone (CLIPModel)" in table and "frozen" in table.splitlines()[0]

    class Trainer:
        is_global_zero = True

    PartsSummary().on_fit_start(Trainer(), model)  # type: ignore[arg-type]
    assert capsys.readouterr().out.strip() == table
