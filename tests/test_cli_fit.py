"""End to end through the CLI: a short fit, test from its checkpoint, predict, resume, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from vltasks.datamodules.vqav2 import image_file, questions_file

from tests.tiny import BACKBONE
from vltasks.cli import main

TINY = [
    "synthetic.enabled=false",
    *BACKBONE,
    "data.batch_size=16",
    "data.eval_batch_size=16",
    "data.num_workers=0",
    "trainer.enable_progress_bar=false",
    "logging.num_images=2",
]


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def fitted(vqa_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    args = [
        "fit",
        "--config",
        "vqa_demo",
        f"data.root={vqa_root}",
        f"trainer.default_root_dir={root}",
        "trainer.max_epochs=2",
        *TINY,
    ]
    assert main(args) == 0
    run_dir = root / "vqa_demo" / "version_0"
    return run_dir, root


def test_fit_leaves_checkpoints_metrics_config_and_tensorboard(fitted):
    run_dir, _ = fitted
    assert (run_dir / "checkpoints" / "best.ckpt").is_file() and (
        run_dir / "checkpoints" / "last.ckpt"
    ).is_file()
    metrics = json.loads((run_dir / "metrics.json").read_text())["fit"]
    assert 0.0 <= metrics["val/vqa/accuracy"] <= 1.0 and "val/vqa/loss" in metrics
    assert (run_dir / "config.yaml").read_text().count("vqa_demo") >= 1
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"images": 0}).Reload()
    tags = events.Tags()
    assert "val/vqa/accuracy" in tags["scalars"] and "train/vqa/loss" in tags["scalars"]
    assert "val/vqa/examples" in tags["images"]


def test_checkpoint_loads_under_weights_only_and_test_reproduces_validation(fitted, vqa_root, capsys):
    run_dir, root = fitted
    best = run_dir / "checkpoints" / "best.ckpt"
    ckpt = torch.load(best, weights_only=True, map_location="cpu")  # plain containers only
    assert ckpt["hyper_parameters"]["config"]["tasks"]["vqa"]["head"] == "vqa"
    from vltasks.tasks import VLTaskModule

    model = VLTaskModule.load_from_checkpoint(best, map_location="cpu")
    assert model.heads["vqa"].answers == ckpt["hyper_parameters"]["data_args"]["vqa"]["answers"]
    code, out, _ = _run(
        capsys,
        "test",
        "--config",
        "vqa_demo",
        "--ckpt",
        str(best),
        f"data.root={vqa_root}",
        f"trainer.default_root_dir={root}",
        *TINY,
    )
    assert code == 0
    test_dir = Path(out.split("run directory: ")[1].split()[0])
    val = json.loads((run_dir / "metrics.json").read_text())["fit"]["val/vqa/accuracy"]
    test = json.loads((test_dir / "metrics.json").read_text())["test"]["test/vqa/accuracy"]
    assert test == pytest.approx(val, abs=1e-7)


def test_predict_writes_official_results_json(fitted, vqa_root, capsys):
    run_dir, root = fitted
    code, out, _ = _run(
        capsys,
        "predict",
        "--config",
        "vqa_demo",
        "--ckpt",
        str(run_dir / "checkpoints/best.ckpt"),
        f"data.root={vqa_root}",
        "data.predict_split=test-dev2015",
        f"trainer.default_root_dir={root}",
        *TINY,
    )
    assert code == 0
    path = Path(out.split("predictions for vqa: ")[1].split()[0])
    preds = json.loads(path.read_text())
    questions = json.loads(questions_file(vqa_root, "test-dev2015").read_text())["questions"]
    assert sorted(p["question_id"] for p in preds) == sorted(q["question_id"] for q in questions)
    assert all(set(p) == {"question_id", "answer"} and isinstance(p["answer"], str) for p in preds)


def test_fit_resumes_from_checkpoint(fitted, vqa_root, capsys):
    run_dir, root = fitted
    last = run_dir / "checkpoints" / "last.ckpt"
    before = torch.load(last, weights_only=True, map_location="cpu")
    code, out, _ = _run(
        capsys,
        "fit",
        "--config",
        "vqa_demo",
        "--ckpt",
        str(last),
        f"data.root={vqa_root}",
        f"trainer.default_root_dir={root}",
        "trainer.max_epochs=3",
        *TINY,
    )
    assert code == 0
    new_dir = Path(out.split("run directory: ")[1].split()[0])
    assert new_dir == run_dir  # a resumed fit goes on in its own run directory
    resumed = torch.load(new_dir / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert resumed["epoch"] == 2 and before["epoch"] == 1
    assert resumed["global_step"] > before["global_step"]


def test_deleted_image_fails_with_path_and_question_id(vqa_root, tmp_path, capsys):
    import shutil

    root = tmp_path / "vqa"
    shutil.copytree(vqa_root, root)
    q = json.loads(questions_file(root, "val2014").read_text())["questions"][0]
    img = image_file(root, "val2014", q["image_id"])
    img.unlink()
    code, _, err = _run(
        capsys,
        "fit",
        "--config",
        "vqa_demo",
        f"data.root={root}",
        f"trainer.default_root_dir={tmp_path}",
        *TINY,
    )
    assert code != 0
    assert str(img) in err and f"question_id={q['question_id']}" in err


@pytest.mark.parametrize(
    "override,message,listed",
    [
        ("trainer.max_epoch=1", "unknown config key 'trainer.max_epoch'; valid keys here: ", "max_epochs"),
        ("trainer.max_epochs=many", "config key 'trainer.max_epochs'", "Integer"),
        ("tasks.vqa.head=nope", "unknown head 'nope'; valid: ", "vqa"),
        ("data.format=coco", "unknown format 'coco'; valid: ", "vqav2"),
        ("data.on_bad_sample=ignore", "on_bad_sample: 'ignore' is not one of ", "error, skip"),
        ("backbone.preset=huge", "unknown preset 'huge'; valid: ", "vilt_tiny"),
    ],
)
def test_config_errors_name_the_key_and_choices(override, message, listed, capsys):
    code, _, err = _run(capsys, "fit", "--config", "vqa_demo", override)
    assert code == 2 and message in err
    assert listed in err.split(message)[1]  # the valid choices follow the message


def test_configs_lists_builtins(capsys):
    code, out, _ = _run(capsys, "configs")
    assert code == 0 and "vqa_demo" in out and "vqa " in out
    code, _, err = _run(capsys, "fit", "--config", "no_such_config")
    assert code == 2 and "config 'no_such_config' not found; built-in configs: " in err
    assert "vqa, vqa_demo" in err


def test_fit_from_a_local_pretrained_directory(vqa_root, tmp_path, tokenizer, capsys):
    """The real-data path: `backbone=<dir>` goes through transformers' from_pretrained, offline."""
    from vltasks.backbones import ViltBackbone

    saved = tmp_path / "my_vilt"
    args = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64, "patch_size": 16}
    ViltBackbone.from_config(args, tokenizer).save_pretrained(saved)
    code, out, _ = _run(
        capsys,
        "fit",
        "--config",
        "vqa_demo",
        f"backbone={saved}",
        f"data.root={vqa_root}",
        f"trainer.default_root_dir={tmp_path}",
        "trainer.max_epochs=1",
        *TINY,
    )
    assert code == 0
    ckpt = torch.load(
        Path(out.split("run directory: ")[1].split()[0]) / "checkpoints" / "last.ckpt",
        weights_only=True,
        map_location="cpu",
    )
    files = ckpt["hyper_parameters"]["backbone_files"]
    assert files["tokenizer.json"] == (saved / "tokenizer.json").read_text()


def test_head_args_given_at_evaluation_override_the_checkpoint(fitted, vqa_root):
    from vltasks import runtime
    from vltasks.config import load_run

    run_dir, _ = fitted
    spec = load_run("vqa_demo", [f"data.root={vqa_root}", "tasks.vqa.head_args.protocol=evalai", *TINY])
    model = runtime.build_model(
        spec, runtime.build_task_data(spec), str(run_dir / "checkpoints" / "best.ckpt")
    )
    assert model.heads["vqa"].protocol == "evalai"
    assert model.metrics["val"]["vqa"]["accuracy"].protocol == "evalai"
