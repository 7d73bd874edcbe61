"""Every demo trains on 2 processes (ddp_fork under pytest), and DDP strategies are resolved so that
backbone parts a head leaves without gradients do not stop the run: the parts no head reads are
frozen, so a single-task demo runs plain DDP, without the search for unused parameters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_demo_configs import DEMOS, TINY
from vltasks.cli import main
from vltasks.runtime import resolve_strategy


@pytest.mark.parametrize(
    ("strategy", "devices", "nodes", "accelerator", "want"),
    [
        ("auto", 1, 1, "cpu", "auto"),  # one process: no DDP at all
        ("auto", "auto", 1, "cpu", "auto"),
        ("auto", 2, 1, "cpu", "ddp_find_unused_parameters_true"),
        ("auto", "0,1", 1, "gpu", "ddp_find_unused_parameters_true"),
        ("auto", [0, 1, 2], 1, "gpu", "ddp_find_unused_parameters_true"),
        ("auto", 1, 2, "gpu", "ddp_find_unused_parameters_true"),  # multi-node
        ("ddp", 1, 1, "cpu", "ddp_find_unused_parameters_true"),
        ("ddp_fork", 2, 1, "cpu", "ddp_fork_find_unused_parameters_true"),
        ("ddp_spawn", "2", 1, "cpu", "ddp_spawn_find_unused_parameters_true"),
        ("ddp_find_unused_parameters_false", 2, 1, "cpu", "ddp_find_unused_parameters_false"),  # opt out
        ("fsdp", 2, 1, "gpu", "fsdp"),
    ],
)
def test_resolve_strategy(strategy, devices, nodes, accelerator, want):
    assert resolve_strategy(strategy, devices, nodes, accelerator) == want


@pytest.mark.parametrize("name", DEMOS)
def test_demo_fits_on_two_processes(name, tmp_path, capsys):
    """The grounding head leaves ViLT's pooler unused, retrieval BLIP's decoder: frozen, so plain DDP
    (what ``ddp_fork`` resolves to when every head says what it reads) trains every demo; a step
    that left a trainable parameter without a gradient would stop it."""
    args = [
        "fit",
        "--config",
        name,
        f"data.root={tmp_path / 'data'}",
        f"trainer.default_root_dir={tmp_path}",
        *TINY,
        "trainer.devices=2",
        "trainer.accelerator=cpu",
        "trainer.strategy=ddp_fork",
    ]
    assert main(args) == 0
    run_dir = Path(capsys.readouterr().out.split("run directory: ")[1].split()[0])
    fit = json.loads((run_dir / "metrics.json").read_text())["fit"]
    assert any(k.startswith("val/") and not k.endswith("/loss") for k in fit)
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()


def test_plain_ddp_fails_where_an_unread_part_is_left_trainable(tmp_path, capsys):
    """The control: with the unread pooler left trainable, plain DDP stops the grounding run."""
    args = [
        "fit",
        "--config",
        "refcoco_demo",
        f"data.root={tmp_path / 'data'}",
        f"trainer.default_root_dir={tmp_path}",
        *TINY,
        "backbone.freeze_unused=false",
        "trainer.devices=2",
        "trainer.accelerator=cpu",
        "trainer.strategy=ddp_fork_find_unused_parameters_false",
    ]
    with pytest.raises(Exception, match="not used in producing the loss"):
        main(args)
