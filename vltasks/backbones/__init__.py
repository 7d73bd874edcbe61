"""Backbone adapters over HF transformers models, found by family name; tiny presets for tests."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from vltasks.backbones.base import (
    CAPABILITIES,
    Backbone,
    Decoder,
    DualEncoder,
    DualFusion,
    Encoded,
    Features,
    Fusion,
    PairFusion,
    Video,
    VideoTokens,
    VLProcessor,
    model_type_of,
    protocols_for,
)
from vltasks.backbones.blip import BlipBackbone
from vltasks.backbones.clip import ClipBackbone
from vltasks.backbones.tokenizer import train_wordpiece
from vltasks.backbones.vilt import ViltBackbone
from vltasks.registry import Registry

BACKBONES: Registry[type[Backbone]] = Registry("backbone")
BACKBONES.register("vilt")(ViltBackbone)
BACKBONES.register("clip")(ClipBackbone)
BACKBONES.register("blip")(BlipBackbone)

# Tiny random presets: small enough to learn the synthetic world on a CPU in minutes.
_TINY: dict[str, Any] = dict(
    hidden_size=128,
    num_heads=4,
    intermediate_size=256,
    image_size=64,
    patch_size=16,
    max_text_len=32,
    vocab_size=1000,
)
PRESETS: dict[str, dict[str, Any]] = {
    "vilt_tiny": {**_TINY, "family": "vilt", "num_layers": 4},
    "clip_tiny": {**_TINY, "family": "clip", "num_layers": 3, "patch_size": 8, "embed_dim": 64},
    "blip_tiny": {**_TINY, "family": "blip", "num_layers": 3, "embed_dim": 64},
}


def _fusion_kwargs(family: str, cfg: dict[str, Any], needs: set[str]) -> dict[str, Any]:
    if family == "clip" and "fusion" in needs:
        return {
            "fusion": {k: v for k, v in (cfg.get("fusion") or {}).items() if v is not None} or {"layers": 2}
        }
    return {}


def family_for_model_type(model_type: str | None, where: str) -> str:
    """The adapter family that loads a transformers ``model_type`` (vilt, clip, blip)."""
    for name in BACKBONES:
        if model_type in BACKBONES.get(name).model_types:
            return name
    known = ", ".join(f"{n} ({'/'.join(BACKBONES.get(n).model_types)})" for n in BACKBONES)
    raise ValueError(
        f"{where}: model_type {model_type!r} has no backbone adapter; known: {known}. "
        f"Set backbone.name to the family to load it as."
    )


def family_of(cfg: dict[str, Any], offline: bool = False) -> str | None:
    """The backbone family: ``backbone.name`` when set, a preset's own family, else the
    ``model_type`` in the checkpoint's config.json (a local directory, or fetched from the hub;
    with ``offline`` a hub name gives None). Never guessed from the name's spelling."""
    name, preset, pretrained = cfg.get("name"), cfg.get("preset"), cfg.get("pretrained")
    if preset and not pretrained:
        if preset not in PRESETS:
            raise KeyError(f"unknown backbone preset {preset!r}; known: {', '.join(sorted(PRESETS))}")
        return name or PRESETS[preset]["family"]
    if not pretrained:
        return name
    model_type = model_type_of(str(pretrained))
    if name:
        if model_type is not None and model_type not in BACKBONES.get(name).model_types:
            raise ValueError(
                f"backbone.name={name!r} but {pretrained}/config.json is a {model_type!r} model: "
                f"set backbone.name={family_for_model_type(model_type, str(pretrained))} (or leave it unset)"
            )
        return name
    if model_type is None:
        if offline:
            return None
        from transformers import PretrainedConfig

        model_type = PretrainedConfig.get_config_dict(str(pretrained))[0].get("model_type")
    return family_for_model_type(model_type, str(pretrained))


def check_buildable(family: str, needs: set[str], who: str = "the heads") -> None:
    """Fail before a large download or a tokenizer training when no head could be served."""
    cls = BACKBONES.get(family)
    missing = set(needs) - cls.buildable
    if missing:
        raise ValueError(
            f"{who} need{'s' if who != 'the heads' else ''} {sorted(missing)} but backbone family "
            f"{cls.family!r} offers at most {sorted(cls.buildable)}"
        )


def build_backbone(
    cfg: dict[str, Any], texts: Callable[[], Iterable[str]] | None = None, needs: set[str] | None = None
) -> Backbone:
    """Hub name / local dir through transformers' own loading, or a tiny preset built from config.

    A preset trains its WordPiece tokenizer on ``texts()`` (the training set's text).
    """
    needs = set(needs or ())
    pretrained, preset = cfg.get("pretrained"), cfg.get("preset")
    if not pretrained and not preset:
        raise ValueError("backbone: set backbone.pretrained (hub name or directory) or backbone.preset")
    family = family_of(cfg)
    assert family is not None
    check_buildable(family, needs)
    cls = BACKBONES.get(family)
    if pretrained:
        backbone = cls.from_pretrained(str(pretrained), **_fusion_kwargs(family, cfg, needs))
    else:
        spec = {**PRESETS[preset], **(cfg.get("preset_args") or {})}
        if texts is None:
            raise ValueError(f"backbone preset {preset!r} trains its tokenizer on the data: texts are needed")
        tokenizer = train_wordpiece(texts(), vocab_size=int(cfg.get("vocab_size") or spec["vocab_size"]))
        backbone = cls.from_config(spec, tokenizer, **_fusion_kwargs(family, cfg, needs))
    if "video" in needs and backbone.video is None:  # a saved directory may bring its own
        backbone.attach_video(cfg.get("video") or {})
    return backbone


def backbone_from_files(family: str, files: dict[str, str]) -> Backbone:
    """Rebuild a backbone's architecture from the files stored in a task checkpoint."""
    return BACKBONES.get(family).from_files(files)


__all__ = [
    "BACKBONES",
    "CAPABILITIES",
    "PRESETS",
    "Backbone",
    "BlipBackbone",
    "ClipBackbone",
    "Decoder",
    "DualEncoder",
    "DualFusion",
    "Encoded",
    "Features",
    "Fusion",
    "PairFusion",
    "VLProcessor",
    "Video",
    "VideoTokens",
    "ViltBackbone",
    "backbone_from_files",
    "build_backbone",
    "check_buildable",
    "family_of",
    "protocols_for",
    "train_wordpiece",
]
