"""Evaluation is exact under DDP: 2 CPU processes (ddp_fork under pytest) give the 1-process value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cli_fit import TINY
from vltasks.cli import main


def _metrics(capsys, *args: str) -> dict[str, float]:
    assert main(["validate", *args]) == 0
    run_dir = Path(capsys.readouterr().out.split("run directory: ")[1].split()[0])
    return json.loads((run_dir / "metrics.json").read_text())["validate"]


def test_two_process_validation_equals_one_process(vqa_root, tmp_path, capsys):
    common = ["--config", "vqa_demo", f"data.root={vqa_root}", f"trainer.default_root_dir={tmp_path}", *TINY]
    assert main(["fit", *common, "trainer.max_epochs=1"]) == 0
    capsys.readouterr()
    ckpt = str(tmp_path / "vqa_demo" / "version_0" / "checkpoints" / "best.ckpt")
    # an eval batch size that leaves the two shards uneven and the last batches ragged
    one = _metrics(capsys, *common, "--ckpt", ckpt, "data.eval_batch_size=7")
    two = _metrics(
        capsys,
        *common,
        "--ckpt",
        ckpt,
        "data.eval_batch_size=7",
        "trainer.devices=2",
        "trainer.strategy=ddp_fork",
    )
    assert set(one) == set(two) >= {"val/vqa/accuracy", "val/vqa/loss", "val/vqa/yes/no", "val/vqa/number"}
    for key in set(one) - {"val/vqa/loss"}:
        assert two[key] == one[key], key
    assert two["val/vqa/loss"] == pytest.approx(one["val/vqa/loss"], rel=1e-6)  # float32 sums
