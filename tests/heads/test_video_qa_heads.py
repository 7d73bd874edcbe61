"""Video QA on the heads: the count head (regression, rounded and clipped answers, MSE), the
multiple-choice head's tgif / nextqa protocols (scored by index, NExT-QA's table, results rows),
and the VQA head's exact protocol with string question ids and the dataset's question types."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from vltasks.heads import HEADS
from vltasks.heads.count import CountHead
from vltasks.heads.multiple_choice import MultipleChoiceHead
from vltasks.heads.vqa import VQAHead

from vltasks.backbones.base import Features


class ClipBackbone(nn.Module):
    """Pooled vector from the clip's mean and the first token: enough to tell rows apart."""

    def __init__(self, hidden: int = 8) -> None:
        super().__init__()
        self.proj = nn.Linear(2, hidden)
        self.clips: list[torch.Size] = []

    def forward(self, batch):
        self.clips.append(batch["video"].shape)
        x = torch.stack([batch["video"].flatten(1).mean(1), batch["input_ids"][:, 0].float()], 1)
        return Features(pooled=self.proj(x))


def _clip_batch(n: int = 3) -> dict:
    return {
        "video": torch.arange(float(n))[:, None, None, None, None].expand(n, 4, 3, 2, 2).clone(),
        "input_ids": torch.arange(n)[:, None].repeat(1, 3),
        "attention_mask": torch.ones(n, 3, dtype=torch.long),
        "sample_id": [f"COUNT{i}" for i in range(n)],
        "question_id": [f"COUNT{i}" for i in range(n)],
        "question": ["how many times does the red circle blink ?"] * n,
    }


def test_count_head_regresses_answers_rounded_and_clipped_and_reports_mse():
    torch.manual_seed(0)
    assert HEADS.get("count") is CountHead
    head, backbone = CountHead(8, mean_count=2.0), ClipBackbone()
    assert head.monitor == "mse" and head.monitor_mode == "min"
    assert head.regressor[-1].bias.item() == 2.0  # starts at the training mean
    batch = {**_clip_batch(), "targets": torch.tensor([1.0, 2.0, 3.0])}
    out = head.run(backbone, batch)
    assert out["counts"].shape == (3,)
    loss = head.loss(out, batch)
    torch.testing.assert_close(loss, nn.functional.mse_loss(out["counts"], batch["targets"]))
    loss.backward()
    assert backbone.proj.weight.grad is not None and head.regressor[0].weight.grad.abs().sum() > 0
    fixed = {"counts": torch.tensor([0.3, 2.5, 14.0])}
    assert head.answers(fixed) == [1, 2, 10]  # half to even, clipped to 1..10
    rows = head.predict(fixed, batch)
    assert rows == [{"question_id": f"COUNT{i}", "answer": a} for i, a in enumerate([1, 2, 10])]
    assert json.loads(json.dumps(rows)) == rows
    metrics = head.metrics()
    head.update_metrics(metrics, fixed, batch)
    assert metrics.compute()["mse"].item() == pytest.approx((0 + 0 + 49) / 3)
    assert "pred: 10 (14.00)" in head.describe(fixed, batch, 2) and "GT: 3" in head.describe(fixed, batch, 2)
    with pytest.raises(ValueError, match="low=5 is above high=2"):
        CountHead(8, low=5, high=2)


def _choice_batch(types: list[str]) -> dict:
    n = len(types)
    ids = torch.arange(n * 5).view(n, 5, 1).repeat(1, 1, 3)
    return {
        "video": torch.arange(float(n))[:, None, None, None, None].expand(n, 4, 3, 2, 2).clone(),
        "answer_inputs": {"input_ids": ids, "attention_mask": torch.ones(n, 5, 3, dtype=torch.long)},
        "sample_id": [f"400000000{i}_{i}" for i in range(n)],
        "question": ["which shape appears first"] * n,
        "candidates": [["a", "a", "b", "c", "d"]] * n,  # two candidates read alike: scored by index
        "question_type": types,
        "targets": torch.tensor([[1]] * n),
    }


@pytest.mark.parametrize("protocol", ["tgif", "nextqa"])
def test_video_multiple_choice_protocols_score_by_index_and_write_result_rows(protocol):
    torch.manual_seed(0)
    head, backbone = MultipleChoiceHead(8, protocol=protocol), ClipBackbone()
    batch = _choice_batch(["TP", "TN", "CW"])
    out = head.run(backbone, batch)
    assert out["answer_logits"].shape == (3, 5) and backbone.clips[0][:2] == (15, 4)  # each row its clip
    head.loss(out, batch).backward()
    # candidate 0 reads like the answer (1) but is another candidate: chosen index 0 is wrong
    picks = {"answer_logits": torch.tensor([[0.0, 9, 0, 0, 0], [9.0, 0, 0, 0, 0], [0.0, 9, 0, 0, 0]])}
    metrics = head.metrics()
    head.update_metrics(metrics, picks, batch)
    values = {k: v.item() for k, v in metrics.compute().items()}
    assert values["accuracy"] == pytest.approx(2 / 3)
    key = "qns_id" if protocol == "nextqa" else "question_id"
    rows = head.predict(picks, batch)
    assert rows[1] == {key: batch["sample_id"][1], "prediction": 0, "answer": 1}
    unlabelled = {k: v for k, v in batch.items() if k != "targets"}
    assert "answer" not in head.predict(picks, unlabelled)[0]
    if protocol == "nextqa":  # eval_mc.py's table: TP joins TN ("Bef&Aft"), groups by first letter
        assert values["TN"] == 0.5 and values["TP"] == 1.0 and values["T"] == 0.5 and values["C"] == 1.0
        assert {"CW", "CH", "TC", "DL", "DC", "DO", "D"} <= set(values)
    else:
        assert set(values) == {"accuracy"}


def test_vqa_head_exact_protocol_with_string_ids_and_the_datasets_types():
    head = VQAHead(8, answers=["left", "right"], protocol="exact", answer_types=["motion", "number"])
    batch = {
        "question_id": ["v_a_1", "v_b_1"],
        "sample_id": ["v_a_1", "v_b_1"],
        "answers": [["left"], ["three"]],  # "three" is outside the vocabulary: always wrong
        "answer_type": ["motion", "number"],
        "targets": torch.tensor([[1.0, 0.0], [0.0, 0.0]]),
    }
    out = {"logits": torch.tensor([[2.0, 0.0], [0.0, 2.0]])}
    assert head.predict(out, batch) == [
        {"question_id": "v_a_1", "answer": "left"},
        {"question_id": "v_b_1", "answer": "right"},
    ]
    metrics = head.metrics()
    head.update_metrics(metrics, out, batch)
    values = {k: v.item() for k, v in metrics.compute().items()}
    assert values["accuracy"] == 0.5 and values["motion"] == 1.0 and values["number"] == 0.0
    assert head.predict(out, {**batch, "question_id": torch.tensor([7, 8])})[0]["question_id"] == 7
