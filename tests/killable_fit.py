"""A `vltasks fit` that the resume test kills: ``python -m tests.killable_fit MARKER EPOCH BATCH
CONFIG [overrides...]`` fits through the Python API (what the CLI runs) and, after training batch
BATCH of epoch EPOCH, writes MARKER and waits to be killed with SIGKILL (no clean shutdown, no final
checkpoint: what a lost node or an OOM killer leaves). Without ``--stop``-style arguments it would
be the CLI itself, so the uninterrupted and resumed runs use ``python -m vltasks.cli``."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback


class WaitToBeKilled(Callback):
    def __init__(self, marker: Path, epoch: int, batch: int) -> None:
        self.marker, self.epoch, self.batch = marker, epoch, batch

    def on_train_batch_end(self, trainer: L.Trainer, module: Any, outputs: Any, batch: Any, idx: int) -> None:
        if trainer.current_epoch == self.epoch and idx == self.batch:
            self.marker.write_text(f"{trainer.global_step}\n")
            time.sleep(600)  # the test kills us here; if it does not, the test times out
            raise SystemExit(3)


def main(argv: list[str]) -> int:
    from vltasks import api

    marker, epoch, batch, config, *overrides = argv
    run = api.build(config, overrides, stage="fit")
    kwargs = dict(run.trainer_kwargs)
    kwargs["callbacks"] = [*kwargs["callbacks"], WaitToBeKilled(Path(marker), int(epoch), int(batch))]
    L.Trainer(**kwargs).fit(run.model, run.datamodule)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
