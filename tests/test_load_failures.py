"""Media that fail to load in the DataLoader's workers: under ``data.on_bad_sample=skip`` the sample
is dropped from its batch, named once in the log and counted in the summary and metrics.json; without
it the run stops with the one-line data error the CLI prints for other bad input."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from tests.tiny import SHORT_RUN, printed_run_dir
from vltasks.cli import main
from vltasks.config import load_run
from vltasks.runtime import prepare_synthetic

ARGS = ["synthetic.train=16", "synthetic.val=9", "synthetic.test=0", *SHORT_RUN, "data.num_workers=2"]


@pytest.fixture()
def broken_world(tmp_path):
    """The VQA demo's world with one validation and one training image emptied (zero bytes)."""
    root = tmp_path / "data"
    prepare_synthetic(load_run("vqa_demo", [f"data.root={root}", *ARGS]))
    questions = {}
    for split in ("train2014", "val2014"):
        image = sorted((root / split).iterdir())[0]
        image.write_bytes(b"")
        qs = json.loads((root / f"v2_OpenEnded_mscoco_{split}_questions.json").read_text())["questions"]
        image_id = int(image.stem.split("_")[-1])
        questions[split] = sorted(q["question_id"] for q in qs if q["image_id"] == image_id)
    return root, questions


def _args(root, tmp_path):
    return ["--config", "vqa_demo", f"data.root={root}", f"trainer.default_root_dir={tmp_path}", *ARGS]


def test_skip_drops_counts_and_names_each_sample_once(broken_world, tmp_path, capsys, caplog):
    root, questions = broken_world
    with caplog.at_level(logging.WARNING):
        assert main(["fit", *_args(root, tmp_path), "data.on_bad_sample=skip"]) == 0
    out = capsys.readouterr().out
    counts = {f"vqa/{split}": len(q) for split, q in questions.items()}
    for key, n in counts.items():
        assert f"data: skipped {n} samples whose media could not be loaded in {key}" in out
    fit = json.loads((printed_run_dir(out) / "metrics.json").read_text())["fit"]
    assert fit["skipped_at_load"] == counts
    messages = [r.getMessage() for r in caplog.records if "could not be loaded" in r.getMessage()]
    for qid in questions["val2014"]:  # validated in every epoch and again for the best checkpoint
        assert sum(f"question_id={qid}:" in m for m in messages) == 1, messages
    assert all("unreadable image" in m for m in messages)


def test_without_skip_the_run_stops_with_one_line(broken_world, tmp_path, capsys):
    root, questions = broken_world
    assert main(["fit", *_args(root, tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("data error: ") and "\n" not in err and "Traceback" not in err
    assert (
        "2014_0" in err
        and "question_id=" in err
        and "unreadable image" in err
        and "on_bad_sample=skip" in err
    )


@pytest.mark.parametrize("deferred", [False, True], ids=["read-at-once", "read-next-step"])
def test_a_non_finite_loss_stops_the_fit_naming_step_and_samples(tmp_path, capsys, monkeypatch, deferred):
    """A learning rate of 1e30 turns the loss NaN within steps: the fit must stop there, exit 1, and
    leave no checkpoint written after the weights went bad. On an accelerator the flag is read one
    step late (no host sync per step): forced here on the CPU, with a checkpoint every step."""
    from vltasks.tasks.module import VLTaskModule

    monkeypatch.setattr(VLTaskModule, "_defer_finite_check", lambda self, loss: deferred)
    root = tmp_path / "data"
    args = ["--config", "vqa_demo", f"data.root={root}", f"trainer.default_root_dir={tmp_path}", *ARGS]
    every = ["checkpoint.every_n_steps=1"] if deferred else []
    assert (
        main(["fit", *args, "data.num_workers=0", "optim.lr=1e30", "trainer.gradient_clip_val=null", *every])
        == 1
    )
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("training error: task 'vqa': the training loss is ") and " at step " in err
    assert "on samples [" in err
    for ckpt in tmp_path.rglob("*.ckpt"):
        state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()), ckpt
