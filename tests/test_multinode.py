"""Two nodes on one machine, started as a user starts them (``torchrun --nnodes=2 --nproc-per-node=1
--node-rank=0|1 --master-addr=127.0.0.1``, gloo on CPU): validation gives exactly the metrics of one
process for every demo and the multitask demo (7 validation images and an evaluation batch of 3:
uneven shards, ragged last batches), and a fit with half the per-process batch ends within float noise
of the 1-process fit, because the same samples form each global batch.

CI validates a representative set in one launch (VQA, grounding, retrieval with its ITM re-ranking,
the multitask demo); every other demo is ``-m slow`` (one more launch)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.multinode import on_nodes, torchrun_nodes
from tests.test_demo_configs import DEMOS, TINY
from tests.tiny import printed_run_dir
from vltasks.cli import main

REPRESENTATIVE = ("vqa_demo", "refcoco_demo", "retrieval_demo", "multitask_demo")
REST = tuple(d for d in DEMOS if d not in REPRESENTATIVE)


def _metrics(run_dir: Path, stage: str) -> dict[str, float]:
    metrics = json.loads((run_dir / "metrics.json").read_text())[stage]
    return {k: v for k, v in metrics.items() if k.startswith("val/")}


def test_the_representative_demos_are_demos():
    assert set(REPRESENTATIVE) <= set(DEMOS)


@pytest.mark.timeout(2400)
@pytest.mark.parametrize(
    "demos",
    [
        pytest.param(REPRESENTATIVE, id="representative"),
        pytest.param(REST, id="every-other-demo", marks=pytest.mark.slow),
    ],
)
def test_two_nodes_validate_a_checkpoint_exactly_as_one_process(demos, tmp_path, capsys):
    runs: list[tuple[str, list[str], dict[str, float]]] = []
    for demo in demos:
        common = [
            "--config",
            demo,
            f"data.root={tmp_path / demo}",
            f"trainer.default_root_dir={tmp_path / 'runs'}",
            *TINY,
        ]
        assert main(["fit", *common]) == 0
        best = json.loads((printed_run_dir(capsys.readouterr().out) / "metrics.json").read_text())["fit"]
        validate = ["validate", *common, "--ckpt", best["best_checkpoint"], "data.eval_batch_size=3"]
        assert main(validate) == 0
        runs.append((demo, validate, _metrics(printed_run_dir(capsys.readouterr().out), "validate")))
    sequence = tmp_path / "validations.json"
    sequence.write_text(json.dumps([[*argv, *on_nodes()] for _, argv, _ in runs]))
    rank0 = torchrun_nodes([str(sequence)], module="tests.cli_sequence")[0]
    printed = [line for line in rank0.splitlines() if line.startswith("run directory: ")]
    run_dirs = [Path(line.split(": ", 1)[1]) for line in printed]
    assert len(run_dirs) == len(runs), rank0[-3000:]
    for (demo, _, one), run_dir in zip(runs, run_dirs):
        two = _metrics(run_dir, "validate")
        assert one and set(one) == set(two), (demo, sorted(one), sorted(two))
        for key in one:
            if key.endswith("/loss"):  # float32 sums in another order
                assert two[key] == pytest.approx(one[key], rel=1e-5), (demo, key)
            else:
                assert two[key] == one[key], (demo, key, one[key], two[key])


@pytest.mark.timeout(1800)
def test_two_node_fit_with_half_the_batch_ends_as_the_one_process_fit(tmp_path, capsys):
    """Global batch 8: one process takes 8, each node 4, and node r's k-th batch holds the samples at
    positions r, r+2, ... of the 1-process k-th batch. Only full batches are trained (the last, short
    one would split unevenly, and DDP averages per-node means)."""
    from vltasks.config import load_run
    from vltasks.runtime import build_task_data, prepare_synthetic

    common = [
        "--config",
        "vqa_demo",
        f"data.root={tmp_path / 'data'}",
        *TINY,
        "synthetic.train=20",
        "trainer.max_epochs=2",
    ]
    spec = load_run("vqa_demo", common[2:])
    prepare_synthetic(spec)
    full = len(build_task_data(spec)["vqa"].samples("train")) // 8
    common += [f"trainer.limit_train_batches={full}"]

    assert main(["fit", *common, f"trainer.default_root_dir={tmp_path / 'one'}", "data.batch_size=8"]) == 0
    one_dir = printed_run_dir(capsys.readouterr().out)
    rank0 = torchrun_nodes(
        ["fit", *common, f"trainer.default_root_dir={tmp_path / 'two'}", "data.batch_size=4", *on_nodes()]
    )[0]
    two_dir = printed_run_dir(rank0)

    a = torch.load(one_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    b = torch.load(two_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert a["global_step"] == b["global_step"] == 2 * full
    moved = max(
        float((a["state_dict"][k] - a0).abs().max())
        for k, a0 in torch.load(one_dir / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)[
            "state_dict"
        ].items()
    )
    worst = max(float((v - b["state_dict"][k]).abs().max()) for k, v in a["state_dict"].items())
    assert worst < 1e-5, f"weights differ by up to {worst} (training moved them by up to {moved})"
    one, two = _metrics(one_dir, "fit"), _metrics(two_dir, "fit")
    assert set(one) == set(two)
    for key in one:
        assert two[key] == pytest.approx(one[key], rel=1e-3, abs=1e-3), key
