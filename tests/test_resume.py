"""A fit killed with SIGKILL and resumed with ``fit --ckpt last.ckpt`` ends where the uninterrupted fit
ends: the same weights, the same final metrics. Three real processes (``python -m``), so nothing of
the killed one survives but its files; dropout is on, so the RNG states must come back too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.tiny import BACKBONE

REPO = Path(__file__).resolve().parents[1]
# 24 images (about 70 questions), batches of 8: 9 steps an epoch; last.ckpt every 4 optimizer steps
RUN = [
    "synthetic.train=24",
    "synthetic.val=7",
    "synthetic.test=3",
    *BACKBONE,
    "backbone.preset_args.dropout=0.1",  # the model draws random numbers every step
    "tasks.vqa.head_args.dropout=0.1",
    "data.batch_size=8",
    "data.eval_batch_size=5",
    "data.num_workers=0",
    "trainer.max_epochs=3",
    "trainer.enable_progress_bar=false",
    "logging.num_images=0",
    "checkpoint.every_n_steps=4",
]


def _python(*args: str, env: dict[str, str]) -> subprocess.Popen:
    out = subprocess.PIPE
    return subprocess.Popen(
        [sys.executable, *args], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, text=True
    )


def _finish(proc: subprocess.Popen, timeout: float = 600) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-4000:]
    return out


def _run_dir(out: str) -> Path:
    return Path(out.split("run directory: ")[1].split()[0])


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The data folder and the run directory of the fit that nobody kills."""
    root = tmp_path_factory.mktemp("resume")
    data, runs = f"data.root={root / 'data'}", f"trainer.default_root_dir={root / 'runs'}"
    out = _finish(_python("-m", "vltasks.cli", "fit", "--config", "vqa_demo", data, runs, *RUN, env=ENV))
    return root / "data", _run_dir(out)


@pytest.mark.timeout(1800)
@pytest.mark.parametrize(
    ("every", "kill_at", "resumes_from"),
    [
        # epoch 1 (the second), after its 6th batch (global step 15): last.ckpt is step 12's, mid-epoch
        (4, (1, 5), (1, 12)),
        # early in epoch 1 without step checkpoints: last.ckpt is the end of epoch 0 (the case)
        (None, (1, 1), (0, 9)),
    ],
    ids=["mid-epoch", "epoch-end"],
)
def test_fit_killed_and_resumed_ends_as_the_uninterrupted_fit(
    uninterrupted: tuple[Path, Path],
    tmp_path: Path,
    every: int | None,
    kill_at: tuple[int, int],
    resumes_from: tuple[int, int],
) -> None:
    data_root, whole_dir = uninterrupted
    data = f"data.root={data_root}"
    run = [*RUN, f"checkpoint.every_n_steps={every or 'null'}"]
    marker = tmp_path / "killed_at"
    victim = _python(
        "-m", "tests.killable_fit", str(marker), str(kill_at[0]), str(kill_at[1]), "vqa_demo", data,
        f"trainer.default_root_dir={tmp_path}", *run, env=ENV,
    )  # fmt: skip
    deadline = time.monotonic() + 600
    while not marker.exists():
        assert victim.poll() is None, victim.communicate()[0][-4000:]
        assert time.monotonic() < deadline, "the fit never reached the batch where it is killed"
        time.sleep(0.2)
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    last = tmp_path / "vqa_demo" / "version_0" / "checkpoints" / "last.ckpt"
    state = torch.load(last, map_location="cpu", weights_only=True)
    assert (state["epoch"], state["global_step"]) == resumes_from

    resumed = _python(
        "-m", "vltasks.cli", "fit", "--config", "vqa_demo", "--ckpt", str(last), data,
        f"trainer.default_root_dir={tmp_path}", *run, env=ENV,
    )  # fmt: skip
    resumed_dir = _run_dir(_finish(resumed))
    assert resumed_dir == last.parent.parent  # the run goes on in its own directory

    want = json.loads((whole_dir / "metrics.json").read_text())["fit"]
    got = json.loads((resumed_dir / "metrics.json").read_text())["fit"]
    metrics = sorted(k for k in want if k.startswith("val/"))
    assert metrics and {k: got[k] for k in metrics} == {k: want[k] for k in metrics}
    assert Path(got["best_checkpoint"]).name == Path(want["best_checkpoint"]).name
    a = torch.load(whole_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    b = torch.load(resumed_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert (a["epoch"], a["global_step"]) == (b["epoch"], b["global_step"]) == (2, 27)
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
