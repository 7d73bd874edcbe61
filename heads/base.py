"""The head contract (DESIGN.md): forward, loss, predict (JSON-ready), metrics (official ones)."""

from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeVar

import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection

from vltasks.backbones.base import Features
from vltasks.registry import Registry

B = TypeVar("B")  # the backbone protocol a head calls (vltasks/backbones/base.py)


class Head(nn.Module, Generic[B]):
    """One task's layers on top of the shared backbone. Heads never read files and never tokenize:
    the collate prepares every text (vltasks/batch.py holds the batch contract).

    ``Head[P]`` names the backbone protocol the head calls, and ``needs`` the capabilities behind
    it; the model checks them against the backbone when it builds the head."""

    needs: ClassVar[frozenset[str]] = frozenset({"fusion"})
    monitor: ClassVar[str] = ""  # metric name for checkpoint selection
    monitor_mode: ClassVar[str] = "max"
    # labelled evaluation batches also report the training loss (val/<task>/loss); heads whose
    # evaluation batches are shaped differently from training ones (retrieval) say no
    eval_loss: ClassVar[bool] = True
    submission_suffix: str = ".json"  # predictions file: a JSON list, or ".jsonl" (one record a line)
    # the backbone outputs the head reads (BACKBONE_OUTPUTS); parts only other outputs need are frozen
    # (vltasks/tasks/parts.py). None: everything, nothing is frozen and DDP keeps its search
    reads: frozenset[str] | None = None

    def run(self, backbone: B, batch: dict[str, Any]) -> dict[str, Any]:
        """Backbone + head for one batch. Override when a task calls the backbone differently
        (several candidates per sample, unimodal encoders only, a decoder)."""
        return self(backbone(batch), batch)  # type: ignore[operator]

    def forward(self, features: Features, batch: dict[str, Any]) -> dict[str, Tensor]:  # pragma: no cover
        raise NotImplementedError

    def collate_args(self) -> dict[str, Any]:
        """What the reader's collate needs from this head (its answer vocabulary, a decoder prompt)."""
        return {}

    @classmethod
    def backbone_args(cls, backbone: Any) -> dict[str, Any]:
        """What the head's layers must know of the backbone when they are built, beyond
        ``hidden_size`` (dense captioning: the width of the vision tokens it reads)."""
        return {}

    def on_eval_epoch_end(self, backbone: B, metrics: MetricCollection, stage: str) -> None:
        """Called on every process before the metrics are computed (e.g. ITM re-ranking of the
        ITC top-k needs the backbone once all embeddings are in)."""

    def loss(self, outputs: dict[str, Any], batch: dict[str, Any]) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def predict(
        self, outputs: dict[str, Any], batch: dict[str, Any]
    ) -> list[dict[str, Any]]:  # pragma: no cover
        raise NotImplementedError

    def metrics(self) -> MetricCollection:  # pragma: no cover
        raise NotImplementedError

    def update_metrics(
        self, metrics: MetricCollection, outputs: dict[str, Any], batch: dict[str, Any]
    ) -> None:
        raise NotImplementedError  # pragma: no cover


HEADS: Registry[type[Head]] = Registry("head")

# What a head can read of a backbone (``Head.reads``): `Features` fields (fused ``tokens`` and
# ``pooled``, dual ``image_embeds`` / ``text_embeds``, unimodal ``image_tokens`` / ``text_tokens``),
# ``pair_fusion`` (fuse_pairs), ``itm`` (the backbone's own ITM layer) and ``decoder``.
BACKBONE_OUTPUTS = frozenset(
    {"tokens", "pooled", "image_embeds", "text_embeds", "image_tokens", "text_tokens", "pair_fusion"}
    | {"itm", "decoder"}
)

POOLINGS = ("pooled", "pooled+max")


def mlp(d_in: int, d_hidden: int, d_out: int, dropout: float) -> nn.Sequential:
    """The two-layer head every classifier and regressor here uses (Linear, LayerNorm, GELU)."""
    return nn.Sequential(
        nn.Linear(d_in, d_hidden),
        nn.LayerNorm(d_hidden),
        nn.GELU(),
        nn.Dropout(dropout),
        nn.Linear(d_hidden, d_out),
    )


def check_pooling(pooling: str, who: str) -> int:
    """Validate a head's ``pooling`` and return the width factor of its output (1 or 2)."""
    if pooling not in POOLINGS:
        raise ValueError(f"{who} head: pooling must be one of {POOLINGS}, got {pooling!r}")
    return 2 if pooling == "pooled+max" else 1


def pool(features: Features, pooling: str) -> Tensor:
    """The vector a classifier reads: the pooled [CLS] (``pooled``), or [pooled ; max over the
    fused tokens, padding excluded] (``pooled+max``): "does any patch match what the text names?"
    is then one max away instead of a second hop through [CLS] (docs/design-notes.md, 8)."""
    x = features.pooled
    if pooling == "pooled":
        return x
    tokens = features.tokens
    tokens = tokens.masked_fill(features.mask[..., None] == 0, torch.finfo(tokens.dtype).min)
    return torch.cat([x, tokens.max(dim=1).values], dim=-1)
