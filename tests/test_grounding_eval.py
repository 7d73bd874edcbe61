"""RefCOCO evaluation through the CLI: refer's "test" reports testA and testB from one pass, also
from a checkpoint fit on one part (or written before per-split keys); stale synthetic layouts."""

from __future__ import annotations

import json

import torch
from vltasks.datamodules.synthetic.refcoco import IMAGE_DIR, LAYOUT, write_refcoco

from tests.tiny import SHORT_RUN, printed_run_dir
from vltasks.cli import main
from vltasks.config import load_run
from vltasks.runtime import prepare_synthetic

TINY = ["synthetic.enabled=false", *SHORT_RUN]


def test_test_split_reports_both_parts_even_from_an_older_checkpoint(tmp_path, capsys):
    data = tmp_path / "data"
    write_refcoco(data, {"train": 12, "val": 6}, seed=1, test_splits={"testA": 3, "testB": 3})
    common = ["--config", "refcoco_demo", f"data.root={data}", f"trainer.default_root_dir={tmp_path}", *TINY]
    assert main(["fit", *common, "data.test_split=testB"]) == 0
    best = json.loads((printed_run_dir(capsys.readouterr().out) / "metrics.json").read_text())["fit"][
        "best_checkpoint"
    ]
    ckpt = torch.load(best, map_location="cpu", weights_only=True)
    assert ckpt["hyper_parameters"]["data_args"]["refcoco"]["eval_splits"]["test"] == ["testB"]
    ckpt["hyper_parameters"]["data_args"]["refcoco"]["eval_splits"] = {"val": "val", "test": "testB"}
    # the form written before per-split keys, and before data_args had their own name (head_args)
    ckpt["hyper_parameters"]["head_args"] = ckpt["hyper_parameters"].pop("data_args")
    torch.save(ckpt, tmp_path / "old.ckpt")
    for path in (best, tmp_path / "old.ckpt"):
        assert main(["test", *common, "--ckpt", str(path), "data.test_split=test"]) == 0
        got = json.loads((printed_run_dir(capsys.readouterr().out) / "metrics.json").read_text())["test"]
        keys = sorted(k for k in got if k.startswith("test/refcoco/acc"))
        assert keys == ["test/refcoco/acc@0.5_testA", "test/refcoco/acc@0.5_testB"], got


def test_a_synthetic_world_of_an_older_layout_is_written_again(tmp_path, capsys):
    root = tmp_path / "world"
    spec = load_run(
        "refcoco_demo", [f"data.root={root}", "synthetic.train=4", "synthetic.val=2", "synthetic.test=2"]
    )
    prepare_synthetic(spec)
    meta = root / "synthetic_meta.json"
    assert json.loads(meta.read_text())["layout"] == LAYOUT and any((root / IMAGE_DIR).iterdir())
    before = meta.stat().st_mtime_ns
    prepare_synthetic(spec)  # the same layout: left alone
    assert meta.stat().st_mtime_ns == before
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "layout": 1}))
    capsys.readouterr()
    prepare_synthetic(spec)
    assert "written by an older vltasks (layout 1, now 2)" in capsys.readouterr().out
    assert json.loads(meta.read_text())["layout"] == LAYOUT
