"""Captioning head: prefix-LM loss through the BLIP decoder, decoding modes, COCO results, metrics."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from vltasks.datamodules.caption_corpus import CaptionCollator
from vltasks.heads import HEADS
from vltasks.heads.captioning import CaptioningHead

from vltasks.backbones import BlipBackbone, ViltBackbone
from vltasks.metrics import CaptionMetrics

TINY = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64}
CAPTIONS = ["is there a blue square?", "what color is the circle?"]


@pytest.fixture(scope="module")
def blip(tokenizer) -> BlipBackbone:
    torch.manual_seed(0)
    return BlipBackbone.from_config(TINY, tokenizer)


def _batch(backbone, refs=True, prompt=""):
    """Two images with their references, through the captioning reader's own collate."""
    samples = [
        {
            "image": Image.new("RGB", (64, 64), color),
            "captions": [caption, "a blue square"] if i == 0 else [caption],
            "image_id": image_id,
            "sample_id": str(i),
            "image_path": f"{image_id}.jpg",
        }
        for i, (color, caption, image_id) in enumerate(zip(("red", "blue"), CAPTIONS, (391895, 522418)))
    ]
    batch = CaptionCollator(backbone.processor, {"prompt": prompt})(samples)
    if not refs:  # a split published without references: predict only
        del batch["targets"], batch["captions"]
    return batch


def test_loss_is_teacher_forced_nll_and_reaches_encoder_and_decoder(blip):
    head = CaptioningHead(blip.hidden_size).train()
    blip.train().zero_grad()
    batch = _batch(blip)
    out = head.run(blip, batch)
    assert "generated" not in out  # no decoding while training
    loss = head.loss(out, batch)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    targets = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
    expected = F.cross_entropy(
        out["logits"][:, :-1].reshape(-1, out["logits"].shape[-1]), targets.reshape(-1)
    )
    torch.testing.assert_close(loss, expected)
    loss.backward()
    for part in (blip.model.vision_model, blip.model.text_decoder):
        assert sum(p.grad.abs().sum() for p in part.parameters() if p.grad is not None) > 0


def test_prompt_is_given_not_scored_and_cut_from_the_caption(blip, tokenizer):
    head = CaptioningHead(blip.hidden_size, prompt="what color", decoding="greedy", max_length=8).train()
    plain, batch = _batch(blip), _batch(blip, prompt=head.collate_args()["prompt"])
    p = len(tokenizer("what color", add_special_tokens=False)["input_ids"])
    assert batch["prompt_ids"].tolist() == tokenizer("what color", add_special_tokens=False)["input_ids"]
    out = head.run(blip, batch)
    assert out["logits"].shape[1] == plain["input_ids"].shape[1] + p
    assert (batch["targets"][:, 1 : 1 + p] == -100).all()
    torch.testing.assert_close(
        batch["targets"][:, 1 + p :][plain["attention_mask"][:, 1:] == 1],
        plain["input_ids"][:, 1:][plain["attention_mask"][:, 1:] == 1],
    )
    head.eval()
    with torch.no_grad():
        image = blip.vision_tokens(batch["pixel_values"])
        raw = blip.generate(image, batch["prompt_ids"][None], **head.gen)
        assert torch.equal(raw[:, 1 : 1 + p], batch["prompt_ids"].expand(2, -1))
        assert head.run(blip, batch)["generated"] == blip.processor.decode(raw[:, 1 + p :])
    # a caption already at the processor's limit: the prompt must not push it past the positions
    sample = {"image": Image.new("RGB", (64, 64)), "caption": "what color " * 40, "image_id": 1}
    long = CaptionCollator(blip.processor, {"prompt": "what color"})(
        [{**sample, "sample_id": "0", "image_path": "x"}]
    )
    out = head.train().run(blip, long)
    assert out["logits"].shape[1] == blip.processor.max_text_len
    # ... and keeps its end token as the last target, as the tokenizer's own truncation does
    assert long["input_ids"][0, -1] == long["targets"][0, -1] == tokenizer.sep_token_id


@pytest.mark.parametrize(
    "args",
    [
        {"decoding": "greedy"},
        {"decoding": "beam", "num_beams": 3, "no_repeat_ngram_size": 2, "length_penalty": 0.6},
        {"decoding": "nucleus", "top_p": 0.8, "temperature": 0.7},
    ],
)
def test_predict_is_coco_results_json(blip, args):
    head = CaptioningHead(blip.hidden_size, max_length=6, min_length=3, **args).eval()
    blip.eval()
    batch = _batch(blip, refs=False)
    with torch.no_grad():
        out = head.run(blip, batch)
    rows = head.predict(out, batch)
    assert json.loads(json.dumps(rows)) == rows
    assert [r["image_id"] for r in rows] == [391895, 522418]
    assert all(isinstance(r["caption"], str) and set(r) == {"image_id", "caption"} for r in rows)
    assert all(len(r["caption"].split()) <= 5 for r in rows)  # start token + at most 5 words


def test_metrics_are_coco_caption_metrics_and_count_each_image_once(blip):
    head = CaptioningHead(blip.hidden_size)
    batch = _batch(blip)
    outputs = {"generated": ["is there a blue square", "a circle"]}
    metrics = head.metrics()
    head.update_metrics(metrics, outputs, batch)
    head.update_metrics(metrics, outputs, batch)  # the same images again (padded sampler) count once
    values = metrics.compute()
    ref = CaptionMetrics(("Bleu", "ROUGE_L", "CIDEr"))
    ref.update(outputs["generated"], batch["captions"])
    for key, value in ref.compute().items():
        torch.testing.assert_close(values[key], value)
    assert head.monitor in values
    metrics.reset()
    head.update_metrics(metrics, outputs, _batch(blip, refs=False))  # predict-only split: no update
    assert not metrics["caption"].update_called
    text = head.describe(outputs, batch, 0)
    assert "pred: is there a blue square" in text and "GT: a blue square" in text


def test_registry_needs_and_argument_errors(tokenizer):
    assert HEADS.get("captioning") is CaptioningHead and CaptioningHead.needs == {"decoder"}
    vilt = ViltBackbone.from_config(TINY, tokenizer)
    with pytest.raises(ValueError, match=r"'captioning'.*\['decoder'\].*'vilt'"):
        vilt.require(CaptioningHead.needs, "captioning")
    with pytest.raises(ValueError, match="decoding must be one of"):
        CaptioningHead(8, decoding="topk")
    with pytest.raises(ValueError, match="min_length"):
        CaptioningHead(8, min_length=9, max_length=5)
    assert CaptioningHead(8, decoding="nucleus").gen["do_sample"] is True
