"""The LightningModule: one shared backbone, a dict of heads, their official metrics.

Hyperparameters are plain containers (the config, the backbone's non-weight files and what each
reader learned from the data for its head), so `load_from_checkpoint` rebuilds everything from the
checkpoint alone, under torch's `weights_only` default.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint
from torchmetrics import MeanMetric

from vltasks.backbones import Backbone, backbone_from_files
from vltasks.backbones.base import freeze_
from vltasks.batch import batch_size, is_labelled, move_batch
from vltasks.heads import HEADS, Head
from vltasks.tasks.optim import build_optimizer
from vltasks.tasks.parts import PIXELS, feeds_pixels, freeze_unused, head_reads, layer_classes, unused_parts

STAGES = ("val", "test")
AGGREGATE = "aggregate"  # logged as <stage>/aggregate: the mean of the multitask monitor's metrics


class NonFiniteLossError(FloatingPointError):
    """A training loss became NaN or infinite: the fit stops before the weights are ruined."""


def head_kwargs(data_args: dict[str, Any], user_args: dict[str, Any]) -> dict[str, Any]:
    """What a head is built with: what the reader learned from the data (the answer vocabulary, the
    split names), overridden by what the user set under ``tasks.<name>.head_args``."""
    return {**data_args, **user_args}


class VLTaskModule(L.LightningModule):
    def __init__(
        self,
        config: dict[str, Any],
        backbone_family: str,
        backbone_files: dict[str, str],
        data_args: dict[str, dict[str, Any]] | None = None,
        backbone: Backbone | None = None,
        head_args: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """``data_args[task]``: what the task's reader learned for its head. ``head_args`` is the
        name checkpoints written before 2026-12-02 gave it, and is read as ``data_args``."""
        super().__init__()
        data_args = data_args if data_args is not None else dict(head_args or {})
        self.save_hyperparameters(
            {
                "config": config,
                "backbone_family": backbone_family,
                "backbone_files": backbone_files,
                "data_args": data_args,
            },
            logger=False,
        )
        self.config = config
        self.backbone = (
            backbone if backbone is not None else backbone_from_files(backbone_family, backbone_files)
        )
        if config["backbone"].get("freeze"):
            freeze_(self.backbone)
        self.task_names = list(config["tasks"])
        heads: dict[str, Head] = {}
        for name in self.task_names:
            spec = config["tasks"][name]
            cls = HEADS.get(spec["head"])
            self.backbone.require(cls.needs, spec["head"])
            kwargs = head_kwargs(data_args.get(name, {}), spec.get("head_args") or {})
            heads[name] = cls(self.backbone.hidden_size, **{**cls.backbone_args(self.backbone), **kwargs})
        self.heads = nn.ModuleDict(heads)
        # parts no head reads (ViLT's pooler for token grounding) get no gradient: frozen by design,
        # so DDP needs no search for them (docs/design-notes.md, 46)
        self.unused_parts: list[str] = []  # frozen
        self._left_unused: list[str] = []  # trainable without a gradient (backbone.freeze_unused=false)
        pixels = feeds_pixels(config)
        if config["backbone"].get("freeze_unused", True):
            self.unused_parts = freeze_unused(self.backbone, backbone_family, heads.values(), pixels)
        else:
            reads = frozenset().union(*(head_reads(h) for h in heads.values())) | (
                {PIXELS} if pixels else set()
            )
            self._left_unused = unused_parts(self.backbone, backbone_family, reads)
        self.aggregate_keys, self.aggregate_mode = self._aggregate_spec(config.get("multitask") or {})
        self.sharded = False  # FSDP units applied (configure_model under trainer.strategy=fsdp)
        self.metrics = nn.ModuleDict(
            {stage: nn.ModuleDict({n: self.heads[n].metrics() for n in self.task_names}) for stage in STAGES}
        )
        # eval losses as sample-weighted means over all processes (a mean of per-rank means is not)
        self.eval_losses = nn.ModuleDict(
            {stage: nn.ModuleDict({n: MeanMetric() for n in self.task_names}) for stage in STAGES}
        )
        self._unchecked: list[tuple[Tensor, Tensor, tuple]] = []  # (bad?, loss, where): read one step late

    def _aggregate_spec(self, mt: dict[str, Any]) -> tuple[list[str], str | None]:
        """The "task/metric" keys averaged into ``val/aggregate`` and whether higher is better: the
        configured ``multitask.monitor``, else (several tasks) each task's own monitored metric."""
        keys = list(mt.get("monitor") or [])
        if not keys and len(self.task_names) > 1:
            keys = [f"{n}/{self.heads[n].monitor}" for n in self.task_names]
        if not keys:
            return [], None
        mode = mt.get("monitor_mode")
        if mode is None:
            modes = {self.heads[k.split("/", 1)[0]].monitor_mode for k in keys}
            if len(modes) > 1:
                raise ValueError(
                    f"multitask.monitor averages {keys}, of which some are better high and some low: "
                    f"set multitask.monitor to keys that agree, or multitask.monitor_mode"
                )
            mode = modes.pop()
        return keys, mode

    def selection(self) -> tuple[str, str]:
        """The logged key that picks best.ckpt and its mode: ``val/aggregate`` when the run averages
        several metrics, else the first task's monitored metric."""
        if self.aggregate_keys:
            return f"val/{AGGREGATE}", str(self.aggregate_mode)
        first = self.task_names[0]
        return f"val/{first}/{self.heads[first].monitor}", self.heads[first].monitor_mode

    def searches_unused(self) -> bool:
        """Whether DDP must search for parameters without a gradient: when a step may leave a head
        out (task sampling), a head does not say what it reads, or unread parts were left trainable."""
        sampled = (self.config.get("multitask") or {}).get("sampling", "all") != "all"
        undeclared = any(h.reads is None for h in self.heads.values())
        return (sampled and len(self.task_names) > 1) or undeclared or bool(self._left_unused)

    def collate_args(self) -> dict[str, dict[str, Any]]:
        """Per task, what its reader's collate needs from the head (vocabulary, prompt)."""
        return {n: self.heads[n].collate_args() for n in self.task_names}

    # -- steps -----------------------------------------------------------------------------------
    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """Lightning's hook, with `move_batch`: the same result without walking every string."""
        return move_batch(batch, device)

    def forward(self, task: str, batch: dict[str, Any]) -> dict[str, Tensor]:
        return self.heads[task].run(self.backbone, batch)

    def training_step(self, batch: dict[str, dict[str, Any] | None], batch_idx: int) -> Tensor | None:
        total: Tensor | None = None
        skipped = False
        for name, b in batch.items():
            if b is None:  # every sample of this task's batch failed to load
                skipped = True
                continue
            loss = self.heads[name].loss(self(name, b), b)
            self._check_finite(name, loss, b, batch_idx)
            self.log(f"train/{name}/loss", loss, batch_size=batch_size(b), prog_bar=True)
            weighted = self.config["tasks"][name].get("weight", 1.0) * loss
            total = weighted if total is None else total + weighted
        if total is None:
            return self._no_batch_loss()
        if skipped and self.trainer.world_size > 1:  # a head without its batch: keep DDP's all-reduce whole
            total = total + self._no_batch_loss()
        if len(batch) > 1:
            self.log("train/loss", total, prog_bar=True)
        return total

    def _check_finite(self, name: str, loss: Tensor, batch: dict[str, Any], batch_idx: int) -> None:
        """Stop on a NaN or infinite loss, naming the step and the samples, on every process at once
        (a process that stopped alone would leave the others waiting in DDP's all-reduce).

        On the CPU the flag is read at once. On an accelerator, reading it would make the host wait
        for the step every step (and an all-reduce of it under DDP): it is read at the next step
        instead, before a validation and before any checkpoint is written (`_read_finite`), so the
        host keeps one step of lead and no checkpoint holds the ruined weights."""
        bad = ~torch.isfinite(loss.detach())
        if self.trainer.world_size > 1:  # on the device; the host reads it when it reads the flag
            bad = self.trainer.strategy.reduce(bad.float(), reduce_op="sum") > 0
        # what the message needs, kept as is: it is written only for a bad loss, not every step
        where = (
            name,
            self.global_step,
            self.current_epoch,
            batch_idx,
            batch["sample_id"][:10],
            batch_size(batch),
        )
        self._unchecked.append((bad, loss.detach(), where))
        if not self._defer_finite_check(loss):
            self._read_finite()

    def _defer_finite_check(self, loss: Tensor) -> bool:
        return loss.device.type != "cpu"

    def _read_finite(self) -> None:
        unchecked, self._unchecked = self._unchecked, []
        for bad, loss, (name, step, epoch, batch_idx, ids, n) in unchecked:
            if bool(bad):
                raise NonFiniteLossError(
                    f"task {name!r}: the training loss is {float(loss)} at step {step} (epoch {epoch}, "
                    f"batch {batch_idx}) on samples [{', '.join(ids)}{', ...' if n > 10 else ''}]: the fit "
                    f"stops before the weights turn NaN (lower optim.lr, or check these samples)"
                )

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._read_finite()

    def on_validation_start(self) -> None:
        self._read_finite()

    def on_train_epoch_end(self) -> None:
        self._read_finite()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._read_finite()  # the check comes before the file: no checkpoint of ruined weights

    def _no_batch_loss(self) -> Tensor | None:
        """No sample of this step could be loaded: one process skips the step; under DDP a zero loss
        over every trainable parameter keeps this process in step with the others."""
        if self.trainer.world_size == 1:
            return None
        return sum(
            (p.sum() * 0.0 for p in self.parameters() if p.requires_grad), torch.zeros((), device=self.device)
        )

    def _eval_step(
        self, stage: str, batch: dict[str, Any] | None, batch_idx: int, dataloader_idx: int
    ) -> None:
        if batch is None:  # every sample of this batch failed to load (counted by the DataModule)
            return
        name = self.task_names[dataloader_idx]
        head = self.heads[name]
        out = self(name, batch)
        if head.eval_loss and is_labelled(batch):
            self.eval_losses[stage][name].update(head.loss(out, batch).detach(), weight=batch_size(batch))
        head.update_metrics(self.metrics[stage][name], out, batch)
        if stage == "val" and batch_idx == 0:
            self._log_examples(name, out, batch)

    def validation_step(self, batch: dict[str, Any] | None, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step("val", batch, batch_idx, dataloader_idx)

    def test_step(self, batch: dict[str, Any] | None, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step("test", batch, batch_idx, dataloader_idx)

    def predict_step(
        self, batch: dict[str, Any] | None, batch_idx: int, dataloader_idx: int = 0
    ) -> list[dict[str, Any]]:
        if batch is None:
            return []
        name = self.task_names[dataloader_idx]
        out = self(name, batch)
        return [
            {"task": name, "sample_id": s, "prediction": p}
            for s, p in zip(batch["sample_id"], self.heads[name].predict(out, batch))
        ]

    # -- metrics: computed (synced across processes) once per epoch, then logged as scalars -------
    def _log_metrics(self, stage: str) -> None:
        logged: dict[str, float] = {}
        for name, collection in self.metrics[stage].items():
            self.heads[name].on_eval_epoch_end(self.backbone, collection, stage)
            updated = any(m.update_called for m in collection.values())
            if not self.trainer.strategy.reduce_boolean_decision(updated, all=False):
                continue  # e.g. a test split without answers
            values = dict(collection.compute())
            if self.eval_losses[stage][name].update_called:
                values["loss"] = self.eval_losses[stage][name].compute()
            for key, value in values.items():
                # already synced by torchmetrics; sync_dist averages identical values (and says so)
                self.log(f"{stage}/{name}/{key}", value.float(), add_dataloader_idx=False, sync_dist=True)
                logged[f"{name}/{key}"] = float(value)
            collection.reset()
            self.eval_losses[stage][name].reset()
        self._log_aggregate(stage, logged)

    def _log_aggregate(self, stage: str, logged: dict[str, float]) -> None:
        """``<stage>/aggregate``: the mean of the multitask monitor's metrics, its own scalar (and what
        selects best.ckpt). Validation must have every one of them; a test split without answers
        simply has no aggregate."""
        if not self.aggregate_keys or not logged:
            return
        missing = [k for k in self.aggregate_keys if k not in logged]
        if missing and stage == "val":
            raise KeyError(
                f"multitask.monitor: {missing} not among the validation metrics; logged: {sorted(logged)}"
            )
        if not missing:
            value = sum(logged[k] for k in self.aggregate_keys) / len(self.aggregate_keys)
            # identical on every process (the metrics were synced); sync_dist only says so
            self.log(f"{stage}/{AGGREGATE}", value, add_dataloader_idx=False, sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")

    @torch.no_grad()
    def _log_examples(self, name: str, out: dict[str, Tensor], batch: dict[str, Any]) -> None:
        k = min(int(self.config.get("logging", {}).get("num_images", 0)), len(batch["sample_id"]))
        experiment = getattr(self.logger, "experiment", None)
        if k <= 0 or experiment is None or not hasattr(experiment, "add_images") or self.global_rank != 0:
            return
        if not hasattr(self.heads[name], "describe") or "image_path" not in batch:
            return
        from vltasks.tasks.visualize import example_panel

        head = self.heads[name]
        boxes = getattr(head, "example_boxes", None)  # heads that predict regions draw them too
        panels = [
            example_panel(
                batch["image_path"][i],
                head.describe(out, batch, i),
                boxes=boxes(out, batch, i) if boxes else (),
            )
            for i in range(k)
        ]
        experiment.add_images(
            f"val/{name}/examples", torch.stack(panels), self.global_step, dataformats="NCHW"
        )

    # -- memory ----------------------------------------------------------------------------------
    def configure_model(self) -> None:
        """Activation checkpointing and FSDP, applied once, inside the strategy (Lightning calls this
        hook before it builds the optimizer)."""
        self._checkpoint_activations()
        from lightning.pytorch.strategies import ModelParallelStrategy

        if isinstance(self._trainer.strategy if self._trainer else None, ModelParallelStrategy):
            self._shard()

    def _shard(self) -> None:
        """FSDP2 (``fully_shard``): each backbone layer is its own unit (gathered just for its forward
        and backward), the rest of the model (embeddings, poolers, heads) one root unit. Heads call
        backbone methods other than ``forward`` (``encode_text``, ``vision_tokens``...), so the root
        is gathered for each step hook and for the evaluation epoch's end (retrieval's re-ranking)
        as FSDP gathers a module for its ``forward`` (docs/design-notes.md, 48)."""
        if self.sharded:
            return
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard, register_fsdp_forward_method

        mesh = self.device_mesh["data_parallel"]
        policy = MixedPrecisionPolicy()  # parameters stay float32; the precision plugin autocasts
        classes = tuple(layer_classes(self.backbone))
        for module in list(self.backbone.modules()):
            if isinstance(module, classes):
                fully_shard(module, mesh=mesh, mp_policy=policy)
        fully_shard(self, mesh=mesh, mp_policy=policy)
        for name in (
            "training_step",
            "validation_step",
            "test_step",
            "predict_step",
            "on_validation_epoch_end",
            "on_test_epoch_end",
        ):
            register_fsdp_forward_method(self, name)
        self.sharded = True

    def _checkpoint_activations(self) -> None:
        """``backbone.activation_checkpointing``: each backbone layer keeps only its inputs and runs
        again in the backward pass (torch's non-reentrant checkpoint, RNG state preserved). The layer's
        ``forward`` is replaced on the instance, not wrapped in another module: parameter names, and
        so checkpoints and FSDP's state dicts, stay as they are."""
        if not self.config["backbone"].get("activation_checkpointing") or getattr(
            self, "_checkpointed", False
        ):
            return
        classes = tuple(layer_classes(self.backbone))
        for module in self.backbone.modules():
            if isinstance(module, classes):
                module.forward = partial(_recompute_in_backward, module.forward)
        self._checkpointed = True

    # -- optimization ----------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        cfg = self.config["optim"]
        parts = [(self.backbone, 1.0), (self.heads, float(cfg["head_lr_mult"]))]
        opt, sched = build_optimizer(parts, cfg, self.optimizer_steps())
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def optimizer_steps(self) -> int:
        """Optimizer steps of the whole fit: the LR schedule's length. Warmup and decay count optimizer
        steps, not batches: with gradient accumulation a schedule counted in batches decays only part
        of the way (ViLT issue 19). Counted from the DataModule's schedule, as Lightning's
        ``estimated_stepping_batches`` counts, but without building and starting the training loader
        before a resumed fit has restored the loader's position (Lightning's estimate does that)."""
        trainer = self.trainer
        schedule = getattr(trainer.datamodule, "schedule", None)
        if schedule is None:  # another DataModule, or loaders passed to fit(): Lightning's estimate
            return int(trainer.estimated_stepping_batches)
        batches = schedule().steps
        limit = trainer.limit_train_batches
        batches = min(batches, int(limit)) if isinstance(limit, int) else int(batches * float(limit))
        per_epoch = math.ceil(batches / trainer.accumulate_grad_batches)
        if trainer.max_epochs is None or trainer.max_epochs < 0:
            return int(trainer.max_steps)
        total = per_epoch * max(int(trainer.max_epochs), 1)
        return min(total, int(trainer.max_steps)) if trainer.max_steps != -1 else total


def _recompute_in_backward(forward: Any, *args: Any, **kwargs: Any) -> Any:
    if not torch.is_grad_enabled():  # evaluation: nothing to keep or recompute
        return forward(*args, **kwargs)
    return checkpoint(forward, *args, use_reentrant=False, **kwargs)
