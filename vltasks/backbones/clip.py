"""CLIP adapter: a dual encoder (ITC embeddings), plus a light fusion block when asked for one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file
from torch import Tensor
from transformers import (
    AutoImageProcessor,
    AutoTokenizer,
    CLIPConfig,
    CLIPImageProcessor,
    CLIPModel,
    CLIPTextConfig,
    CLIPVisionConfig,
)

from vltasks.backbones.base import Backbone, Encoded, Features, VLProcessor
from vltasks.backbones.fusion import FusionBlock
from vltasks.batch import visual_input

FUSION_CONFIG = "vltasks_fusion.json"
FUSION_WEIGHTS = "vltasks_fusion.safetensors"


class ClipBackbone(Backbone):
    family = "clip"
    model_types = ("clip",)
    buildable = frozenset({"dual", "fusion", "video"})  # fusion: a FusionBlock added when a head needs it

    def __init__(
        self, model: CLIPModel, processor: VLProcessor, fusion: dict[str, int] | None = None
    ) -> None:
        super().__init__(processor)
        self.model = model
        # heads keep their own temperature: an unused trainable parameter would stall DDP's reducer
        self.model.logit_scale.requires_grad_(False)
        self.embed_dim = model.config.projection_dim
        self.vision_width = model.config.vision_config.hidden_size
        self.text_width = model.config.text_config.hidden_size
        self.fusion_config = dict(fusion) if fusion else None
        self.fusion: FusionBlock | None = None
        caps = {"dual"}
        if fusion:
            width = int(fusion.get("width", model.config.text_config.hidden_size))
            self.fusion = FusionBlock(
                model.config.text_config.hidden_size,
                model.config.vision_config.hidden_size,
                width,
                layers=int(fusion.get("layers", 2)),
                heads=int(fusion.get("heads", 4)),
            )
            self.hidden_size = width
            caps.add("fusion")
        self.capabilities = frozenset(caps)

    def forward(self, batch: dict[str, Any]) -> Features:
        image = self.encode_image(visual_input(batch))
        text = self.encode_text(batch["input_ids"], batch["attention_mask"])
        feats = Features(
            image_embeds=image.embeds,
            text_embeds=text.embeds,
            image_tokens=image.tokens,
            text_tokens=text.tokens,
        )
        if self.fusion is not None:
            feats.tokens, feats.mask, feats.pooled = self.fusion(
                text.tokens, batch["attention_mask"], image.tokens
            )
        return feats

    # -- parts, for two-stage retrieval (image features once, ITM on chosen pairs) ----------------
    def encode_image(self, pixel_values: Tensor) -> Encoded:
        """(image embedding [B, E] for ITC, vision tokens [B, P, Dv] for fusion). A clip (frames
        [B, T, 3, H, W] or features [B, T, F]): the mean of its frames' embeddings (CLIP4Clip's
        meanP) and its frames' tokens, with their temporal embedding, as one sequence."""
        if pixel_values.ndim != 4:
            embeds, video = self._encode_clip(pixel_values)
            return Encoded(embeds, self.flat(video)[0])
        vis = self.model.vision_model(pixel_values=pixel_values)
        return Encoded(self.model.visual_projection(vis.pooler_output), vis.last_hidden_state)

    def _frames(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        vis = self.model.vision_model(pixel_values=frames)
        return vis.pooler_output, vis.last_hidden_state

    def _project_visual(self, vector: Tensor) -> Tensor:
        return self.model.visual_projection(vector)

    def encode_text(self, input_ids: Tensor, attention_mask: Tensor) -> Encoded:
        """(text embedding [B, E] for ITC, text tokens [B, T, Dt] for fusion)."""
        txt = self.model.text_model(input_ids=input_ids, attention_mask=attention_mask)
        return Encoded(self.model.text_projection(txt.pooler_output), txt.last_hidden_state)

    def fuse_pairs(
        self, image_tokens: Tensor, text_tokens: Tensor, input_ids: Tensor, attention_mask: Tensor
    ) -> Tensor:
        """Pooled fused vector [B, D] of pairs (image_tokens[i], text i), e.g. for ITM."""
        if self.fusion is None:
            raise ValueError("this CLIP backbone was built without a fusion block (no head needed one)")
        return self.fusion(text_tokens, attention_mask, image_tokens)[2]

    # -- building --------------------------------------------------------------------------------
    @classmethod
    def from_config(
        cls, preset: dict[str, Any], tokenizer: Any, fusion: dict[str, int] | None = None
    ) -> ClipBackbone:
        size, width = int(preset.get("image_size", 64)), int(preset.get("hidden_size", 128))
        common = dict(
            hidden_size=width,
            num_hidden_layers=preset.get("num_layers", 4),
            num_attention_heads=preset.get("num_heads", 4),
            intermediate_size=preset.get("intermediate_size", 256),
        )
        text = CLIPTextConfig(
            vocab_size=len(tokenizer),
            max_position_embeddings=preset.get("max_text_len", 32),
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.cls_token_id,
            eos_token_id=tokenizer.sep_token_id,  # CLIP pools the text at its eos token
            **common,
        )
        vision = CLIPVisionConfig(image_size=size, patch_size=preset.get("patch_size", 8), **common)
        config = CLIPConfig(
            text_config=text.to_dict(),
            vision_config=vision.to_dict(),
            projection_dim=preset.get("embed_dim", 64),
        )
        image_processor = CLIPImageProcessor(
            size={"shortest_edge": size}, crop_size={"height": size, "width": size}
        )
        processor = VLProcessor(tokenizer, image_processor, text.max_position_embeddings)
        return cls(CLIPModel(config), processor, fusion)

    @classmethod
    def from_pretrained(
        cls, name_or_dir: str, fusion: dict[str, int] | None = None, **kw: Any
    ) -> ClipBackbone:
        model = CLIPModel.from_pretrained(name_or_dir, **kw)
        fusion_cfg = _read_fusion_config(name_or_dir) or fusion
        backbone = cls(model, _load_processor(name_or_dir, model.config), fusion_cfg)
        weights = Path(name_or_dir) / FUSION_WEIGHTS
        if backbone.fusion is not None and weights.is_file():
            backbone.fusion.load_state_dict(load_file(str(weights)))
        backbone.load_video(name_or_dir)
        return backbone

    @classmethod
    def from_dir_without_weights(
        cls, path: str | Path, fusion: dict[str, int] | None = None, **kw: Any
    ) -> ClipBackbone:
        config = CLIPConfig.from_pretrained(str(path))
        backbone = cls(
            CLIPModel(config), _load_processor(str(path), config), _read_fusion_config(path) or fusion
        )
        backbone.load_video(path, weights=False)
        return backbone

    def save_pretrained(self, path: str | Path) -> None:
        self.model.save_pretrained(str(path))
        self.processor.save_pretrained(path)
        self.save_video(path)
        if self.fusion is not None:
            (Path(path) / FUSION_CONFIG).write_text(json.dumps(self.fusion_config))
            save_file(
                {k: v.contiguous() for k, v in self.fusion.state_dict().items()},
                str(Path(path) / FUSION_WEIGHTS),
            )


def _read_fusion_config(path: str | Path) -> dict[str, int] | None:
    f = Path(path) / FUSION_CONFIG
    return json.loads(f.read_text()) if f.is_file() else None


def _load_processor(name_or_dir: str, config: CLIPConfig) -> VLProcessor:
    tokenizer = AutoTokenizer.from_pretrained(name_or_dir)
    image_processor = AutoImageProcessor.from_pretrained(name_or_dir)
    return VLProcessor(tokenizer, image_processor, config.text_config.max_position_embeddings)
