"""Multiple-choice head: rows paired with their image, CE loss, official predictions and metrics."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from vltasks.heads import HEADS
from vltasks.heads.multiple_choice import MultipleChoiceHead

from vltasks.backbones.base import Features


class RowBackbone(nn.Module):
    """Pooled vector = [image id, first token id, 0...]: shows which image each row was given."""

    def __init__(self, hidden: int = 8) -> None:
        super().__init__()
        self.hidden = hidden
        self.calls: list[int] = []
        self.proj = nn.Linear(2, hidden)

    def forward(self, batch):
        self.calls.append(batch["input_ids"].shape[0])
        x = torch.stack([batch["pixel_values"][:, 0, 0, 0], batch["input_ids"][:, 0].float()], 1)
        return Features(pooled=self.proj(x))


def _rows(*lead: int) -> dict:
    """Candidate texts shaped [*lead, L]: row r's first token is r, so the backbone shows which it saw."""
    n = torch.Size(lead).numel()
    ids = torch.arange(n)[:, None].repeat(1, 3).view(*lead, 3)
    return {"input_ids": ids, "attention_mask": torch.ones(*lead, 3)}


def _vcr_batch(labeled: bool = True) -> dict:
    batch = {
        "pixel_values": torch.arange(2.0)[:, None, None, None].expand(2, 3, 4, 4).clone(),
        "answer_inputs": _rows(2, 4),
        "rationale_inputs": _rows(2, 4) if labeled else _rows(2, 4, 4),
        "sample_id": ["val-0", "val-1"],
        "question": ["What color is circle1?", "What color is square1?"],
        "answers": [[f"it is {c}." for c in ("red", "blue", "green", "purple")]] * 2,
        "rationales": [[f"r{i}" for i in range(4)]] * 2,
    }
    if labeled:
        batch["targets"] = torch.tensor([[0, 1], [3, 2]])  # [B, (answer, rationale)]
    return batch


def _flat_with_images(batch: dict) -> dict:
    rows = {k: v.reshape(-1, v.shape[-1]) for k, v in batch["answer_inputs"].items()}
    return {**rows, "pixel_values": batch["pixel_values"].repeat_interleave(4, 0)}


def test_run_pairs_every_row_with_its_image_and_loss_backpropagates():
    torch.manual_seed(0)
    head, backbone = MultipleChoiceHead(8, protocol="vcr", max_rows=5), RowBackbone()
    seen = []
    backbone.register_forward_hook(lambda m, args, out: seen.append(args[0]["pixel_values"][:, 0, 0, 0]))
    out = head.run(backbone, _vcr_batch())
    assert out["answer_logits"].shape == (2, 4) and out["rationale_logits"].shape == (2, 4)
    assert backbone.calls == [5, 3, 5, 3]  # chunks of max_rows
    assert torch.cat(seen[:2]).tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    # logits keep the candidates' layout: row r (first token r) is sample r // 4, candidate r % 4
    row_logits = head(backbone(_flat_with_images(_vcr_batch())), {}, "answer")["logits"]
    torch.testing.assert_close(out["answer_logits"], row_logits.view(2, 4))
    loss = head.loss(out, _vcr_batch())
    ce = nn.functional.cross_entropy
    expected = ce(out["answer_logits"], torch.tensor([0, 3])) + ce(
        out["rationale_logits"], torch.tensor([1, 2])
    )
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert backbone.proj.weight.grad is not None
    assert all(s[0].weight.grad.abs().sum() > 0 for s in head.scorers.values())
    with pytest.raises(ValueError, match="no labels"):
        head.loss(out, _vcr_batch(labeled=False))


