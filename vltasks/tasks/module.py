"""The LightningModule: one shared backbone, a dict of heads, their official metrics.

Hyperparameters are plain containers (the config, the backbone's non-weight files and what each
reader learned from the data for its head), so `load_from_checkpoint` rebuilds everything from the
checkpoint alone, under torch's `weights_only` default.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric

from vltasks.backbones import Backbone, backbone_from_files
from vltasks.backbones.base import freeze_
from vltasks.batch import batch_size, is_labelled
from vltasks.heads import HEADS, Head
from vltasks.tasks.optim import build_optimizer

STAGES = ("val", "test")


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
            heads[name] = cls(self.backbone.hidden_size, **kwargs)
        self.heads = nn.ModuleDict(heads)
        self.metrics = nn.ModuleDict(
            {stage: nn.ModuleDict({n: self.heads[n].metrics() for n in self.task_names}) for stage in STAGES}
        )
        # eval losses as sample-weighted means over all processes (a mean of per-rank means is not)
        self.eval_losses = nn.ModuleDict(
            {stage: nn.ModuleDict({n: MeanMetric() for n in self.task_names}) for stage in STAGES}
        )

    def collate_args(self) -> dict[str, dict[str, Any]]:
        """Per task, what its reader's collate needs from the head (vocabulary, prompt)."""
        return {n: self.heads[n].collate_args() for n in self.task_names}

    # -- steps -----------------------------------------------------------------------------------
    def forward(self, task: str, batch: dict[str, Any]) -> dict[str, Tensor]:
        return self.heads[task].run(self.backbone, batch)

    def training_step(self, batch: dict[str, dict[str, Any] | None], batch_idx: int) -> Tensor | None:
        total: Tensor | None = None
        for name, b in batch.items():
            if b is None:  # this task's loader is exhausted, or every sample of its batch failed to load
                continue
            loss = self.heads[name].loss(self(name, b), b)
            self._check_finite(name, loss, b, batch_idx)
            self.log(f"train/{name}/loss", loss, batch_size=batch_size(b), prog_bar=True)
            weighted = self.config["tasks"][name].get("weight", 1.0) * loss
            total = weighted if total is None else total + weighted
        if total is None:
            return self._no_batch_loss()
        if len(batch) > 1:
            self.log("train/loss", total, prog_bar=True)
        return total

    def _check_finite(self, name: str, loss: Tensor, batch: dict[str, Any], batch_idx: int) -> None:
        """Stop on a NaN or infinite loss, naming the step and the samples, on every process at once
        (a process that stopped alone would leave the others waiting in DDP's all-reduce)."""
        bad = not math.isfinite(float(loss.detach()))
        if self.trainer.world_size > 1:
            bad = self.trainer.strategy.reduce_boolean_decision(bad, all=False)
        if bad:
            ids = ", ".join(batch["sample_id"][:10])
            raise NonFiniteLossError(
                f"task {name!r}: the training loss is {float(loss.detach())} at step {self.global_step} "
                f"(epoch {self.current_epoch}, batch {batch_idx}) on samples [{ids}"
                f"{', ...' if batch_size(batch) > 10 else ''}]: the fit stops before the weights turn NaN "
                f"(lower optim.lr, or check these samples)"
            )

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
            collection.reset()
            self.eval_losses[stage][name].reset()

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

        panels = [
            example_panel(batch["image_path"][i], self.heads[name].describe(out, batch, i)) for i in range(k)
        ]
        experiment.add_images(
            f"val/{name}/examples", torch.stack(panels), self.global_step, dataformats="NCHW"
        )

    # -- optimization ----------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        cfg = self.config["optim"]
        parts = [(self.backbone, 1.0), (self.heads, float(cfg["head_lr_mult"]))]
        opt, sched = build_optimizer(parts, cfg, int(self.trainer.estimated_stepping_batches))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
