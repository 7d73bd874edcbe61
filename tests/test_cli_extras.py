"""`vltasks configs NAME`, `--print-config`, and the export command's errors."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from vltasks.cli import main


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_configs_name_shows_the_file_with_its_comments(capsys):
    code, out, _ = _run(capsys, "configs", "vqa_demo")
    assert code == 0
    assert "# VQA on the synthetic world" in out  # the file's own first comment
    assert "pooling: pooled+max   # + max over fused tokens" in out  # an inline comment, as written
    assert "# inherits vqa: `vltasks configs vqa`" in out
    code, _, err = _run(capsys, "configs", "no_such_config")
    assert code == 2 and "config 'no_such_config' not found" in err


def test_print_config_prints_the_resolved_config_and_runs_nothing(tmp_path, capsys):
    runs = tmp_path / "runs"
    code, out, _ = _run(
        capsys,
        "fit",
        "--config",
        "vqa_demo",
        "trainer.max_epochs=3",
        f"trainer.default_root_dir={runs}",
        "--print-config",
        "data.root=/data/vqav2",
    )
    assert code == 0 and not runs.exists()
    cfg = OmegaConf.create(out)
    assert cfg.trainer.max_epochs == 3 and cfg.data.root == "/data/vqav2"
    assert cfg.tasks.vqa.head == "vqa"  # from the _base_ (vqa.yaml)
    assert cfg.logging.num_images == 8 and cfg.optim.betas == [0.9, 0.999]  # schema defaults filled in
    code, _, err = _run(capsys, "fit", "--config", "vqa_demo", "trainer.max_epoch=3", "--print_config")
    assert code == 2 and "unknown config key 'trainer.max_epoch'" in err


def test_export_names_a_missing_checkpoint(tmp_path, capsys):
    code, _, err = _run(capsys, "export", "--ckpt", str(tmp_path / "none.ckpt"), "--out", str(tmp_path / "o"))
    assert code == 1 and f"{tmp_path / 'none.ckpt'}: checkpoint not found" in err
    with pytest.raises(SystemExit):
        main(["configs", "vqa", "a=b"])  # overrides belong to the stage commands
