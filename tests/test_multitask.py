"""Two tasks at once on one backbone through the CLI: VQAv2 + SNLI-VE, each with its own data.root and
format, written by the synthetic writers; one fit logs both tasks' official metrics, and one predict
writes both official prediction files from the shared checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from tests.tiny import printed_run_dir
from vltasks.cli import main


def _config(tmp_path: Path) -> Path:
    cfg = {
        "name": "vqa_snli_ve",
        "backbone": {
            "name": "vilt",
            "pretrained": None,
            "preset": "vilt_tiny",
            "preset_args": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64},
        },
        "tasks": {
            "vqa": {
                "head": "vqa",
                "data": {
                    "format": "vqav2",
                    "root": str(tmp_path / "vqav2"),
                    "train_split": "train2014",
                    "val_split": "val2014",
                    "predict_split": "test2015",
                    "options": {"min_answer_count": 1},
                },
            },
            "snli_ve": {
                "head": "entailment",
                "weight": 0.5,
                "data": {
                    "format": "snli_ve",
                    "root": str(tmp_path / "snli_ve"),
                    "train_split": "train",
                    "val_split": "dev",
                    "predict_split": "test",
                    "batch_size": 6,
                },
            },
        },
        "data": {"batch_size": 4, "eval_batch_size": 5, "num_workers": 0},
        "synthetic": {"enabled": True, "train": 12, "val": 7, "test": 3},
        "optim": {"lr": 5e-4, "head_lr_mult": 1.0, "warmup": 0.0},
        "trainer": {
            "max_epochs": 1,
            "accelerator": "cpu",
            "devices": 1,
            "precision": "32-true",
            "default_root_dir": str(tmp_path / "runs"),
            "enable_progress_bar": False,
            "log_every_n_steps": 1,
        },
        "logging": {"num_images": 1},
    }
    path = tmp_path / "vqa_snli_ve.yaml"
    OmegaConf.save(OmegaConf.create(cfg), path)
    return path


def test_two_tasks_one_backbone_fit_and_predict(tmp_path, capsys):
    config = str(_config(tmp_path))
    assert main(["fit", "--config", config]) == 0
    run_dir = printed_run_dir(capsys.readouterr().out)
    assert (tmp_path / "vqav2" / "synthetic_meta.json").is_file()
    assert (tmp_path / "snli_ve" / "snli_ve_train.jsonl").is_file()
    fit = json.loads((run_dir / "metrics.json").read_text())["fit"]
    assert 0.0 <= fit["val/vqa/accuracy"] <= 1.0 and "val/vqa/loss" in fit
    for key in ("accuracy", "entailment", "neutral", "contradiction", "loss"):
        assert f"val/snli_ve/{key}" in fit, (key, sorted(fit))

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars = EventAccumulator(str(run_dir)).Reload().Tags()["scalars"]
    assert {"train/vqa/loss", "train/snli_ve/loss", "train/loss"} <= set(scalars)

    assert main(["predict", "--config", config, "--ckpt", fit["best_checkpoint"]]) == 0
    pred_dir = printed_run_dir(capsys.readouterr().out)
    vqa = json.loads((pred_dir / "predictions_vqa.json").read_text())
    snli = json.loads((pred_dir / "predictions_snli_ve.json").read_text())
    assert vqa and set(vqa[0]) == {"question_id", "answer"}
    assert len(snli) == 9 and {r["label"] for r in snli} <= {"entailment", "neutral", "contradiction"}
    assert len({r["pairID"] for r in snli}) == 9
