"""Counting as regression (TGIF-QA Count: "how many times does the man nod?").

The official TGIF-QA models regress one number per question with a squared loss and answer it
rounded and clipped to 1..10; the benchmark reports the mean squared error of that integer. A
classifier over 10 counts would score a miss by one like a miss by nine, which MSE does not.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MetricCollection
from vltasks.heads.base import HEADS, Head, check_pooling, mlp, pool

from vltasks.backbones.base import Features, Fusion
from vltasks.batch import is_labelled
from vltasks.metrics import CountMSE
from vltasks.metrics.functional.video_qa import COUNT_RANGE, count_predictions


@HEADS.register("count")
class CountHead(Head[Fusion]):
    """One regressed count per (clip, question) on the fused pooled vector; MSE on the answer.

    The output's bias starts at ``mean_count``, the training answers' mean the reader gives (else
    the middle of ``low..high``), so the first steps are spent on the clip, not on finding that
    mean. ``targets`` are the counts [B] (float).
    """

    monitor = "mse"
    reads = frozenset({"pooled", "tokens"})  # pool(): [CLS], and the fused tokens for pooled+max
    monitor_mode = "min"

    def __init__(
        self,
        hidden_size: int,
        dropout: float = 0.0,
        pooling: str = "pooled",
        low: int = COUNT_RANGE[0],
        high: int = COUNT_RANGE[1],
        mean_count: float | None = None,
    ) -> None:
        super().__init__()
        if low > high:
            raise ValueError(f"count head: low={low} is above high={high}")
        self.pooling, width = pooling, hidden_size * check_pooling(pooling, "count")
        self.low, self.high = int(low), int(high)
        self.regressor = mlp(width, 2 * hidden_size, 1, dropout)
        with torch.no_grad():
            self.regressor[-1].bias.fill_((self.low + self.high) / 2 if mean_count is None else mean_count)

    def forward(self, features: Features, batch: dict[str, Any]) -> dict[str, Tensor]:
        return {"counts": self.regressor(pool(features, self.pooling)).squeeze(-1)}

    def loss(self, outputs: dict[str, Tensor], batch: dict[str, Any]) -> Tensor:
        return F.mse_loss(outputs["counts"].float(), batch["targets"].float())

    def answers(self, outputs: dict[str, Tensor]) -> list[int]:
        """The integer each question is answered with: rounded, clipped to ``low..high``."""
        return [int(c) for c in count_predictions(outputs["counts"].detach(), self.low, self.high).tolist()]

    def predict(self, outputs: dict[str, Tensor], batch: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"question_id": q, "answer": a} for q, a in zip(batch["question_id"], self.answers(outputs))]

    def metrics(self) -> MetricCollection:
        return MetricCollection({"mse": CountMSE(self.low, self.high)})

    def update_metrics(
        self, metrics: MetricCollection, outputs: dict[str, Tensor], batch: dict[str, Any]
    ) -> None:
        if not is_labelled(batch):
            return
        metrics["mse"].update(outputs["counts"].detach(), batch["targets"], ids=batch["sample_id"])

    @torch.no_grad()
    def describe(self, outputs: dict[str, Tensor], batch: dict[str, Any], i: int) -> str:
        """One panel caption: question, regressed and answered count, ground truth."""
        raw = float(outputs["counts"][i])
        gt = int(batch["targets"][i]) if is_labelled(batch) else None
        return f"Q: {batch['question'][i]}\npred: {self.answers(outputs)[i]} ({raw:.2f})\nGT: {gt}"
