"""Building a run from a config: data, backbone, model, trainer, and the files a run leaves."""

from __future__ import annotations

import json
import os
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter, Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import OmegaConf

from vltasks.backbones import build_backbone
from vltasks.config import RunSpec, to_plain
from vltasks.datamodules import READERS, TaskData, VLDataModule
from vltasks.heads import HEADS
from vltasks.tasks import VLTaskModule


def build_task_data(spec: RunSpec) -> dict[str, TaskData]:
    out = {}
    for name, t in spec.tasks.items():
        d = t.data
        media = {} if d.max_image_pixels is None else {"max_image_pixels": d.max_image_pixels}
        out[name] = READERS.get(d.format)(d.root, d.splits, d.on_bad_sample, **media, **d.options)
    return out


def prepare_synthetic(spec: RunSpec) -> None:
    """The demo's world, written in each task's official format when its root does not already hold
    one written with the same sizes, seed and image size. Safe when every process of a node calls it
    (torchrun starts them before any process group exists): a file lock lets one write, the others
    wait and reuse."""
    if not spec.synthetic:
        return
    from vltasks.datamodules.synthetic import ensure_world

    syn = spec.config.synthetic
    for task in spec.tasks.values():
        d = task.data
        splits = {d.split("train"): syn.train, d.split("val"): syn.val}
        tests = {d.split("predict"): syn.test} if syn.test and d.split("predict") else None
        ensure_world(d.format, d.root, splits, test_splits=tests, seed=syn.seed, image_size=syn.image_size)


def build_model(spec: RunSpec, data: dict[str, TaskData], ckpt: str | None) -> VLTaskModule:
    """From a checkpoint (its own backbone files and data args) or fresh from the config."""
    if ckpt:
        # the architecture comes from the checkpoint; head_args given now (e.g. decoding or rerank
        # settings for evaluation) override the saved ones
        hparams = torch.load(ckpt, map_location="cpu", weights_only=True)["hyper_parameters"]
        saved = hparams["config"]
        data_args = hparams.get("data_args", hparams.get("head_args", {}))  # the name before 2026-12-02
        for name, task in spec.tasks.items():
            if name in saved["tasks"] and task.head_args:
                saved["tasks"][name]["head_args"] = {
                    **saved["tasks"][name].get("head_args", {}),
                    **task.head_args,
                }
        # what a reader declares as evaluation bookkeeping (e.g. the split names a grounding metric
        # keys by) comes from the data evaluated now, not from the data the checkpoint was fit on
        for name, d in data.items():
            if name in data_args and d.eval_data_args:
                fresh = {k: v for k, v in d.data_args().items() if k in d.eval_data_args}
                data_args[name] = {**data_args[name], **fresh}
        model = VLTaskModule.load_from_checkpoint(ckpt, map_location="cpu", config=saved, data_args=data_args)
        missing = set(spec.tasks) - set(model.task_names)
        if missing:
            raise ValueError(
                f"{ckpt}: checkpoint has no head for tasks {sorted(missing)} (it has {model.task_names})"
            )
        return model
    data_args = {n: d.data_args() for n, d in data.items()}
    needs = set(chain.from_iterable(HEADS.get(t.head).needs for t in spec.tasks.values()))
    texts = lambda: chain.from_iterable(d.texts() for d in data.values())  # noqa: E731
    backbone = build_backbone(to_plain(spec.config.backbone), texts=texts, needs=needs)
    return VLTaskModule(spec.plain(), backbone.family, backbone.export_files(), data_args, backbone=backbone)


def build_datamodule(spec: RunSpec, data: dict[str, TaskData], model: VLTaskModule) -> VLDataModule:
    """The model's own task specs (a checkpoint's tasks) with the data settings of this run."""
    return VLDataModule(
        data,
        model.backbone.processor,
        model.collate_args(),
        {n: spec.tasks[n].data for n in data},
        seed=int(spec.config.seed),
        prepare=partial(prepare_synthetic, spec),
    )


