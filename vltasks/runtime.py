"""Building a run from a config: data, backbone, model, trainer, and the files a run leaves."""

from __future__ import annotations

import json
import logging
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
from vltasks.export import load_task_layers, pretrained_task_layers
from vltasks.heads import HEADS
from vltasks.logs import PartsSummary
from vltasks.tasks import VLTaskModule

log = logging.getLogger(__name__)


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
        # a predict split that is the train or val split is that split (not a question-only one)
        extra = d.split("predict") not in splits
        tests = {d.split("predict"): syn.test} if syn.test and d.split("predict") and extra else None
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
    needs |= set(chain.from_iterable(d.needs for d in data.values()))  # clips need the video adapter
    texts = lambda: chain.from_iterable(d.texts() for d in data.values())  # noqa: E731
    backbone = build_backbone(to_plain(spec.config.backbone), texts=texts, needs=needs)
    # a transformers task model as backbone.pretrained: its task layer (and VQA answers) when it fits
    layers = pretrained_task_layers(spec, data_args, backbone.hidden_size)
    model = VLTaskModule(spec.plain(), backbone.family, backbone.export_files(), data_args, backbone=backbone)
    load_task_layers(model, layers)
    return model


def build_datamodule(spec: RunSpec, data: dict[str, TaskData], model: VLTaskModule) -> VLDataModule:
    """The model's own task specs (a checkpoint's tasks) with the data settings of this run."""
    return VLDataModule(
        data,
        model.backbone.processor,
        model.collate_args(),
        {n: spec.tasks[n].data for n in data},
        seed=int(spec.config.seed),
        prepare=partial(prepare_synthetic, spec),
        sampling={k: v for k, v in to_plain(spec.config.multitask).items() if k in SCHEDULE_KEYS},
    )


SCHEDULE_KEYS = (
    "sampling",
    "temperature",
    "steps_per_epoch",
    "weights",
)  # multitask.* that the data schedule reads


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
            if pl_module.heads[task].submission_suffix == ".jsonl":  # a leaderboard's jsonl (QVHighlights)
                path = self.run_dir / f"predictions_{task}.jsonl"
                path.write_text("".join(json.dumps(p) + "\n" for p in preds.values()))
            else:
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


def resolve_strategy(
    strategy: str, devices: Any, num_nodes: int, accelerator: str, search_unused: bool = True
) -> str:
    """DDP that searches for parameters without gradients only when a run can have some.

    Parts of the backbone that no head of the run reads are frozen (vltasks/tasks/parts.py), so in a
    run whose every step trains every head, every trainable parameter gets a gradient and plain DDP
    is right (``search_unused=False``, `VLTaskModule.searches_unused`). A run that samples tasks per
    step, a head that does not declare what it reads, or ``backbone.freeze_unused=false`` keep DDP's
    search: a multi-process ``auto`` or a bare launcher (``ddp``, ``ddp_fork``, ...) then becomes
    ``<launcher>_find_unused_parameters_true``. A strategy named with its choice is kept as named.
    """
    many = int(num_nodes) > 1 or _device_count(devices, accelerator) > 1
    if strategy == "auto" and many:
        strategy = "ddp"
    if strategy in DDP_LAUNCHERS and search_unused:
        return f"{strategy}_find_unused_parameters_true"
    return strategy


def fsdp_strategy(devices: Any, num_nodes: int, accelerator: str) -> Any:
    """``trainer.strategy=fsdp``: FSDP2 (``fully_shard``) over every process, through Lightning's
    ModelParallelStrategy; `VLTaskModule.configure_model` makes each backbone layer a unit. One full
    checkpoint file (gathered on rank 0), so best.ckpt and last.ckpt load like any other.

    Why FSDP2 and not Lightning's FSDPStrategy (FSDP1): both Lightning ("requires a GPU
    accelerator") and torch's FSDP1 ("needs a non-CPU accelerator device") refuse CPUs, so FSDP1
    could never be tested here; FSDP2 runs on CPU with gloo (tests/test_fsdp.py)."""
    from lightning.pytorch.strategies import ModelParallelStrategy

    world = _device_count(devices, accelerator) * int(num_nodes)
    return ModelParallelStrategy(
        data_parallel_size=world, tensor_parallel_size=1, save_distributed_checkpoint=False
    )


