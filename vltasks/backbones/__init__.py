"""Backbone adapters over HF transformers models, found by family name; tiny presets for tests."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from vltasks.backbones.base import CAPABILITIES, Backbone, Features, VLProcessor
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


def _check_buildable(cls: type[Backbone], needs: set[str]) -> None:
    """Fail before a large download or a tokenizer training when no head could be served."""
    missing = needs - cls.buildable
    if missing:
        raise ValueError(
            f"the heads need {sorted(missing)} but backbone family {cls.family!r} offers at most "
            f"{sorted(cls.buildable)}"
        )


def build_backbone(
    cfg: dict[str, Any], texts: Callable[[], Iterable[str]] | None = None, needs: set[str] | None = None
) -> Backbone:
    """Hub name / local dir through transformers' own loading, or a tiny preset built from config.

    A preset trains its WordPiece tokenizer on ``texts()`` (the training set's text).
    """
    needs = set(needs or ())
    pretrained, preset = cfg.get("pretrained"), cfg.get("preset")
    if pretrained:
        guess = [f for f in ("clip", "blip") if f in str(pretrained).lower()]
        family = cfg.get("name") or (guess[0] if guess else "vilt")
        cls = BACKBONES.get(family)
        _check_buildable(cls, needs)
        backbone = cls.from_pretrained(str(pretrained), **_fusion_kwargs(family, cfg, needs))
    elif preset:
        if preset not in PRESETS:
            raise KeyError(f"unknown backbone preset {preset!r}; known: {', '.join(sorted(PRESETS))}")
        spec = {**PRESETS[preset], **(cfg.get("preset_args") or {})}
        _check_buildable(BACKBONES.get(spec["family"]), needs)
        if texts is None:
            raise ValueError(f"backbone preset {preset!r} trains its tokenizer on the data: texts are needed")
        tokenizer = train_wordpiece(texts(), vocab_size=int(cfg.get("vocab_size") or spec["vocab_size"]))
        cls = BACKBONES.get(spec["family"])
        backbone = cls.from_config(spec, tokenizer, **_fusion_kwargs(spec["family"], cfg, needs))
    else:
        raise ValueError("backbone: set backbone.pretrained (hub name or directory) or backbone.preset")
    return backbone


def backbone_from_files(family: str, files: dict[str, str]) -> Backbone:
    """Rebuild a backbone's architecture from the files stored in a task checkpoint."""
    return BACKBONES.get(family).from_files(files)


__all__ = [
    "BACKBONES",
    "CAPABILITIES",
    "BlipBackbone",
    "PRESETS",
    "Backbone",
    "ClipBackbone",
    "Features",
    "VLProcessor",
    "ViltBackbone",
    "backbone_from_files",
    "build_backbone",
    "train_wordpiece",
]