class JSONPredictionWriter(BasePredictionWriter):
    """Official submission files, one per task, gathered from all ranks, each sample once."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(write_interval="epoch")
        self.run_dir = run_dir
        self.written: dict[str, Path] = {}

    def write_on_epoch_end(
        self, trainer: L.Trainer, pl_module: Any, predictions: Any, batch_indices: Any
    ) -> None:
        rows = [
            r
            for loader in (
                predictions
                if predictions
                and isinstance(predictions[0], list)
                and predictions[0]
                and isinstance(predictions[0][0], list)
                else [predictions]
            )
            for batch in loader
            for r in batch
        ]
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            gathered: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(gathered, rows)
            rows = [r for part in gathered for r in part]
        if trainer.global_rank != 0:
            return
        per_task: dict[str, dict[str, Any]] = {}
        for r in rows:
            per_task.setdefault(r["task"], {}).setdefault(r["sample_id"], r["prediction"])
        for task, preds in per_task.items():
            path = self.run_dir / f"predictions_{task}.json"
            path.write_text(json.dumps(list(preds.values())))
            self.written[task] = path


DDP_LAUNCHERS = ("ddp", "ddp_spawn", "ddp_fork", "ddp_notebook")


def _device_count(devices: Any, accelerator: str) -> int:
    """How many devices Lightning will use on this node, as far as the config says."""
    if isinstance(devices, (list, tuple)):
        return len(devices)
    if isinstance(devices, str) and "," in devices:
        return len([d for d in devices.split(",") if d.strip()])
    if isinstance(devices, str) and devices.strip().lstrip("-").isdigit():
        devices = int(devices)
    gpus = torch.cuda.device_count() if accelerator in ("auto", "gpu", "cuda") else 0
    if devices in ("auto", -1):
        return max(gpus, 1) if devices == "auto" else max(gpus, os.cpu_count() or 1)
    return int(devices)


def resolve_strategy(strategy: str, devices: Any, num_nodes: int, accelerator: str) -> str:
    """DDP that tolerates parameters a run leaves without gradients.

    Heads use different parts of a backbone (a token-pooling grounding head never touches ViLT's
    pooler, retrieval never BLIP's decoder), and plain DDP stops on the first such parameter. So a
    multi-process run whose strategy is ``auto`` or a DDP launcher named without a choice
    (``ddp``, ``ddp_fork``, ...) gets ``<launcher>_find_unused_parameters_true``. Name
    ``<launcher>_find_unused_parameters_false`` to skip that search when every parameter is used.
    """
    many = int(num_nodes) > 1 or _device_count(devices, accelerator) > 1
    if strategy == "auto" and many:
        strategy = "ddp"
    if strategy in DDP_LAUNCHERS:
        return f"{strategy}_find_unused_parameters_true"
    return strategy


class RunInfo(Callback):
    """Logs the flat config and the data counts once per run, from inside the launched process: a
    logger touched before ``ddp_fork`` forks leaves the children a TensorBoard writer whose thread
    does not exist in them (docs/design-notes.md, 5)."""

    def __init__(self, hparams: dict[str, Any], metrics: dict[str, float]) -> None:
        self.hparams, self.metrics, self.logged = hparams, metrics, False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.logged or trainer.logger is None:
            return
        trainer.logger.log_hyperparams(self.hparams)
        if self.metrics:
            trainer.logger.log_metrics(self.metrics, step=0)
        self.logged = True


def build_trainer(
    spec: RunSpec, model: VLTaskModule, stage: str, info: RunInfo | None = None
) -> tuple[L.Trainer, Path, dict[str, Callback]]:
    """The Trainer, the run directory, and the callbacks by name (``best``, ``last``, ``lr``,
    ``predictions``, ``info``) so the caller never picks one by position."""
    cfg = spec.config
    tcfg = {k: v for k, v in to_plain(cfg.trainer).items() if v is not None}
    tcfg["strategy"] = resolve_strategy(
        str(tcfg.get("strategy", "auto")),
        tcfg.get("devices", "auto"),
        int(tcfg.get("num_nodes", 1)),
        str(tcfg.get("accelerator", "auto")),
    )
    root = tcfg.pop("default_root_dir")
    logger = TensorBoardLogger(save_dir=root, name=cfg.name, default_hp_metric=False)
    run_dir = Path(logger.log_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    first = model.task_names[0]
    monitor = f"val/{first}/{model.heads[first].monitor}"
    callbacks: dict[str, Callback] = {}
    if stage == "fit":
        callbacks["best"] = ModelCheckpoint(
            dirpath=run_dir / "checkpoints",
            filename="best",
            monitor=monitor,
            mode=model.heads[first].monitor_mode,
        )
        # Lightning 2.6's save_last writes last.ckpt only in epochs that also save a best one, so an
        # epoch without improvement left last.ckpt behind and `fit --ckpt` lost epochs: a second
        # callback without a monitor keeps exactly one file, rewritten every epoch
        callbacks["last"] = ModelCheckpoint(
            dirpath=run_dir / "checkpoints",
            filename="last",
            monitor=None,
            save_top_k=1,
            enable_version_counter=False,
        )
        callbacks["lr"] = LearningRateMonitor(logging_interval="step")
    if stage == "predict":
        callbacks["predictions"] = JSONPredictionWriter(run_dir)
    if info is not None:
        callbacks["info"] = info
    trainer = L.Trainer(
        **tcfg,
        default_root_dir=root,
        logger=logger,
        callbacks=list(callbacks.values()),
        use_distributed_sampler=False,
    )
    return trainer, run_dir, callbacks


def stage_metrics(trainer: L.Trainer, prefix: str) -> dict[str, float]:
    return {k: float(v) for k, v in sorted(trainer.callback_metrics.items()) if k.startswith(prefix + "/")}


def write_metrics(run_dir: Path, stage: str, metrics: dict[str, Any]) -> Path:
    path = run_dir / "metrics.json"
    existing = json.loads(path.read_text()) if path.is_file() else {}
    existing[stage] = metrics
    path.write_text(json.dumps(existing, indent=2, sort_keys=True))
    return path
