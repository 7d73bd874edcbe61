"""The README's Python API example, run as written (only its `overrides` line shrunk to a tiny run),
gives the CLI's metrics and files on the demo; `api.build` serves the other stages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.tiny import SHORT_RUN
from vltasks.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"
WRITTEN = 'overrides = ["trainer.max_epochs=2"]'
TINY = ["synthetic.train=12", "synthetic.val=7", "synthetic.test=3", *SHORT_RUN]


def readme_example() -> str:
    section = README.read_text().split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None, "README: the Python API section has no python block"
    assert WRITTEN in code.group(1), f"README: the example's overrides line changed; update {__file__}"
    return code.group(1)


def test_readme_example_gives_the_clis_metrics_and_files(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the demo config's data/ and runs/ are relative paths
    example = readme_example().replace(WRITTEN, f"overrides = {TINY!r}")
    scope: dict = {}
    exec(compile(example, str(README), "exec"), scope)  # noqa: S102 - the README's own code
    out = capsys.readouterr().out
    api_dir = tmp_path / "runs" / "vqa_demo" / "version_0"
    api_fit = json.loads((api_dir / "metrics.json").read_text())["fit"]
    assert scope["metrics"] == api_fit
    for name in ("config.yaml", "checkpoints/best.ckpt", "checkpoints/last.ckpt"):
        assert (api_dir / name).is_file(), name
    assert next(api_dir.glob("events.out.tfevents.*"))
    answer = out.strip().splitlines()[-1]
    assert " -> " in answer and answer.split(" -> ")[1] in scope["model"].heads["vqa"].answers

    assert main(["fit", "--config", "vqa_demo", *TINY]) == 0
    cli_fit = json.loads((tmp_path / "runs" / "vqa_demo" / "version_1" / "metrics.json").read_text())["fit"]
    values = {k: v for k, v in cli_fit.items() if k.startswith("val/")}
    assert values and values == pytest.approx({k: api_fit[k] for k in values}, abs=1e-6)
    assert set(cli_fit) == set(api_fit)


def test_build_prepares_evaluation_and_prediction(tmp_path, monkeypatch):
    import lightning as L

    from vltasks import api

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="stage must be one of"):
        api.build("vqa_demo", TINY, stage="train")
    fit = api.build("vqa_demo", [*TINY, "trainer.max_epochs=1"], stage="fit")
    trainer = L.Trainer(**fit.trainer_kwargs)
    trainer.fit(fit.model, fit.datamodule)
    best = fit.finish(trainer)["best_checkpoint"]
    test = api.build("vqa_demo", TINY, stage="predict", ckpt=best)
    assert set(test.callbacks) == {"predictions", "info"}
    trainer = L.Trainer(**test.trainer_kwargs)
    trainer.predict(test.model, test.datamodule, return_predictions=False)
    written = test.finish(trainer)
    rows = json.loads(Path(written["vqa"]).read_text())
    assert rows and set(rows[0]) == {"question_id", "answer"}
    assert api.read_metrics(test.run_dir)["predict"] == written
