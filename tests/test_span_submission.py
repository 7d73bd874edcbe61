"""The QVHighlights demo end to end: the predictions file is the leaderboard's jsonl, and scoring it
with `vltasks score` against the GT jsonl gives the validation metrics training reported."""

from __future__ import annotations

import json

from tests.tiny import SHORT_RUN, printed_run_dir
from vltasks.cli import main


def test_the_predicted_jsonl_scores_as_validation_reported(tmp_path, capsys):
    data = tmp_path / "data"
    common = [
        "--config",
        "qvhighlights_demo",
        f"data.root={data}",
        f"trainer.default_root_dir={tmp_path}",
        "synthetic.train=10",
        "synthetic.val=6",
        "synthetic.test=2",
        *SHORT_RUN,
    ]
    assert main(["fit", *common]) == 0
    fit = json.loads((printed_run_dir(capsys.readouterr().out) / "metrics.json").read_text())["fit"]
    assert main(["predict", *common, "--ckpt", fit["best_checkpoint"], "data.predict_split=val"]) == 0
    (path,) = printed_run_dir(capsys.readouterr().out).glob("predictions_*.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows and set(rows[0]) == {"qid", "query", "vid", "pred_relevant_windows", "pred_saliency_scores"}
    out = tmp_path / "scores.json"
    gt = data / "highlight_val_release.jsonl"
    assert main(["score", "qvhighlights", str(path), "--gt", str(gt), "--out", str(out)]) == 0
    brief = json.loads(out.read_text())["brief"]
    for key in ("MR-full-mAP", "MR-full-R1@0.5", "HL-min-VeryGood-mAP", "HL-min-VeryGood-Hit1"):
        # the official script prints percent with 2 decimals; the file's windows are rounded to 0.01 s
        assert abs(brief[key] / 100 - fit[f"val/qvhighlights/{key}"]) < 0.011, key
