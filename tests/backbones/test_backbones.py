"""Backbones: save_pretrained -> from_pretrained (offline, local dir) round trips, capabilities."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from vltasks.heads import VQAHead
from vltasks.heads.base import Head

from vltasks.backbones import PRESETS, ClipBackbone, ViltBackbone, build_backbone


def _batch(backbone):
    images = [Image.new("RGB", (64, 64), c) for c in ("red", "blue")]
    return backbone.processor(images, ["what color is the circle?", "is there a blue square?"])


@pytest.mark.parametrize("cls,kwargs", [(ViltBackbone, {}), (ClipBackbone, {"fusion": {"layers": 1}})])
def test_save_load_round_trip_gives_identical_outputs(cls, kwargs, tokenizer, tmp_path):
    torch.manual_seed(0)
    backbone = cls.from_config(
        {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64}, tokenizer, **kwargs
    ).eval()
    batch = _batch(backbone)
    before = backbone(batch)
    backbone.save_pretrained(tmp_path)
    loaded = cls.from_pretrained(str(tmp_path), local_files_only=True).eval()
    after = loaded(batch)
    assert loaded.capabilities == backbone.capabilities
    for field in ("pooled", "tokens", "image_embeds", "text_embeds"):
        a, b = getattr(before, field), getattr(after, field)
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    # the tokenizer came back from the directory too, with the same ids
    assert (
        loaded.processor.tokenizer("is there a blue square?")["input_ids"]
        == tokenizer("is there a blue square?")["input_ids"]
    )


def test_from_files_rebuilds_architecture_for_checkpoints(tokenizer):
    backbone = ViltBackbone.from_config(
        {"hidden_size": 32, "num_layers": 1, "num_heads": 2}, tokenizer
    ).eval()
    files = backbone.export_files()
    assert "config.json" in files and not any(k.endswith(".safetensors") for k in files)
    rebuilt = ViltBackbone.from_files(files)
    rebuilt.load_state_dict(backbone.state_dict())
    batch = _batch(backbone)
    torch.testing.assert_close(rebuilt.eval()(batch).pooled, backbone(batch).pooled)
    with pytest.raises(ValueError, match="refusing"):
        ViltBackbone.from_files({"../evil.json": "{}"})


def test_capabilities_and_errors_name_both_sides(tokenizer):
    vilt = ViltBackbone.from_config({"hidden_size": 32, "num_layers": 1, "num_heads": 2}, tokenizer)
    clip_dual = ClipBackbone.from_config({"hidden_size": 32, "num_layers": 1, "num_heads": 2}, tokenizer)
    assert vilt.capabilities == {"fusion"}
    assert clip_dual.capabilities == {"dual"}

    class NeedsDual(Head):
        needs = frozenset({"dual"})

    with pytest.raises(ValueError, match=r"'retrieval'.*\['dual'\].*'vilt'"):
        vilt.require(NeedsDual.needs, "retrieval")
    with pytest.raises(ValueError, match=r"'vqa'.*fusion.*'clip'"):
        clip_dual.require(VQAHead.needs, "vqa")
    # a config asking the impossible fails before the tokenizer is trained or weights are loaded
    never = lambda: pytest.fail("texts were read")  # noqa: E731
    with pytest.raises(ValueError, match=r"\['dual'\].*'vilt'"):
        build_backbone({"preset": "vilt_tiny"}, texts=never, needs={"dual", "fusion"})
    with pytest.raises(ValueError, match=r"\['decoder'\].*'clip'"):
        build_backbone({"pretrained": "/nonexistent/clip-dir", "name": "clip"}, needs={"decoder"})


def test_presets_build_with_tokenizer_trained_on_the_data():
    texts = ["what color is the circle?", "is there a red square?"] * 3
    for name in PRESETS:
        b = build_backbone({"preset": name, "vocab_size": 120}, texts=lambda: texts, needs={"fusion"})
        assert "fusion" in b.capabilities, name
        out = b(_batch(b))
        assert out.pooled.shape == (2, b.hidden_size)
        assert b.processor.tokenizer.pad_token_id is not None
        assert b.processor.tokenizer.convert_ids_to_tokens(b.processor.tokenizer("circle")["input_ids"]) == [
            "[CLS]",
            "circle",
            "[SEP]",
        ]
    with pytest.raises(KeyError, match="unknown backbone preset 'nope'.*vilt_tiny"):
        build_backbone({"preset": "nope"}, texts=lambda: texts)
    with pytest.raises(ValueError, match="backbone.pretrained"):
        build_backbone({})
