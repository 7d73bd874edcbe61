"""Registry-driven (timm's pattern): every built-in `*_demo` config fits for one short epoch on a
tiny synthetic world with a tiny backbone, reports its metrics, and predicts in its official format.
A new task's demo config is picked up here without anyone writing a new test."""

from __future__ import annotations

import json

import pytest

from tests.tiny import SHORT_RUN, printed_run_dir
from vltasks.cli import main
from vltasks.config import builtin_configs, load_config

DEMOS = [c for c in builtin_configs() if c.endswith("_demo")]
TINY = ["synthetic.train=12", "synthetic.val=7", "synthetic.test=3", *SHORT_RUN]


@pytest.mark.parametrize("name", DEMOS)
def test_demo_config_fits_and_predicts(name, tmp_path, capsys):
    common = [
        "--config",
        name,
        f"data.root={tmp_path / 'data'}",
        f"trainer.default_root_dir={tmp_path}",
        *TINY,
    ]
    assert main(["fit", *common]) == 0
    run_dir = printed_run_dir(capsys.readouterr().out)
    fit = json.loads((run_dir / "metrics.json").read_text())["fit"]
    cfg = load_config(name)
    for task in cfg.tasks:
        assert any(k.startswith(f"val/{task}/") and k != f"val/{task}/loss" for k in fit), (task, fit)
        baselines = fit["synthetic"][task].get("baselines") if cfg.tasks[task].head != "vqa" else True
        assert baselines, (task, fit["synthetic"])  # what the demo prints beside its metrics
    _check_tensorboard(run_dir, cfg, fit)
    best = fit["best_checkpoint"]
    assert main(["predict", *common, "--ckpt", best]) == 0
    pred_dir = printed_run_dir(capsys.readouterr().out)
    for task in cfg.tasks:
        (path,) = pred_dir.glob(f"predictions_{task}.json*")  # a JSON list, or a leaderboard's jsonl
        text = path.read_text()
        rows = json.loads(text) if path.suffix == ".json" else [json.loads(x) for x in text.splitlines()]
        assert rows and all(isinstance(r, dict) for r in rows)


def _check_tensorboard(run_dir, cfg, fit: dict) -> None:
    """Every head on images draws its validation examples (clips have no panel yet), and the run
    has one hparams entry holding its final metrics (``final/<key>``)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2
    from vltasks.datamodules import READERS

    events = EventAccumulator(str(run_dir), size_guidance={"images": 1, "scalars": 0}).Reload()
    for task, spec in cfg.tasks.items():
        fmt = (spec.get("data") or {}).get("format") or cfg.data.format
        if "video" in READERS.get(fmt).needs:
            continue
        assert f"val/{task}/examples" in events.Tags()["images"], (task, events.Tags()["images"])
    content = events.PluginTagToContent("hparams")["_hparams_/experiment"]
    metrics = {
        m.name.tag for m in plugin_data_pb2.HParamsPluginData.FromString(content).experiment.metric_infos
    }
    assert {f"final/{k}" for k in fit if k.startswith("val/")} <= metrics


@pytest.mark.parametrize("name", builtin_configs())
def test_every_builtin_config_names_a_reader_and_a_head_its_backbone_can_serve(name):
    """Real-data configs cannot run here (no hub, no datasets), so check what can be: each loads,
    each task's data format has a reader, and each head's needs are capabilities of the family."""
    from vltasks.datamodules import READERS
    from vltasks.heads import HEADS

    from vltasks.backbones import BACKBONES

    cfg = load_config(name)
    family = BACKBONES.get(cfg.backbone.name)
    for task, spec in cfg.tasks.items():
        fmt = (spec.get("data") or {}).get("format") or cfg.data.format
        assert fmt in READERS, (name, task, fmt)
        assert HEADS.get(spec.head).needs <= family.buildable, (name, task, spec.head)


@pytest.mark.parametrize("name", ["vqa_demo", "retrieval_demo", "vcr_demo"])
def test_demo_fits_with_worker_processes(name, tmp_path, capsys):
    """Real configs load with workers: batches built in worker processes (image decoding, the
    processor, retrieval's gallery, VCR's candidate rows) must reach the model intact."""
    common = ["--config", name, f"data.root={tmp_path / 'data'}", f"trainer.default_root_dir={tmp_path}"]
    assert main(["fit", *common, *TINY, "data.num_workers=2"]) == 0
    fit = json.loads((printed_run_dir(capsys.readouterr().out) / "metrics.json").read_text())["fit"]
    assert any(k.startswith("val/") and not k.endswith("/loss") for k in fit)
