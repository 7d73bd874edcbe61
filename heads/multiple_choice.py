"""Multiple choice: each (image, context + candidate) pair gets one logit, CE over the candidates.

VCR (Zellers et al. 2019) asks twice per question: Q->A over 4 answers and QA->R over 4 rationales
given the ground-truth answer; Q->AR counts a question right when both are. Visual7W telling asks
once over 4 answers. Video QA asks once over 5: TGIF-QA Action / Transition (``tgif``: accuracy)
and NExT-QA (``nextqa``: accuracy per question type and group, as its eval_mc.py); both are scored
by the chosen index against the answer index, never by candidate text (two candidates may read
alike). The collate gives each candidate group as [B, K, L] text tensors ([B, A, K, L] for VCR's test
rationales, one set of K per answer A): `run` flattens them to rows, repeats each
image for its rows, calls the backbone in chunks (16 rationale rows per test question must not
multiply the image memory at once) and gives the logits back the candidates' shape [B, (A,) K].
Targets are [B, G]: the right candidate of each group (answer; rationale for VCR).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MetricCollection
from vltasks.heads.base import HEADS, Head, check_pooling, mlp, pool

from vltasks.backbones.base import Features, Fusion
from vltasks.batch import VISUAL_KEYS, flatten_candidates, is_labelled
from vltasks.metrics import MultipleChoiceAccuracy, NExTQAAccuracy, VCRAccuracy

GROUPS = {"vcr": ("answer", "rationale"), "visual7w": ("answer",), "tgif": ("answer",), "nextqa": ("answer",)}
ID_KEYS = {"tgif": "question_id", "nextqa": "qns_id"}  # TGIF-QA: its vid_id; NExT-QA: <video>_<qid>


@HEADS.register("multiple_choice")
class MultipleChoiceHead(Head[Fusion]):
    """One scorer per candidate set (answers; rationales for VCR) on the fused pooled vector
    (``pooling="pooled+max"`` adds the max over the fused tokens, as the entailment head can)."""

    reads = frozenset({"pooled", "tokens"})  # pool(): [CLS], and the fused tokens for pooled+max

    def __init__(
        self,
        hidden_size: int,
        protocol: str = "visual7w",
        question_types: list[str] | None = None,
        dropout: float = 0.0,
        max_rows: int = 512,
        pooling: str = "pooled",
    ) -> None:
        super().__init__()
        if protocol not in GROUPS:
            raise ValueError(
                f"multiple_choice head: protocol must be one of {sorted(GROUPS)}, got {protocol!r}"
            )
        self.protocol = protocol
        self.question_types = list(question_types or [])
        self.max_rows = max_rows  # backbone rows per call
        self.monitor = "q2ar" if protocol == "vcr" else "accuracy"
        self.pooling, width = pooling, hidden_size * check_pooling(pooling, "multiple_choice")
        self.scorers = nn.ModuleDict({g: mlp(width, 2 * hidden_size, 1, dropout) for g in GROUPS[protocol]})

    # -- scoring ---------------------------------------------------------------------------------
    def forward(self, features: Features, batch: dict[str, Any], group: str = "answer") -> dict[str, Tensor]:
        """One logit per row (an image with one context + candidate)."""
        return {"logits": self.scorers[group](pool(features, self.pooling)).squeeze(-1)}

    def run(self, backbone: Fusion, batch: dict[str, Any]) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        for group in GROUPS[self.protocol]:
            inputs = batch.get(f"{group}_inputs")
            if inputs is None:
                continue
            rows, lead = flatten_candidates(inputs)
            per_sample = lead[1:].numel()  # candidates (x contexts) of one sample
            image_of_row = torch.arange(lead.numel(), device=rows["input_ids"].device) // per_sample
            logits = []
            for start in range(0, lead.numel(), self.max_rows):
                part = slice(start, start + self.max_rows)
                sub = {k: v[part] for k, v in rows.items()}
                sub.update({k: batch[k][image_of_row[part]] for k in VISUAL_KEYS if k in batch})
                logits.append(self(backbone(sub), batch, group)["logits"])
            out[f"{group}_logits"] = torch.cat(logits).view(lead)
        return out

    def loss(self, outputs: dict[str, Tensor], batch: dict[str, Any]) -> Tensor:
        if not is_labelled(batch):
            raise ValueError("multiple_choice head: this batch has no labels (a predict-only split?)")
        targets = batch["targets"]
        return sum(
            F.cross_entropy(outputs[f"{g}_logits"], targets[:, k])
            for k, g in enumerate(GROUPS[self.protocol])
        )

    # -- predictions and metrics -----------------------------------------------------------------
    def _chosen(self, outputs: dict[str, Tensor], batch: dict[str, Any]) -> list[str]:
        picks = outputs["answer_logits"].argmax(-1).tolist()
        return [c[k] for c, k in zip(batch["candidates"], picks)]

    def predict(self, outputs: dict[str, Tensor], batch: dict[str, Any]) -> list[dict[str, Any]]:
        if self.protocol == "visual7w":  # visual7w-toolkit's results format (evaluate.py --mode mc)
            return [
                {"qa_id": int(q), "question": text, "candidates": [{"answer": a}]}
                for q, text, a in zip(
                    batch["qa_id"].tolist(), batch["question"], self._chosen(outputs, batch)
                )
            ]
        if self.protocol in ID_KEYS:  # NExT-QA: {r.pop("qns_id"): r for r in rows} is eval_mc.py's file
            picks = outputs["answer_logits"].argmax(-1).tolist()
            rows = [
                {ID_KEYS[self.protocol]: sid, "prediction": k} for sid, k in zip(batch["sample_id"], picks)
            ]
            if is_labelled(batch):
                for row, label in zip(rows, batch["targets"][:, 0].tolist()):
                    row["answer"] = label
            return rows
        answers = outputs["answer_logits"].float().softmax(-1).tolist()
        rationales = outputs["rationale_logits"].float().softmax(-1).tolist()
        key = "rationale_probs" if is_labelled(batch) else "rationale_probs_given_answers"
        return [
            {"annot_id": sid, "answer_probs": a, key: r}
            for sid, a, r in zip(batch["sample_id"], answers, rationales)
        ]

    def metrics(self) -> MetricCollection:
        if self.protocol == "vcr":
            return MetricCollection({"vcr": VCRAccuracy()})  # logs q2a, qa2r, q2ar
        if self.protocol == "nextqa":
            return MetricCollection({"nextqa": NExTQAAccuracy()})  # logs accuracy, CW, ..., C, T, D
        if self.protocol == "tgif":
            return MetricCollection({"accuracy": MultipleChoiceAccuracy()})
        per_type = {f"accuracy_{t}": MultipleChoiceAccuracy() for t in self.question_types}
        return MetricCollection({"accuracy": MultipleChoiceAccuracy(), **per_type})

    def update_metrics(
        self, metrics: MetricCollection, outputs: dict[str, Tensor], batch: dict[str, Any]
    ) -> None:
        if not is_labelled(batch):
            return  # test.jsonl: no labels, predict only
        if self.protocol == "vcr":
            targets = batch["targets"]
            metrics["vcr"].update(
                outputs["answer_logits"],
                targets[:, 0],
                outputs["rationale_logits"],
                targets[:, 1],
                ids=batch["sample_id"],
            )
            return
        if self.protocol in ID_KEYS:  # by index: the chosen candidate against the answer's position
            logits, labels, ids = outputs["answer_logits"], batch["targets"][:, 0], batch["sample_id"]
            if self.protocol == "nextqa":
                metrics["nextqa"].update(logits, labels, batch["question_type"], ids=ids)
            else:
                metrics["accuracy"].update(logits, labels, ids=ids)
            return
        chosen, truth, ids = self._chosen(outputs, batch), batch["answer"], batch["qa_id"]
        metrics["accuracy"].update(chosen, truth, ids=ids)
        for t in self.question_types:
            keep = [i for i, qt in enumerate(batch["question_type"]) if qt == t]
            if keep:
                metrics[f"accuracy_{t}"].update(
                    [chosen[i] for i in keep], [truth[i] for i in keep], ids[keep]
                )

    @torch.no_grad()
    def describe(self, outputs: dict[str, Tensor], batch: dict[str, Any], i: int) -> str:
        """Question, chosen candidates with their probability, and the right ones."""
        a = outputs["answer_logits"][i].float().softmax(-1)
        answers = batch.get("candidates") or batch["answers"]
        labelled = is_labelled(batch)
        lines = [f"Q: {batch['question'][i]}", f"pred: {answers[i][int(a.argmax())]} ({float(a.max()):.2f})"]
        if labelled:
            lines.append(f"GT: {answers[i][int(batch['targets'][i, 0])]}")
        if labelled and "rationale_logits" in outputs:
            r = outputs["rationale_logits"][i].float().softmax(-1)
            lines.append(f"R pred: {batch['rationales'][i][int(r.argmax())]} ({float(r.max()):.2f})")
            lines.append(f"R GT: {batch['rationales'][i][int(batch['targets'][i, 1])]}")
        return "\n".join(lines)
