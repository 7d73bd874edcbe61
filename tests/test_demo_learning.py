"""The demos learn: each `*_demo` config, trained in full, ends well above its trivial baseline.

Minutes per demo on a 2-core CPU (docs/tasks.md has the figures), so these are marked slow and left
out of CI: `pytest -m slow tests/test_demo_learning.py`. CI runs the short form of every demo in
test_demo_configs.py. Each floor sits below the measured value and far above the baseline, so a
change that stops a demo from learning fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vltasks.cli import main
from vltasks.config import builtin_configs

# demo -> (metric in metrics.json, floor, the trivial baseline it must clear, measured value)
FLOORS: dict[str, tuple[str, float, float, float]] = {
    "vqa_demo": ("val/vqa/accuracy", 0.70, 0.286, 0.781),  # baseline: always "no"
    "snli_ve_demo": ("val/snli_ve/accuracy", 0.80, 0.667, 0.898),  # baseline: hypothesis only
    "refcoco_demo": ("val/refcoco/acc@0.5_val", 0.60, 0.352, 0.734),  # baseline: a random object
    "vcr_demo": ("val/vcr/q2ar", 0.40, 0.0625, 0.572),  # chance
    "visual7w_demo": ("val/visual7w/accuracy", 0.65, 0.317, 0.818),  # most frequent answer
    "retrieval_demo": ("val/retrieval/r_mean", 0.60, 0.053, 0.772),  # chance
    "caption_demo": ("val/caption/CIDEr", 3.0, 1.262, 3.718),  # most frequent train caption
    # the video demos clear what one frame allows (the shapes in view, no motion)
    "video_retrieval_demo": ("val/retrieval/t2v_r1", 0.18, 0.080, 0.258),  # one frame per clip
    # captions: the most frequent train caption; a caption from one frame scores 2.227 (docs/tasks.md)
    "video_caption_demo": ("val/caption/CIDEr", 2.5, 0.576, 2.940),  # floor above one frame's 2.227
    # answers: the most frequent training answer; the answer from one frame is 0.465 (docs/tasks.md)
    "video_qa_demo": ("val/qa/accuracy", 0.55, 0.085, 0.670),  # floor above one frame's 0.465
    "charades_sta_demo": ("val/charades/R1@0.5", 0.20, 0.122, 0.269),  # a random window
    "qvhighlights_demo": ("val/qvhighlights/MR-full-R1@0.5", 0.30, 0.166, 0.412),  # a random window
    "densecap_demo": ("val/densecap/det_map", 0.60, 0.013, 0.888),  # random boxes of train sizes
    # the mean of the three tasks' metrics; baseline: the mean of their single-task baselines
    "multitask_demo": ("val/aggregate", 0.70, 0.435, 0.799),
}


def test_every_demo_has_a_floor():
    assert set(FLOORS) == {c for c in builtin_configs() if c.endswith("_demo")}
    for metric, floor, baseline, measured in FLOORS.values():
        assert baseline < floor < measured, metric


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("name", sorted(FLOORS))
def test_demo_ends_well_above_its_baseline(name: str, tmp_path: Path, capsys) -> None:
    metric, floor, baseline, _ = FLOORS[name]
    args = [f"data.root={tmp_path / 'data'}", f"trainer.default_root_dir={tmp_path}"]
    assert main(["fit", "--config", name, *args, "trainer.enable_progress_bar=false"]) == 0
    run_dir = Path(capsys.readouterr().out.split("run directory: ")[1].split()[0])
    reached = json.loads((run_dir / "metrics.json").read_text())["fit"][metric]
    assert reached >= floor, f"{name}: {metric} = {reached:.3f} (baseline {baseline}, floor {floor})"
