"""VQA head: BCE on soft targets, official-format predictions, official metric updates."""

from __future__ import annotations

import json

import pytest
import torch
from vltasks.heads import HEADS, VQAHead

from vltasks.backbones.base import Features

ANSWERS = ["yes", "no", "2", "red"]


def _batch():
    return {
        "targets": torch.tensor([[1.0, 0, 0, 0], [0, 0.3, 0, 0.9]]),
        "answers": [["yes"] * 10, ["red"] * 7 + ["no"] + ["blue"] * 2],
        "answer_type": ["yes/no", "other"],
        "question_id": torch.tensor([11, 12]),
        "question": ["is there a circle?", "what color is the square?"],
    }


def test_loss_is_scaled_bce_and_backpropagates():
    torch.manual_seed(0)
    head = VQAHead(8, ANSWERS)
    feats = Features(pooled=torch.randn(2, 8, requires_grad=True))
    out = head(feats, _batch())
    assert out["logits"].shape == (2, 4)
    loss = head.loss(out, _batch())
    expected = torch.nn.functional.binary_cross_entropy_with_logits(out["logits"], _batch()["targets"]) * 4
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert feats.pooled.grad is not None and head.classifier[0].weight.grad.abs().sum() > 0


def test_one_answer_questions_train_with_softmax_cross_entropy():
    """``protocol="exact"`` (video QA) defaults to cross-entropy on the one answer, as
    torch's ``cross_entropy`` computes it; a question whose answer is not in the vocabulary (an
    all-zero row) adds nothing. ``loss`` picks either explicitly; anything else is refused."""
    torch.manual_seed(0)
    head = VQAHead(8, ANSWERS, protocol="exact")
    out = head(Features(pooled=torch.randn(3, 8)), {})
    targets = torch.tensor([[0.0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]])
    expected = torch.nn.functional.cross_entropy(out["logits"][:2], torch.tensor([1, 3]), reduction="sum") / 3
    torch.testing.assert_close(head.loss(out, {"targets": targets}), expected)
    assert (
        VQAHead(8, ANSWERS).loss_kind == "bce"
        and VQAHead(8, ANSWERS, protocol="exact", loss="bce").loss_kind == "bce"
    )
    with pytest.raises(ValueError, match="loss must be"):
        VQAHead(8, ANSWERS, loss="focal")


def test_predict_is_official_results_json_and_metric_is_official():
    head = VQAHead(8, ANSWERS)
    logits = torch.tensor([[5.0, 0, 0, 0], [0, 0, 0, 5.0]])
    preds = head.predict({"logits": logits}, _batch())
    assert json.loads(json.dumps(preds)) == [
        {"question_id": 11, "answer": "yes"},
        {"question_id": 12, "answer": "red"},
    ]
    metrics = head.metrics()
    head.update_metrics(metrics, {"logits": logits}, _batch())
    head.update_metrics(metrics, {"logits": logits}, _batch())  # the same questions again count once
    assert metrics.compute()["accuracy"].item() == pytest.approx(1.0)
    metrics.reset()
    head.update_metrics(metrics, {"logits": torch.tensor([[0, 5.0, 0, 0], [0, 5.0, 0, 0]])}, _batch())
    # "no" vs ten "yes" -> 0; "no" given by 1 of 10 annotators -> 0.3
    assert metrics.compute()["accuracy"].item() == pytest.approx(0.15)


def test_registry_knows_vqa_and_refuses_empty_vocab():
    assert HEADS.get("vqa") is VQAHead
    with pytest.raises(KeyError, match="unknown head 'nope'; known: .*vqa"):
        HEADS.get("nope")
    with pytest.raises(ValueError, match="answer vocabulary is empty"):
        VQAHead(8, [])


def test_pooled_plus_max_reads_the_tokens_too():
    torch.manual_seed(0)
    head = VQAHead(8, ANSWERS, pooling="pooled+max")
    tokens = torch.randn(2, 5, 8, requires_grad=True)
    feats = Features(pooled=torch.randn(2, 8), tokens=tokens, mask=torch.ones(2, 5, dtype=torch.long))
    head.loss(head(feats, _batch()), _batch()).backward()
    assert tokens.grad is not None and int((tokens.grad.abs().sum(-1) > 0).sum()) > 0
    with pytest.raises(ValueError, match="pooling must be one of"):
        VQAHead(8, ANSWERS, pooling="mean")
