"""Visual entailment (SNLI-VE): 3-way classification of (image premise, text hypothesis)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MetricCollection
from vltasks.heads.base import HEADS, Head, check_pooling, mlp, pool

from vltasks.backbones.base import Features, Fusion
from vltasks.batch import is_labelled
from vltasks.metrics import EntailmentAccuracy
from vltasks.metrics.functional.choice import ENTAILMENT_CLASSES


@HEADS.register("entailment")
class EntailmentHead(Head[Fusion]):
    """Classifier on the fused pooled vector, cross-entropy on the gold label (ViLT/ALBEF style).

    ``pooling="pooled+max"`` also feeds the classifier the max over the fused tokens: whether *some*
    image patch matches what the hypothesis names is then one max away instead of a second hop
    through [CLS].

    Logit i is class ``ENTAILMENT_CLASSES[i]`` (contradiction, neutral, entailment), the order the
    collate builds targets in and `EntailmentAccuracy` reports per-class accuracy in.
    """

    monitor = "accuracy"
    reads = frozenset({"pooled", "tokens"})  # pool(): [CLS], and the fused tokens for pooled+max
    classes: tuple[str, ...] = ENTAILMENT_CLASSES

    def __init__(
        self, hidden_size: int, dropout: float = 0.0, label_smoothing: float = 0.0, pooling: str = "pooled"
    ) -> None:
        super().__init__()
        width = hidden_size * check_pooling(pooling, "entailment")
        self.label_smoothing, self.pooling = float(label_smoothing), pooling
        self.classifier = mlp(width, 2 * hidden_size, len(self.classes), dropout)

    def forward(self, features: Features, batch: dict[str, Any]) -> dict[str, Tensor]:
        return {"logits": self.classifier(pool(features, self.pooling))}

    def loss(self, outputs: dict[str, Tensor], batch: dict[str, Any]) -> Tensor:
        return F.cross_entropy(outputs["logits"], batch["targets"], label_smoothing=self.label_smoothing)

    def labels(self, outputs: dict[str, Tensor]) -> list[str]:
        return [self.classes[i] for i in outputs["logits"].argmax(dim=-1).tolist()]

    def predict(self, outputs: dict[str, Tensor], batch: dict[str, Any]) -> list[dict[str, Any]]:
        """SNLI-VE has no submission server: one row per pair, named by its SNLI pairID."""
        return [{"pairID": p, "label": y} for p, y in zip(batch["pairID"], self.labels(outputs))]

    def metrics(self) -> MetricCollection:
        return MetricCollection({"accuracy": EntailmentAccuracy(class_names=self.classes)})

    def update_metrics(
        self, metrics: MetricCollection, outputs: dict[str, Tensor], batch: dict[str, Any]
    ) -> None:
        if not is_labelled(batch):
            return
        metrics["accuracy"].update(outputs["logits"], batch["targets"], ids=batch["sample_id"])

    @torch.no_grad()
    def describe(self, outputs: dict[str, Tensor], batch: dict[str, Any], i: int) -> str:
        """One panel caption for TensorBoard: hypothesis, prediction with its probability, gold."""
        probs = outputs["logits"][i].float().softmax(-1)
        k = int(probs.argmax())
        gold = (batch.get("gold_label") or [None] * (i + 1))[i]
        return f"H: {batch['hypothesis'][i]}\npred: {self.classes[k]} ({float(probs[k]):.2f})\nGT: {gold}"
