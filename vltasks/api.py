"""The Python API: what `vltasks fit|validate|test|predict` does, in pieces a script with its own
`lightning.Trainer` can call. The CLI is built on it, so both give the same metrics and files.

    import lightning as L
    from vltasks import api

    run = api.build("vqa_demo", ["trainer.max_epochs=2"], stage="fit")
    trainer = L.Trainer(**run.trainer_kwargs)      # add or change any Trainer argument
    trainer.fit(run.model, run.datamodule)
    metrics = run.finish(trainer)                  # metrics.json, TensorBoard hparams, the summary

`build` loads the config (name or path, dotted overrides), writes the synthetic world when the config
asks for one, reads and validates the data, and builds the `VLTaskModule` (fresh, or from ``ckpt``)
and the `VLDataModule`. ``run.trainer_kwargs`` holds the config's trainer settings, the TensorBoard
logger of the run directory and the callbacks (checkpoints, learning rate, predictions, summary).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from vltasks import runtime
from vltasks.config import RunSpec, load_run
from vltasks.datamodules import VLDataModule
from vltasks.logs import quiet_warnings, setup_logging
from vltasks.tasks import VLTaskModule

STAGES = ("fit", "validate", "test", "predict")
NEEDED_SPLITS = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("predict",)}

__all__ = ["STAGES", "Run", "VLTaskModule", "build", "load_run", "setup_logging"]


@dataclass
class Run:
    """One run of one stage: the model, the data, and what a Trainer needs to leave the CLI's files."""

    spec: RunSpec
    stage: str
    model: VLTaskModule
    datamodule: VLDataModule
    run_dir: Path
    callbacks: dict[str, Callback]
    trainer_kwargs: dict[str, Any]
    hparams: dict[str, str] = field(default_factory=dict)

    def finish(self, trainer: L.Trainer) -> dict[str, Any]:
        """The end of a stage, as the CLI ends it: for ``fit`` the best checkpoint is validated (when
        the trainer has not just done so) and its metrics are the fit's; ``metrics.json`` is written,
        TensorBoard gets one hparams entry with the final metrics, and a one-screen summary says
        what was reached, against which baselines, and where the files are. Returns what
        ``metrics.json`` holds for the stage."""
        model, dm = self.model, self.datamodule
        result: dict[str, Any] = {}
        if self.stage == "fit":
            best = self._best_checkpoint()
            if best and trainer.ckpt_path != best:
                trainer.validate(model, dm, ckpt_path=best, verbose=False)
            result = {**runtime.stage_metrics(trainer, "val"), "best_checkpoint": best}
            title = f"validation metrics of the best checkpoint ({best})"
            if trainer.global_rank == 0:  # under torchrun or srun every process gets here
                self._print_table(title, runtime.stage_metrics(trainer, "val"))
            if self.spec.synthetic and trainer.global_rank == 0:
                from vltasks.demo import synthetic_report

                if getattr(model, "sharded", False) and best:  # rank 0 alone cannot gather FSDP shards
                    model = VLTaskModule.load_from_checkpoint(best, map_location="cpu")
                result["synthetic"] = synthetic_report(self.spec, model, dm, best)
        elif self.stage in ("validate", "test"):
            prefix = "val" if self.stage == "validate" else "test"
            result = runtime.stage_metrics(trainer, prefix)
            if trainer.global_rank == 0:
                self._print_table(f"{self.stage} metrics", result)
            if self.spec.synthetic and trainer.global_rank == 0:
                from vltasks.demo import print_baselines

                baselines = print_baselines(self.spec, prefix)
                if baselines:
                    result = {**result, "synthetic": baselines}
        else:
            written = getattr(self.callbacks.get("predictions"), "written", {})
            result = {t: str(p) for t, p in written.items()}
            for t, p in result.items():
                print(f"predictions for {t}: {p}")
        unreadable = dm.failed_counts(trainer)
        for k, v in unreadable.items():
            print(f"data: skipped {v} samples whose media could not be loaded in {k}")
        if unreadable:
            result["skipped_at_load"] = unreadable
        if trainer.global_rank == 0:
            path = runtime.write_metrics(self.run_dir, self.stage, result)
            runtime.log_final(trainer, self.hparams, {k: v for k, v in result.items() if "/" in k})
            print(f"\nrun directory: {self.run_dir}\nmetrics: {path}")
            if self.stage == "fit":
                print(f"checkpoints: {self.run_dir / 'checkpoints'} (best.ckpt, last.ckpt)")
            print(f"TensorBoard: tensorboard --logdir {self.run_dir.parent}")
        return result

    def _best_checkpoint(self) -> str:
        for name in ("best", "last"):
            path = getattr(self.callbacks.get(name), "best_model_path", "")
            if path:
                return str(path)
        return ""

    @staticmethod
    def _print_table(title: str, metrics: dict[str, float]) -> None:
        if not metrics:
            return
        width = max(len(k) for k in metrics)
        print(f"\n{title}")
        for k, v in metrics.items():
            print(f"  {k:<{width}}  {v:.4f}")


def build(
    config: str | RunSpec,
    overrides: list[str] | tuple[str, ...] = (),
    stage: str = "fit",
    ckpt: str | None = None,
) -> Run:
    """Everything a stage needs, from a config name or YAML path (with dotted overrides) or a
    `RunSpec` from `load_run`. ``ckpt``: for ``fit`` the checkpoint to resume (pass it to
    ``trainer.fit(..., ckpt_path=ckpt)`` too), otherwise the weights to evaluate or predict with.
    Bad data fails here, naming the file and the record, before any Trainer exists."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    quiet_warnings()  # only the dependency warnings vltasks.logs names, matched by message and module
    spec = config if isinstance(config, RunSpec) else load_run(config, list(overrides))
    runtime.prepare_synthetic(spec)
    L.seed_everything(spec.config.seed, workers=True, verbose=False)
    data = runtime.build_task_data(spec)
    for d in data.values():
        for s in NEEDED_SPLITS[stage]:
            d.samples(s)  # read and validate now: bad input fails before any training
    model = runtime.build_model(spec, data, ckpt if stage != "fit" or ckpt else None)
    dm = runtime.build_datamodule(spec, data, model)
    skipped = dm.skipped_counts()
    hparams = {k: str(v) for k, v in _flatten(spec.plain()).items()}
    info = runtime.RunInfo(hparams, {f"data/{k}/skipped": v for k, v in skipped.items()})
    kwargs, run_dir, callbacks = runtime.trainer_kwargs(spec, model, stage, info, resume=ckpt)
    for k, v in skipped.items():
        if v:
            print(f"data: skipped {v} bad records in {k}")
    return Run(spec, stage, model, dm, run_dir, callbacks, kwargs, hparams)


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    """A run directory's metrics.json (one entry per stage run in it)."""
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def _flatten(d: object, prefix: str = "") -> dict[str, object]:
    if isinstance(d, dict):
        out: dict[str, object] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}
