"""VQA as multi-label classification over the answer vocabulary (ViLT / BUTD style)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MetricCollection
from vltasks.heads.base import HEADS, Head, check_pooling, mlp, pool

from vltasks.backbones.base import Features, Fusion
from vltasks.batch import is_labelled
from vltasks.metrics import VQAAccuracy
from vltasks.metrics.vqa import ANSWER_TYPES


@HEADS.register("vqa")
class VQAHead(Head[Fusion]):
    """Classifier on the fused pooled vector; BCE on the soft VQA scores of each answer (VQAv2), or
    softmax cross-entropy on the one answer (``protocol="exact"``: video QA, as ClipBERT and ALPRO
    train MSRVTT-QA; ``loss`` overrides either).

    The BCE is scaled by the number of answers (as in ViLT) so its size does not shrink with a
    large vocabulary. ``pooling="pooled+max"`` adds the max over the fused tokens (heads/base.py).
    Video QA readers give ``protocol="exact"`` (one answer per question) and their own question
    types (``answer_types``) for the per-type breakdown; VQAv2's are yes/no, number, other.
    """

    monitor = "accuracy"
    reads = frozenset({"pooled", "tokens"})  # pool(): [CLS], and the fused tokens for pooled+max

    def __init__(
        self,
        hidden_size: int,
        answers: list[str],
        protocol: str = "vqav2",
        dropout: float = 0.0,
        pooling: str = "pooled",
        answer_types: list[str] | None = None,
        loss: str | None = None,
        answer_type_groups: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__()
        self.loss_kind = loss or ("ce" if protocol == "exact" else "bce")
        if self.loss_kind not in ("bce", "ce"):
            raise ValueError(f"VQA head: loss must be bce or ce, got {loss!r}")
        self.pooling, width = pooling, hidden_size * check_pooling(pooling, "vqa")
        if not answers:
            raise ValueError("VQA head: the answer vocabulary is empty (no training answers were read)")
        self.answers = list(answers)
        self.protocol = protocol
        self.answer_types = list(answer_types or ANSWER_TYPES)
        self.answer_type_groups = dict(answer_type_groups or {})  # ActivityNet-QA's "free"
        self.classifier = mlp(width, 2 * hidden_size, len(self.answers), dropout)

    def forward(self, features: Features, batch: dict[str, Any]) -> dict[str, Tensor]:
        return {"logits": self.classifier(pool(features, self.pooling))}

    def collate_args(self) -> dict[str, Any]:
        return {"answers": self.answers}  # the collate scores each answer of the vocabulary

    def loss(self, outputs: dict[str, Tensor], batch: dict[str, Any]) -> Tensor:
        logits, targets = outputs["logits"], batch["targets"]
        if self.loss_kind == "ce":  # a row without a training answer (all zero) adds nothing
            return -(targets * F.log_softmax(logits.float(), dim=-1)).sum(-1).mean()
        return F.binary_cross_entropy_with_logits(logits, targets) * targets.shape[1]

    def _answers(self, outputs: dict[str, Tensor]) -> list[str]:
        return [self.answers[i] for i in outputs["logits"].argmax(dim=-1).tolist()]

    def predict(self, outputs: dict[str, Tensor], batch: dict[str, Any]) -> list[dict[str, Any]]:
        qids = batch["question_id"]  # int64 ids (VQAv2, MSRVTT-QA), or strings (ActivityNet-QA, TGIF-QA)
        qids = [int(q) for q in qids.tolist()] if isinstance(qids, Tensor) else list(qids)
        return [{"question_id": q, "answer": a} for q, a in zip(qids, self._answers(outputs))]

    def metrics(self) -> MetricCollection:
        # the official script also reports accuracy per answer type: logged as overall, yes/no, number, other
        return MetricCollection(
            {
                "accuracy": VQAAccuracy(protocol=self.protocol),
                "by_type": VQAAccuracy(
                    protocol=self.protocol,
                    by_answer_type=True,
                    type_names=self.answer_types,
                    type_groups=self.answer_type_groups,
                ),
            }
        )

    def update_metrics(
        self, metrics: MetricCollection, outputs: dict[str, Tensor], batch: dict[str, Any]
    ) -> None:
        if not is_labelled(batch):
            return  # a split without annotations (test-dev): predict only
        preds, ids = self._answers(outputs), batch["question_id"]
        metrics["accuracy"].update(preds, batch["answers"], ids=ids)
        metrics["by_type"].update(preds, batch["answers"], ids=ids, answer_types=batch["answer_type"])

    @torch.no_grad()
    def describe(self, outputs: dict[str, Tensor], batch: dict[str, Any], i: int) -> str:
        """One line for the TensorBoard image panel."""
        pred = self._answers({"logits": outputs["logits"][i : i + 1]})[0]
        gts = batch["answers"][i] if is_labelled(batch) else []
        return f"Q: {batch['question'][i]}\npred: {pred}\nGT: {', '.join(gts)}"
