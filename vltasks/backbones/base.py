"""The backbone contract: what a shared encoder offers the heads, whatever HF model is inside.

A backbone declares capabilities, and each capability is a typed protocol a head can rely on:

| capability | protocol | what it gives |
|---|---|---|
| ``fusion`` | `Fusion` | ``backbone(batch) -> Features``: cross-modal ``tokens``, ``mask``, ``pooled`` |
| ``dual`` | `DualEncoder` | ``encode_image`` / ``encode_text`` -> `Encoded` (ITC embedding, tokens) |
| ``dual`` + ``fusion`` | `PairFusion` | ``fuse_pairs``: fused vector of pairs encoded apart (ITM) |
| ``decoder`` | `Decoder` | ``vision_tokens``, teacher-forced ``decoder_logits``, ``generate`` |
| ``video`` | `Video` | ``encode_video``: frames [B, T, 3, H, W] -> `VideoTokens` ([B, T, L, D], mask) |

``Backbone.require`` checks both the declared capability and the protocol's methods, so a head that
asks for what a backbone lacks fails when the model is built, naming the capability; the config
check (vltasks/config.py) does the same against the family's ``buildable`` set before any download.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from vltasks.backbones.video import VideoAdapter
from vltasks.batch import TEXT_KEYS

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


class Encoded(NamedTuple):
    """One modality through its own encoder: the ITC embedding and the tokens fusion reads."""

    embeds: Tensor  # [B, E], before normalization
    tokens: Tensor  # [B, N, D]


class VideoTokens(NamedTuple):
    """A clip through the image encoder, frame by frame (the `Video` capability)."""

    tokens: Tensor  # [B, T, L, D]: L tokens per frame
    frame_mask: Tensor  # [B, T], 1 = a real frame (clips shorter than T are padded)


@runtime_checkable
class Fusion(Protocol):
    """Single- or two-stream fusion of an (image, text) pair, called on a whole batch."""

    hidden_size: int

    def __call__(self, batch: dict[str, Any]) -> Features: ...


@runtime_checkable
class DualEncoder(Protocol):
    """Separate image and text encoders with projections into one embedding space (ITC)."""

    embed_dim: int | None

    def encode_image(self, pixel_values: Tensor) -> Encoded: ...

    def encode_text(self, input_ids: Tensor, attention_mask: Tensor) -> Encoded: ...


@runtime_checkable
class PairFusion(Protocol):
    """A dual encoder that also fuses: pairs encoded apart are fused afterwards (two-stage ITM).

    Its own protocol, not part of `DualEncoder`: a dual encoder without a fusion module (CLIP as
    released) cannot fuse, so only backbones offering both ``dual`` and ``fusion`` provide it."""

    def fuse_pairs(
        self, image_tokens: Tensor, text_tokens: Tensor, input_ids: Tensor, attention_mask: Tensor
    ) -> Tensor: ...


@runtime_checkable
class Decoder(Protocol):
    """A text decoder conditioned on vision tokens (captioning, generative answers)."""

    bos_token_id: int
    vision_width: int  # width of vision_tokens, which is what the decoder cross-attends to

    def vision_tokens(self, pixel_values: Tensor) -> Tensor: ...

    def decoder_logits(self, image_tokens: Tensor, input_ids: Tensor, attention_mask: Tensor) -> Tensor: ...

    def generate(self, image_tokens: Tensor, prompt_ids: Tensor | None = None, **kwargs: Any) -> Tensor: ...


@runtime_checkable
class Video(Protocol):
    """Frames in, per-frame tokens out; heads pool over time or fuse the frame tokens."""

    def encode_video(self, frames: Tensor, frame_mask: Tensor) -> VideoTokens: ...


class DualFusion(DualEncoder, PairFusion, Protocol):
    """What two-stage retrieval needs: ITC from the dual encoders, ITM from fusing chosen pairs."""


PROTOCOLS: dict[str, tuple[type, ...]] = {
    "fusion": (Fusion,),
    "dual": (DualEncoder,),
    "decoder": (Decoder,),
    "video": (Video,),
}
CAPABILITIES = tuple(PROTOCOLS)


def protocols_for(capabilities: set[str] | frozenset[str]) -> list[type]:
    """The protocols a set of capabilities promises (``dual`` + ``fusion`` also promise PairFusion)."""
    out = [p for c in sorted(capabilities) for p in PROTOCOLS.get(c, ())]
    if {"dual", "fusion"} <= set(capabilities):
        out.append(PairFusion)
    return out


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
        return {k: v for k, v in enc.items() if k in TEXT_KEYS}

    def pairs(self, first: list[str], second: list[str]) -> dict[str, Tensor]:
        """(context, candidate) text pairs: segment ids tell the two apart (multiple choice)."""
        enc = self.tokenizer(
            first,
            second,
            padding="longest",
            truncation=True,
            max_length=self.max_text_len,
            return_tensors="pt",
        )
        return {k: v for k, v in enc.items() if k in TEXT_KEYS}

    def token_ids(self, text: str) -> list[int]:
        """Ids of a text without special tokens (a decoder prompt)."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []

    def decode(self, ids: Tensor) -> list[str]:
        """Generated ids -> texts, special tokens dropped, whitespace collapsed."""
        return [" ".join(t.split()) for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]

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
    model_types: ClassVar[tuple[str, ...]] = ()  # config.json model_type values this adapter loads
    capabilities: frozenset[str] = frozenset()  # what this instance offers
    # what the family can be built to offer (CLIP gains fusion from an added block); configs are
    # checked against it before any weights are loaded
    buildable: ClassVar[frozenset[str]] = frozenset()
    hidden_size: int = 0  # width of fused tokens / pooled vector
    vision_width: int = 0  # width of the image encoder's tokens (the video adapter, decoders read them)
    text_width: int = 0  # width of the text encoder's tokens (dual families)
    embed_dim: int | None = None  # width of dual embeddings

    def __init__(self, processor: VLProcessor) -> None:
        super().__init__()
        self.processor = processor
        self.video: VideoAdapter | None = None  # built when a task reads clips (attach_video)

    # -- the heads' door -------------------------------------------------------------------------
    def forward(self, batch: dict[str, Any]) -> Features:  # pragma: no cover - abstract
        raise NotImplementedError

    def require(self, needs: set[str] | frozenset[str], who: str) -> None:
        """Fail at build time, naming both sides, when a head needs what this backbone lacks:
        a capability it does not declare, or a protocol method it does not implement."""
        missing = set(needs) - set(self.capabilities)
        if missing:
            raise ValueError(
                f"head {who!r} needs {sorted(missing)} but backbone {self.family!r} offers "
                f"{sorted(self.capabilities)}"
            )
        broken = [p.__name__ for p in protocols_for(frozenset(needs)) if not isinstance(self, p)]
        if broken:
            raise TypeError(
                f"backbone {self.family!r} declares {sorted(needs)} but does not implement {broken}"
            )

    # -- clips (the video capability), shared by every family --------------------------------------
    def attach_video(self, config: dict[str, Any]) -> None:
        """Add the video adapter (backbones/video.py): temporal embedding, token cap, feature projection."""
        self.video = VideoAdapter(self.vision_width, **{k: v for k, v in config.items() if v is not None})
        self.capabilities = frozenset(self.capabilities | {"video"})

    def save_video(self, path: str | Path) -> None:
        if self.video is not None:
            self.video.save(path)

    def load_video(self, path: str | Path, weights: bool = True) -> None:
        """The adapter a save_pretrained directory holds, if any (hub directories hold none)."""
        adapter = VideoAdapter.load(path, weights) if Path(path).is_dir() else None
        if adapter is not None:
            self.video = adapter
            self.capabilities = frozenset(self.capabilities | {"video"})

    def _frames(self, frames: Tensor) -> tuple[Tensor | None, Tensor]:  # pragma: no cover - per family
        """Frames [N, 3, H, W] through the image encoder: (the [CLS] vector its dual embedding is
        projected from, or None; tokens [N, L, D] with [CLS] first)."""
        raise NotImplementedError

    def _project_visual(self, vector: Tensor) -> Tensor:  # pragma: no cover - per family
        """A visual [CLS]-like vector [B, D] -> the ITC embedding [B, E] (dual families)."""
        raise NotImplementedError(f"backbone {self.family!r} has no dual embedding")

    def _encode_clip(
        self, clip: Tensor, frame_mask: Tensor | None = None
    ) -> tuple[Tensor | None, VideoTokens]:
        """(the clip's ITC embedding: mean of its frames', or None; its `VideoTokens`). ``clip`` is
        frames [B, T, 3, H, W] or pre-extracted features [B, T, F]."""
        if self.video is None:
            raise ValueError(f"backbone {self.family!r} has no video adapter: no task of the run reads clips")
        b, t = clip.shape[:2]
        mask = (
            frame_mask if frame_mask is not None else torch.ones(b, t, dtype=torch.long, device=clip.device)
        )
        if clip.ndim == 3:
            tokens = self.video.project(clip)
            cls: Tensor | None = tokens[:, :, 0]
        else:
            cls, tokens = self._frames(clip.flatten(0, 1))
            tokens = self.video.cap(tokens)
            tokens = tokens.view(b, t, *tokens.shape[1:])
            cls = None if cls is None else cls.view(b, t, -1)
        embeds = None
        if cls is not None and "dual" in self.capabilities:
            weights = mask[..., None].to(cls.dtype)
            embeds = self._project_visual((cls * weights).sum(1) / weights.sum(1).clamp(min=1))
        return embeds, VideoTokens(self.video.add_time(tokens), mask)

    def encode_video(self, frames: Tensor, frame_mask: Tensor | None = None) -> VideoTokens:
        """The `Video` protocol: per-frame tokens [B, T, L, D] and the frame mask."""
        return self._encode_clip(frames, frame_mask)[1]

    @staticmethod
    def flat(video: VideoTokens) -> tuple[Tensor, Tensor]:
        """A clip's tokens as one sequence for fusion or a decoder: [B, T * L, D] and its mask."""
        tokens = video.tokens
        return tokens.flatten(1, 2), video.frame_mask.repeat_interleave(tokens.shape[2], dim=1)

    @property
    def pad_token_id(self) -> int:
        """The tokenizer's padding id (0 when it has none), for heads that pad token rows."""
        return int(getattr(self.processor.tokenizer, "pad_token_id", None) or 0)

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
        from transformers.utils import logging as hf_logging

        shown = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # a temporary copy: no "Writing model shards" bar
        try:
            with tempfile.TemporaryDirectory() as tmp:
                self.save_pretrained(tmp)
                return {
                    p.name: p.read_text(encoding="utf-8")
                    for p in sorted(Path(tmp).iterdir())
                    if p.is_file() and not p.name.endswith(_WEIGHT_SUFFIXES)
                }
        finally:
            if shown:
                hf_logging.enable_progress_bar()

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


def model_type_of(name_or_dir: str) -> str | None:
    """``model_type`` of a local save_pretrained directory's config.json (None when not local)."""
    config = Path(name_or_dir).expanduser() / "config.json"
    if not config.is_file():
        return None
    try:
        value = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (ValueError, AttributeError) as e:
        raise ValueError(f"{config}: cannot read model_type ({e})") from e
    return value if isinstance(value, str) else None
