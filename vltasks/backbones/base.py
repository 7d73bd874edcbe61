"""The backbone contract: what a shared encoder offers the heads, whatever HF model is inside.

Capabilities (DESIGN.md): ``fusion`` (cross-modal tokens + pooled vector), ``dual`` (separate image
and text embeddings for ITC), ``decoder`` (text generation), ``video`` (frames pooled over time).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

CAPABILITIES = ("fusion", "dual", "decoder", "video")
# Files written by save_pretrained that describe the model but hold no weights: they travel inside
# task checkpoints so a checkpoint alone rebuilds the model (weights come from its state_dict).
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack")


@dataclass
class Features:
    """What a backbone gives the heads; fields a backbone cannot provide stay None."""

    tokens: Tensor | None = None  # fused tokens [B, L, D]
    mask: Tensor | None = None  # [B, L], 1 = real token
    pooled: Tensor | None = None  # fused pooled vector [B, D]
    image_embeds: Tensor | None = None  # dual: normalized-ready image embedding [B, E]
    text_embeds: Tensor | None = None  # dual: text embedding [B, E]
    image_tokens: Tensor | None = None  # unimodal vision tokens [B, P, Dv]
    text_tokens: Tensor | None = None  # unimodal text tokens [B, T, Dt]


class VLProcessor:
    """Tokenizer + image processor, called in the collate function (picklable for workers)."""

    def __init__(self, tokenizer: Any, image_processor: Any, max_text_len: int) -> None:
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.max_text_len = max_text_len

    def text(self, texts: list[str]) -> dict[str, Tensor]:
        enc = self.tokenizer(
            texts, padding="longest", truncation=True, max_length=self.max_text_len, return_tensors="pt"
        )
        return {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}

    def images(self, images: list[Any]) -> dict[str, Tensor]:
        out = self.image_processor(images=images, return_tensors="pt")
        return {k: v for k, v in out.items() if k in ("pixel_values", "pixel_mask")}

    def __call__(self, images: list[Any] | None = None, texts: list[str] | None = None) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        if texts is not None:
            out.update(self.text(texts))
        if images is not None:
            out.update(self.images(images))
        return out

    def save_pretrained(self, path: str | Path) -> None:
        self.tokenizer.save_pretrained(str(path))
        self.image_processor.save_pretrained(str(path))


class Backbone(nn.Module):
    """Base adapter. Subclasses wrap one HF model family and say what they offer."""

    family: ClassVar[str] = ""
    capabilities: frozenset[str] = frozenset()  # what this instance offers
    # what the family can be built to offer (CLIP gains fusion from an added block); configs are
    # checked against it before any weights are loaded
    buildable: ClassVar[frozenset[str]] = frozenset()
    hidden_size: int = 0  # width of fused tokens / pooled vector
    embed_dim: int | None = None  # width of dual embeddings

    def __init__(self, processor: VLProcessor) -> None:
        super().__init__()
        self.processor = processor

    # -- the heads' door -------------------------------------------------------------------------
    def forward(self, batch: dict[str, Any]) -> Features:  # pragma: no cover - abstract
        raise NotImplementedError

    def require(self, needs: set[str] | frozenset[str], who: str) -> None:
        """Fail at build time, naming both sides, when a head needs what this backbone lacks."""
        missing = set(needs) - set(self.capabilities)
        if missing:
            raise ValueError(
                f"head {who!r} needs {sorted(missing)} but backbone {self.family!r} offers "
                f"{sorted(self.capabilities)}"
            )

    # -- persistence -----------------------------------------------------------------------------
    def save_pretrained(self, path: str | Path) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def from_pretrained(cls, name_or_dir: str, **kwargs: Any) -> Backbone:  # pragma: no cover
        raise NotImplementedError

    @classmethod
    def from_dir_without_weights(cls, path: str | Path, **kwargs: Any) -> Backbone:  # pragma: no cover
        raise NotImplementedError

    def export_files(self) -> dict[str, str]:
        """Every non-weight file of save_pretrained, as text, for self-contained checkpoints."""
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp)
            return {
                p.name: p.read_text(encoding="utf-8")
                for p in sorted(Path(tmp).iterdir())
                if p.is_file() and not p.name.endswith(_WEIGHT_SUFFIXES)
            }

    @classmethod
    def from_files(cls, files: dict[str, str], **kwargs: Any) -> Backbone:
        """Rebuild the architecture (random weights) from export_files(); a state_dict fills it."""
        with tempfile.TemporaryDirectory() as tmp:
            for name, text in files.items():
                if "/" in name or name.startswith("."):
                    raise ValueError(f"refusing backbone file name {name!r} from a checkpoint")
                (Path(tmp) / name).write_text(text, encoding="utf-8")
            return cls.from_dir_without_weights(tmp, **kwargs)


def freeze_(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def to_device(batch: dict[str, Any], keys: tuple[str, ...], device: torch.device) -> dict[str, Tensor]:
    return {k: batch[k].to(device) for k in keys if k in batch}
