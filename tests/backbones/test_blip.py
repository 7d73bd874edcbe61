"""BLIP adapter: features, offline round trips (ours and transformers' own BLIP classes), decoding."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from transformers import BlipForConditionalGeneration, BlipForImageTextRetrieval

from vltasks.backbones import BACKBONES, PRESETS, BlipBackbone, build_backbone

TINY = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64, "embed_dim": 16}


@pytest.fixture(scope="module")
def blip(tokenizer) -> BlipBackbone:
    torch.manual_seed(0)
    return BlipBackbone.from_config(TINY, tokenizer).eval()


def _batch(backbone):
    images = [Image.new("RGB", (64, 64), c) for c in ("red", "blue")]
    return backbone.processor(images, ["what color is the circle?", "is there a blue square?"])


def _decoder_out(backbone, batch):
    image = backbone.vision_tokens(batch["pixel_values"])
    return backbone.decoder_logits(image, batch["input_ids"], batch["attention_mask"])


def test_features_and_capabilities(blip):
    batch = _batch(blip)
    f = blip(batch)
    assert blip.capabilities == {"dual", "fusion", "decoder"} and BACKBONES.get("blip") is BlipBackbone
    assert f.tokens.shape == (2, batch["input_ids"].shape[1], 32) and f.pooled.shape == (2, 32)
    assert f.image_embeds.shape == f.text_embeds.shape == (2, 16) and blip.embed_dim == 16
    assert f.image_tokens.shape == (2, 1 + (64 // 16) ** 2, 32)
    # fused tokens see the image, unimodal text tokens do not
    assert not torch.allclose(f.tokens, f.text_tokens)
    assert _decoder_out(blip, batch).shape == (2, batch["input_ids"].shape[1], len(blip.processor.tokenizer))
    no_text = blip({"pixel_values": batch["pixel_values"]})
    assert no_text.tokens is None and no_text.image_embeds is not None


def test_round_trip_of_our_directory_is_exact(blip, tmp_path):
    batch = _batch(blip)
    blip.save_pretrained(tmp_path)
    loaded = BlipBackbone.from_pretrained(str(tmp_path), local_files_only=True).eval()
    before, after = blip(batch), loaded(batch)
    for field in ("tokens", "pooled", "image_embeds", "text_embeds", "image_tokens", "text_tokens"):
        torch.testing.assert_close(getattr(before, field), getattr(after, field), rtol=0, atol=0)
    torch.testing.assert_close(_decoder_out(blip, batch), _decoder_out(loaded, batch), rtol=0, atol=0)
    image = blip.vision_tokens(batch["pixel_values"])
    assert torch.equal(blip.generate(image, max_length=8), loaded.generate(image, max_length=8))
    # checkpoints: the non-weight files rebuild the architecture, the state dict fills it
    rebuilt = BlipBackbone.from_files(blip.export_files())
    rebuilt.load_state_dict(blip.state_dict())
    torch.testing.assert_close(_decoder_out(rebuilt.eval(), batch), _decoder_out(blip, batch))


def test_transformers_blip_classes_read_our_directory_and_we_read_theirs(blip, tmp_path):
    batch = _batch(blip)
    blip.save_pretrained(tmp_path / "ours")
    ours_dir = str(tmp_path / "ours")
    cap = BlipForConditionalGeneration.from_pretrained(ours_dir).eval()
    ids = blip.decoder_inputs(batch["input_ids"])
    logits = cap(
        pixel_values=batch["pixel_values"], input_ids=ids, attention_mask=batch["attention_mask"]
    ).logits
    torch.testing.assert_close(logits, _decoder_out(blip, batch))
    ret = BlipForImageTextRetrieval.from_pretrained(ours_dir).eval()
    itm = ret(input_ids=batch["input_ids"], pixel_values=batch["pixel_values"]).itm_score
    torch.testing.assert_close(itm, blip.match_logits(blip(batch).pooled))
    # the hub's captioning layout (blip-image-captioning-base) loads into the adapter
    cap.save_pretrained(tmp_path / "cap")
    blip.processor.save_pretrained(tmp_path / "cap")
    from_cap = BlipBackbone.from_pretrained(str(tmp_path / "cap")).eval()
    torch.testing.assert_close(_decoder_out(from_cap, batch), _decoder_out(blip, batch))
    # ... and the retrieval layout (blip-itm-base-coco): same fused features
    ret.save_pretrained(tmp_path / "itm")
    blip.processor.save_pretrained(tmp_path / "itm")
    from_itm = BlipBackbone.from_pretrained(str(tmp_path / "itm")).eval()
    torch.testing.assert_close(from_itm(batch).tokens, blip(batch).tokens)


def test_greedy_generate_matches_a_manual_argmax_loop(blip):
    """transformers' cached generate and the teacher-forced decoder agree token by token."""
    image = blip.vision_tokens(_batch(blip)["pixel_values"])
    out = blip.generate(image, max_length=6)
    cfg = blip.model.config.text_config
    ids, done = out[:, :1], torch.zeros(2, dtype=torch.bool)
    for _ in range(out.shape[1] - 1):
        nxt = blip.decoder_logits(image, ids, torch.ones_like(ids))[:, -1].argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, cfg.pad_token_id), nxt)
        done |= nxt == cfg.sep_token_id
        ids = torch.cat([ids, nxt[:, None]], dim=1)
    assert out[:, 0].eq(blip.bos_token_id).all() and torch.equal(out, ids)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_beams": 3, "length_penalty": 0.5, "no_repeat_ngram_size": 2, "min_length": 4},
        {"do_sample": True, "top_p": 0.9, "top_k": 0, "temperature": 0.7},
    ],
)
def test_beam_and_nucleus_decoding_run_through_transformers(blip, kwargs):
    image = blip.vision_tokens(_batch(blip)["pixel_values"])
    out = blip.generate(image, max_length=7, **kwargs)
    assert out.shape[0] == 2 and 4 <= out.shape[1] <= 7 and out[:, 0].eq(blip.bos_token_id).all()


def test_blip_tiny_preset_accepts_the_tiny_test_keys():
    texts = ["a red circle left of a blue square", "a green triangle"] * 3
    args = {k: TINY[k] for k in ("hidden_size", "num_layers", "num_heads", "intermediate_size")}
    b = build_backbone(
        {"preset": "blip_tiny", "preset_args": args, "vocab_size": 80}, texts=lambda: texts, needs={"decoder"}
    )
    assert PRESETS["blip_tiny"]["family"] == "blip" and isinstance(b, BlipBackbone)
    assert b.hidden_size == 32 and len(b.model.text_decoder.bert.encoder.layer) == 1
    tok = b.processor.tokenizer
    assert b.bos_token_id == tok.cls_token_id and b.model.config.text_config.sep_token_id == tok.sep_token_id