def test_vcr_predictions_metrics_and_test_split():
    head = MultipleChoiceHead(8, protocol="vcr")
    assert head.monitor == "q2ar"
    a = torch.tensor([[5.0, 0, 0, 0], [0, 5.0, 0, 0]])  # 1st right, 2nd wrong
    r = torch.tensor([[0, 5.0, 0, 0], [0, 0, 5.0, 0]])  # both right
    preds = head.predict({"answer_logits": a, "rationale_logits": r}, _vcr_batch())
    assert json.loads(json.dumps(preds)) == preds and preds[0]["annot_id"] == "val-0"
    assert len(preds[0]["answer_probs"]) == 4 and sum(preds[0]["rationale_probs"]) == pytest.approx(1)
    metrics = head.metrics()
    for _ in range(2):  # the same questions again (a padding sampler) count once
        head.update_metrics(metrics, {"answer_logits": a, "rationale_logits": r}, _vcr_batch())
    values = {k: float(v) for k, v in metrics.compute().items()}
    assert values == {"q2a": 0.5, "qa2r": 1.0, "q2ar": 0.5}
    out = head.run(RowBackbone(), _vcr_batch(labeled=False))
    assert out["rationale_logits"].shape == (2, 4, 4)  # rationales given each answer
    rows = head.predict(out, _vcr_batch(labeled=False))
    assert len(rows[1]["rationale_probs_given_answers"]) == 4
    assert all(sum(p) == pytest.approx(1) for p in rows[1]["rationale_probs_given_answers"])
    metrics.reset()
    head.update_metrics(metrics, out, _vcr_batch(labeled=False))  # no labels: nothing to count
    assert not metrics["vcr"].update_called
    assert "GT: it is purple." in head.describe({"answer_logits": a, "rationale_logits": r}, _vcr_batch(), 1)


def test_visual7w_official_results_and_per_type_accuracy():
    head = MultipleChoiceHead(8, protocol="visual7w", question_types=["how", "what"])
    assert HEADS.get("multiple_choice") is MultipleChoiceHead and head.monitor == "accuracy"
    batch = {
        "pixel_values": torch.zeros(3, 3, 4, 4),
        "answer_inputs": _rows(3, 4),
        "sample_id": ["7", "8", "9"],
        "qa_id": torch.tensor([7, 8, 9]),
        "question": ["What color is the circle?", "How many shapes are there?", "What color is the square?"],
        "candidates": [["Red.", "Blue.", "Green.", "Yellow."], ["One.", "Two.", "None.", "Three."]]
        + [["A."] * 4],
        "answer": ["Blue.", "two.", "B."],
        "question_type": ["what", "how", "what"],
        "targets": torch.tensor([[1], [1], [0]]),
    }
    out = head.run(RowBackbone(), batch)
    assert out["answer_logits"].shape == (3, 4) and "rationale_logits" not in out
    logits = torch.tensor([[0, 5.0, 0, 0], [0, 5.0, 0, 0], [5.0, 0, 0, 0]])
    preds = head.predict({"answer_logits": logits}, batch)
    assert json.loads(json.dumps(preds))[0] == {
        "qa_id": 7,
        "question": "What color is the circle?",
        "candidates": [{"answer": "Blue."}],
    }
    metrics = head.metrics()
    head.update_metrics(metrics, {"answer_logits": logits}, batch)
    head.update_metrics(metrics, {"answer_logits": logits}, batch)
    values = {k: float(v) for k, v in metrics.compute().items()}
    # official: the chosen text vs the answer, lower-cased ("Two." == "two."); "A." != "B."
    assert values == pytest.approx({"accuracy": 2 / 3, "accuracy_how": 1.0, "accuracy_what": 0.5})
    torch.testing.assert_close(
        head.loss({"answer_logits": logits}, batch),
        nn.functional.cross_entropy(logits, batch["targets"][:, 0]),
    )


def test_unknown_protocol_is_refused():
    with pytest.raises(ValueError, match="protocol must be one of"):
        MultipleChoiceHead(8, protocol="nlvr2")


def test_pooled_plus_max_scores_from_both_vectors():
    torch.manual_seed(0)
    head = MultipleChoiceHead(4, protocol="visual7w", pooling="pooled+max")
    assert head.scorers["answer"][0].in_features == 8
    tokens, mask = torch.randn(3, 5, 4), torch.ones(3, 5, dtype=torch.long)
    out = head(Features(pooled=torch.randn(3, 4), tokens=tokens, mask=mask), {})
    assert out["logits"].shape == (3,)
    with pytest.raises(ValueError, match="pooling must be one of"):
        MultipleChoiceHead(4, pooling="mean")
