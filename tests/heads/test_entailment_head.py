"""Entailment head: cross-entropy, SNLI-VE prediction rows, the official 3-way metric."""

from __future__ import annotations

import json
import math

import pytest
import torch
from vltasks.heads import HEADS
from vltasks.heads.entailment import EntailmentHead

from vltasks.backbones.base import Features
from vltasks.metrics.functional.choice import ENTAILMENT_CLASSES

PAIRS = ["1.jpg#0r1e", "1.jpg#0r1n", "2.jpg#3r1c"]
GOLD = ["entailment", "neutral", "contradiction"]


def _batch() -> dict:
    return {
        "sample_id": list(PAIRS),
        "pairID": list(PAIRS),
        "hypothesis": ["There is a red circle.", "The red circle is hot.", "There is no square."],
        "gold_label": list(GOLD),
        "targets": torch.tensor([ENTAILMENT_CLASSES.index(g) for g in GOLD]),
    }


def _logits(labels: list[str]) -> torch.Tensor:
    return torch.stack([torch.eye(3)[ENTAILMENT_CLASSES.index(y)] * 5 for y in labels])


def test_loss_is_cross_entropy_and_backpropagates():
    torch.manual_seed(0)
    head = HEADS.get("entailment")(8, dropout=0.1)
    assert isinstance(head, EntailmentHead) and head.monitor == "accuracy"
    feats = Features(pooled=torch.randn(3, 8, requires_grad=True))
    out = head(feats, _batch())
    assert out["logits"].shape == (3, 3)
    loss = head.loss(out, _batch())
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(out["logits"], _batch()["targets"]))
    loss.backward()
    assert feats.pooled.grad is not None and head.classifier[0].weight.grad.abs().sum() > 0
    smooth = EntailmentHead(8, label_smoothing=0.1)
    assert smooth.loss({"logits": _logits(GOLD)}, _batch()) > head.loss({"logits": _logits(GOLD)}, _batch())


def test_pooled_plus_max_sees_the_strongest_real_token_only():
    """The classifier input is [pooled ; max over unmasked tokens]: padding never wins the max."""
    torch.manual_seed(0)
    head = EntailmentHead(4, pooling="pooled+max")
    tokens = torch.randn(2, 5, 4)
    tokens[:, -1] = 100.0  # padding with a huge value
    mask = torch.ones(2, 5, dtype=torch.long)
    mask[:, -1] = 0
    pooled = torch.randn(2, 4)
    seen = []
    head.classifier.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    head(Features(tokens=tokens, mask=mask, pooled=pooled), _batch())
    torch.testing.assert_close(seen[0], torch.cat([pooled, tokens[:, :-1].max(dim=1).values], dim=-1))
    with pytest.raises(ValueError, match="pooling"):
        EntailmentHead(4, pooling="mean")


def test_predict_rows_round_trip_json():
    head = EntailmentHead(8)
    rows = head.predict({"logits": _logits(["neutral", "neutral", "contradiction"])}, _batch())
    assert json.loads(json.dumps(rows)) == [
        {"pairID": "1.jpg#0r1e", "label": "neutral"},
        {"pairID": "1.jpg#0r1n", "label": "neutral"},
        {"pairID": "2.jpg#3r1c", "label": "contradiction"},
    ]


def test_metric_overall_and_per_class_with_ids_counted_once():
    head = EntailmentHead(8)
    metrics = head.metrics()
    out = {"logits": _logits(["neutral", "neutral", "contradiction"])}
    head.update_metrics(metrics, out, _batch())
    head.update_metrics(metrics, out, _batch())  # the same pairs again (padded sampler) count once
    got = {k: float(v) for k, v in metrics.compute().items()}
    assert got == pytest.approx({"accuracy": 2 / 3, "entailment": 0.0, "neutral": 1.0, "contradiction": 1.0})
    metrics.reset()
    batch = {**_batch(), "targets": torch.tensor([2, 2, 2])}  # entailment only: the others are NaN
    head.update_metrics(metrics, {"logits": _logits(["entailment"] * 3)}, batch)
    got = metrics.compute()
    assert float(got["accuracy"]) == 1.0 and math.isnan(float(got["neutral"]))
    metrics.reset()
    head.update_metrics(metrics, out, {k: v for k, v in _batch().items() if k != "targets"})
    assert not metrics["accuracy"].update_called  # unlabelled pairs: predict only


def test_describe_names_hypothesis_prediction_and_gold():
    text = EntailmentHead(8).describe(
        {"logits": _logits(["neutral", "entailment", "entailment"])}, _batch(), 1
    )
    assert text.splitlines()[0] == "H: The red circle is hot."
    assert text.splitlines()[1].startswith("pred: entailment (") and text.endswith("GT: neutral")


def test_pooled_plus_max_with_mixed_precision_outputs():
    """Under autocast the pooled vector and the tokens may differ in dtype; padding must still lose."""
    from vltasks.heads.base import pool

    tokens = torch.randn(2, 4, 3).to(torch.float16)
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])
    out = pool(Features(tokens=tokens, mask=mask, pooled=torch.randn(2, 3)), "pooled+max")
    assert out.dtype == torch.float32 and out.shape == (2, 6)
    torch.testing.assert_close(out[1, 3:], tokens[1, 0].float())
