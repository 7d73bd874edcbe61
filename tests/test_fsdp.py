"""``trainer.strategy=fsdp`` on two CPU processes (torchrun, gloo): FSDP2 with each ViLT layer its own
unit, activation checkpointing, gradient accumulation and clipping, ends within float noise of one
process taking the same global batches; its checkpoints are ordinary full files (best.ckpt is
validated after the fit, and loads without a process group)."""

from __future__ import annotations

import json

import pytest
import torch

from tests.multinode import on_nodes, torchrun_nodes
from tests.test_demo_configs import TINY
from tests.tiny import printed_run_dir
from vltasks.cli import main
from vltasks.config import load_run


@pytest.mark.timeout(1800)
def test_fsdp_on_two_processes_ends_as_one_process_with_the_same_batches(tmp_path, capsys):
    from vltasks.runtime import build_task_data, prepare_synthetic
    from vltasks.tasks import VLTaskModule

    common = [
        "--config",
        "vqa_demo",
        f"data.root={tmp_path / 'data'}",
        *TINY,
        "synthetic.train=20",
        "backbone.preset_args.num_layers=2",  # two FSDP units besides the root
        "backbone.activation_checkpointing=true",
        "trainer.accumulate_grad_batches=2",
        "trainer.gradient_clip_val=0.5",
        "trainer.max_epochs=2",
    ]
    spec = load_run("vqa_demo", common[2:])
    prepare_synthetic(spec)
    full = len(build_task_data(spec)["vqa"].samples("train")) // 8
    common += [f"trainer.limit_train_batches={full}"]

    assert main(["fit", *common, f"trainer.default_root_dir={tmp_path / 'one'}", "data.batch_size=8"]) == 0
    one_dir = printed_run_dir(capsys.readouterr().out)
    rank0 = torchrun_nodes(
        [
            "fit",
            *common,
            f"trainer.default_root_dir={tmp_path / 'fsdp'}",
            "data.batch_size=4",
            "trainer.strategy=fsdp",
            *on_nodes(nodes=1, per_node=2),
        ],
        nodes=1,
        per_node=2,
    )[0]
    two_dir = printed_run_dir(rank0)

    a = torch.load(one_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    b = torch.load(two_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert a["global_step"] == b["global_step"] > 0
    assert a["state_dict"].keys() == b["state_dict"].keys()  # full tensors, the usual names
    worst = max(float((v - b["state_dict"][k]).abs().max()) for k, v in a["state_dict"].items())
    assert worst < 1e-5, f"FSDP weights differ from one process's by up to {worst}"
    one = json.loads((one_dir / "metrics.json").read_text())["fit"]
    two = json.loads((two_dir / "metrics.json").read_text())["fit"]
    for key in (k for k in one if k.startswith("val/")):
        assert two[key] == pytest.approx(one[key], rel=1e-3, abs=1e-3), key
    VLTaskModule.load_from_checkpoint(two["best_checkpoint"], map_location="cpu")  # no process group