class RNGState(Callback):
    """Each checkpoint holds every process's python, numpy and torch (CPU and CUDA) RNG states; a
    resumed fit puts them back before its first step. With the data's position (`MultitaskLoader`)
    and per-sample seeds (`SeededSamples`), a resumed fit then draws what the uninterrupted one drew
    (dropout, hard-negative sampling). Plain containers and tensors only: checkpoints load under
    torch's ``weights_only``."""

    KEY = "rng_states"

    def __init__(self) -> None:
        self._pending: list[dict[str, Any]] | None = None

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        state = rng_state()
        if trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            states: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(states, state)
        else:
            states = [state]
        checkpoint[self.KEY] = states

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        self._pending = checkpoint.get(self.KEY)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._pending:
            return
        states, self._pending = self._pending, None
        if len(states) != trainer.world_size:
            log.warning(
                "the checkpoint holds RNG states of %d processes, this run has %d: every process takes the "
                "first one, so random draws will not repeat the interrupted run's",
                len(states),
                trainer.world_size,
            )
        set_rng_state(states[trainer.global_rank] if len(states) == trainer.world_size else states[0])


def rng_state() -> dict[str, Any]:
    import random

    import numpy as np

    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype("int64")), "pos": int(pos)},
        "numpy_gauss": (int(has_gauss), float(gauss)),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import random

    import numpy as np

    random.setstate(state["python"])
    n = state["numpy"]
    has_gauss, gauss = state["numpy_gauss"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype("uint32"), n["pos"], has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RunInfo(Callback):
    """Logs the data counts once per run, from inside the launched process: a logger touched before
    ``ddp_fork`` forks leaves the children a TensorBoard writer whose thread does not exist in them
    (docs/design-notes.md, 5). The flat config is logged at the end of the run, with the final
    metrics, as one TensorBoard hparams entry (`log_final`)."""

    def __init__(self, hparams: dict[str, Any], metrics: dict[str, float]) -> None:
        self.hparams, self.metrics, self.logged = hparams, metrics, False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.logged or trainer.logger is None:
            return
        if self.metrics:
            trainer.logger.log_metrics(self.metrics, step=0)
        self.logged = True


def log_final(trainer: L.Trainer, hparams: dict[str, Any], metrics: dict[str, Any]) -> None:
    """One hparams entry per run: the flat config with the run's final metrics (``final/<key>``, so
    the curves of the same names keep their own steps). Called once, after the last stage."""
    if trainer.logger is None or trainer.global_rank != 0:
        return
    final = {f"final/{k}": float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
    trainer.logger.log_hyperparams(hparams, metrics=final or None)
    trainer.logger.finalize("success")


def launch_rank() -> int:
    """This process's global rank as its launcher set it (torchrun: ``RANK``; SLURM: ``SLURM_PROCID``);
    0 when a single process starts (Lightning then starts the others itself, after this). Other ranks
    leave the run directory to rank 0: each would otherwise pick the next free version number."""
    for var in ("RANK", "SLURM_PROCID"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


def resumed_run_dir(ckpt: str | None) -> Path | None:
    """The run directory a checkpoint was written in (``<root>/<name>/version_N/checkpoints/x.ckpt``),
    when it is one of ours: a resumed fit continues there."""
    if not ckpt:
        return None
    path = Path(ckpt).resolve()
    run_dir = path.parent.parent
    if path.parent.name == "checkpoints" and (run_dir / "config.yaml").is_file():
        return run_dir
    return None


def trainer_kwargs(
    spec: RunSpec,
    model: VLTaskModule,
    stage: str,
    info: RunInfo | None = None,
    resume: str | None = None,
) -> tuple[dict[str, Any], Path, dict[str, Callback]]:
    """What ``L.Trainer(**kwargs)`` needs for a run of this config (the config's trainer settings,
    the TensorBoard logger, the callbacks), the run directory, and the callbacks by name (``best``,
    ``last``, ``steps``, ``rng``, ``lr``, ``predictions``, ``info``, ``summary``) so the caller never
    picks one by position. ``resume``: the checkpoint a fit resumes; the run continues in that
    checkpoint's run directory, so best.ckpt keeps competing with the epochs before the interruption
    (Lightning reloads a checkpoint callback's best score only into the same directory)."""
    cfg = spec.config
    tcfg = {k: v for k, v in to_plain(cfg.trainer).items() if v is not None}
    if tcfg.get("strategy") == "fsdp":
        tcfg["strategy"] = fsdp_strategy(
            tcfg.get("devices", "auto"), int(tcfg.get("num_nodes", 1)), str(tcfg.get("accelerator", "auto"))
        )
    else:
        tcfg["strategy"] = resolve_strategy(
            str(tcfg.get("strategy", "auto")),
            tcfg.get("devices", "auto"),
            int(tcfg.get("num_nodes", 1)),
            str(tcfg.get("accelerator", "auto")),
            search_unused=model.searches_unused(),
        )
    root = tcfg.pop("default_root_dir")
    previous = resumed_run_dir(resume) if stage == "fit" else None
    if previous is not None:
        logger = TensorBoardLogger(
            save_dir=previous.parent.parent,
            name=previous.parent.name,
            version=previous.name,
            default_hp_metric=False,
        )
    else:
        logger = TensorBoardLogger(save_dir=root, name=cfg.name, default_hp_metric=False)
    run_dir = Path(logger.log_dir)
    if launch_rank() == 0:  # under torchrun or srun every process gets here, before any process group
        run_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    monitor, mode = model.selection()
    callbacks: dict[str, Callback] = {}
    if stage == "fit":
        callbacks["best"] = ModelCheckpoint(
            dirpath=run_dir / "checkpoints", filename="best", monitor=monitor, mode=mode
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
        every = cfg.checkpoint.every_n_steps
        if every:  # the same last.ckpt, also written mid-epoch (Lightning allows one trigger per callback)
            callbacks["steps"] = ModelCheckpoint(
                dirpath=run_dir / "checkpoints",
                filename="last",
                monitor=None,
                save_top_k=1,
                every_n_train_steps=int(every),
                enable_version_counter=False,
            )
        callbacks["rng"] = RNGState()
        callbacks["lr"] = LearningRateMonitor(logging_interval="step")
        callbacks["summary"] = PartsSummary()
    if stage == "predict":
        callbacks["predictions"] = JSONPredictionWriter(run_dir)
    if info is not None:
        callbacks["info"] = info
    kwargs = {
        **tcfg,
        "default_root_dir": root,
        "logger": logger,
        "callbacks": list(callbacks.values()),
        "use_distributed_sampler": False,  # the DataModule shards evaluation without repeats
        "enable_model_summary": False,  # PartsSummary prints it by part
    }
    return kwargs, run_dir, callbacks


def build_trainer(
    spec: RunSpec, model: VLTaskModule, stage: str, info: RunInfo | None = None
) -> tuple[L.Trainer, Path, dict[str, Callback]]:
    """The Trainer of `trainer_kwargs`, the run directory and the callbacks by name."""
    kwargs, run_dir, callbacks = trainer_kwargs(spec, model, stage, info)
    return L.Trainer(**kwargs), run_dir, callbacks


def stage_metrics(trainer: L.Trainer, prefix: str) -> dict[str, float]:
    return {k: float(v) for k, v in sorted(trainer.callback_metrics.items()) if k.startswith(prefix + "/")}


def write_metrics(run_dir: Path, stage: str, metrics: dict[str, Any]) -> Path:
    path = run_dir / "metrics.json"
    existing = json.loads(path.read_text()) if path.is_file() else {}
    existing[stage] = metrics
    path.write_text(json.dumps(existing, indent=2, sort_keys=True))
    return path
