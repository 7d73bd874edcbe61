"""The video capability of every family: frames through the image encoder, a temporal embedding,
meanP for dual embeddings, frame tokens for fusion and decoding, feature files, save and reload."""

from __future__ import annotations

import pytest
import torch

from vltasks.backbones import BACKBONES, PRESETS, VideoTokens, build_backbone

TEXTS = ["a red circle moves to the left", "what color is the circle?"] * 3
ARGS = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64}
FAMILIES = [p for p in PRESETS if PRESETS[p]["family"] in BACKBONES]


def _build(preset: str, **video):
    torch.manual_seed(0)
    family = BACKBONES.get(PRESETS[preset]["family"])
    cfg = {"preset": preset, "preset_args": ARGS, "vocab_size": 120, "video": {"max_frames": 6, **video}}
    return build_backbone(cfg, texts=lambda: TEXTS, needs=set(family.buildable)).eval()


def _clip(b: int = 2, t: int = 4) -> torch.Tensor:
    return torch.randn(b, t, 3, 64, 64, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("preset", FAMILIES)
def test_frames_become_per_frame_tokens_with_a_temporal_embedding(preset):
    backbone = _build(preset)
    assert "video" in backbone.capabilities
    with torch.no_grad():
        video = backbone.encode_video(_clip())
        assert isinstance(video, VideoTokens) and video.tokens.shape[:2] == (2, 4)
        assert video.tokens.shape[-1] == backbone.vision_width and video.frame_mask.tolist() == [[1] * 4] * 2
        # the temporal embedding is what tells frame 0 from frame 3 when their pixels are equal
        same = _clip(1, 1).expand(1, 4, -1, -1, -1)
        tokens = backbone.encode_video(same).tokens[0]
        assert not torch.allclose(tokens[0], tokens[3])
        backbone.video.temporal.zero_()
        tokens = backbone.encode_video(same).tokens[0]
        torch.testing.assert_close(tokens[0], tokens[3])


@pytest.mark.parametrize("preset", FAMILIES)
def test_a_clip_encodes_the_same_twice_capped_or_not(preset):
    """Evaluation must not draw: ViLT's visual_embed orders (and, capped, picks) patches at random;
    the frames' patches come back in grid order and a cap pools the grid instead."""
    for cap in (None, 5):
        backbone = _build(preset, tokens_per_frame=cap)
        with torch.no_grad():
            first, second = backbone.encode_video(_clip()).tokens, backbone.encode_video(_clip()).tokens
        assert torch.equal(first, second), (preset, cap)
        if cap is not None:
            assert first.shape[2] == 5  # [CLS] + the 4 x 4 patch grid pooled to 2 x 2


@pytest.mark.parametrize(
    "preset", [p for p in FAMILIES if "dual" in BACKBONES.get(PRESETS[p]["family"]).buildable]
)
def test_dual_embedding_of_a_clip_is_the_mean_of_its_frames(preset):
    """CLIP4Clip's meanP: the clip's ITC embedding is the mean of its frames' image embeddings."""
    backbone = _build(preset)
    clip = _clip()
    with torch.no_grad():
        embeds = backbone.encode_image(clip).embeds
        frames = backbone.encode_image(clip.flatten(0, 1)).embeds.view(2, 4, -1).mean(1)
    torch.testing.assert_close(embeds, frames)


@pytest.mark.parametrize("preset", FAMILIES)
def test_fusion_and_decoding_read_every_frame(preset):
    backbone = _build(preset, tokens_per_frame=5)
    texts = backbone.processor.text(TEXTS[:2])
    clip = _clip()
    with torch.no_grad():
        if "fusion" in backbone.capabilities:
            first = backbone({**texts, "video": clip}).pooled
            later = clip.clone()
            later[:, 3] = torch.randn(2, 3, 64, 64)  # only the last frame differs
            assert not torch.allclose(first, backbone({**texts, "video": later}).pooled)
        if "decoder" in backbone.capabilities:
            tokens = backbone.vision_tokens(clip)
            assert tokens.shape[:2] == (2, 4 * 5)  # [CLS] + a 2x2 pooled grid per frame
            assert backbone.generate(tokens, max_length=4).shape[0] == 2


def test_feature_files_enter_through_a_projection_one_token_per_step():
    backbone = _build("clip_tiny", feature_dim=12)
    features = torch.randn(2, 5, 12)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1] * 5])
    video = backbone.encode_video(features, mask)
    assert video.tokens.shape == (2, 5, 1, backbone.vision_width) and torch.equal(video.frame_mask, mask)
    with torch.no_grad():
        short = backbone._encode_clip(features[:1, :3])[0]
        masked = backbone._encode_clip(features, mask)[0][:1]
    torch.testing.assert_close(short, masked)  # padded steps do not enter the clip's embedding
    with pytest.raises(ValueError, match="features of width 7"):
        backbone.encode_video(torch.randn(1, 3, 7))


def test_without_the_adapter_or_beyond_max_frames_the_error_says_why():
    plain = build_backbone(
        {"preset": "clip_tiny", "preset_args": ARGS, "vocab_size": 120}, texts=lambda: TEXTS, needs={"dual"}
    )
    assert "video" not in plain.capabilities
    with pytest.raises(ValueError, match="no video adapter"):
        plain.encode_image(_clip())
    with pytest.raises(ValueError, match="backbone.video.max_frames"):
        _build("blip_tiny").encode_video(_clip(1, 7))


@pytest.mark.parametrize("preset", FAMILIES)
def test_the_adapter_is_saved_and_rebuilt_with_the_model(preset, tmp_path):
    backbone = _build(preset, tokens_per_frame=5)
    clip = _clip()
    cls = type(backbone)
    backbone.save_pretrained(tmp_path)
    loaded = cls.from_pretrained(str(tmp_path)).eval()
    rebuilt = cls.from_files(backbone.export_files())  # what a checkpoint holds, then its state dict
    rebuilt.load_state_dict(backbone.state_dict())
    rebuilt.eval()
    with torch.no_grad():
        torch.manual_seed(5)
        want = backbone.encode_video(clip).tokens
        for other in (loaded, rebuilt):
            torch.manual_seed(5)
            torch.testing.assert_close(other.encode_video(clip).tokens, want, rtol=0, atol=0)
    assert loaded.video.tokens_per_frame == 5 and "video" in rebuilt.capabilities


def test_a_sincos_temporal_start_tells_every_frame_apart_and_is_kept_on_save(tmp_path):
    """From scratch (``temporal_init: sincos``) each frame index starts with its own unit-scale
    vector; the default start is CLIP4Clip's small normal one. An unknown start is refused."""
    sincos = _build("vilt_tiny", temporal_init="sincos")
    table = sincos.video.temporal.detach()
    assert torch.equal(table[0, :16], torch.zeros(16)) and torch.equal(table[0, 16:], torch.ones(16))
    gaps = torch.cdist(table, table) + torch.eye(len(table)) * 1e9
    assert gaps.min() > 0.5  # distinct frames, far apart at the start
    assert _build("vilt_tiny").video.temporal.detach().abs().max() < 0.2
    sincos.save_pretrained(tmp_path)
    loaded = type(sincos).from_pretrained(str(tmp_path))
    assert loaded.video.config["temporal_init"] == "sincos"
    assert torch.equal(loaded.video.temporal.detach(), table)
    with pytest.raises(ValueError, match="temporal_init"):
        _build("vilt_tiny", temporal_init="zeros")
