"""ViLT adapter: a single-stream fusion transformer over text tokens and image patches."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from transformers import AutoImageProcessor, AutoTokenizer, ViltConfig, ViltImageProcessor, ViltModel

from vltasks.backbones.base import Backbone, Features, VLProcessor

_TEXT_KEYS = ("input_ids", "attention_mask", "token_type_ids")


class ViltBackbone(Backbone):
    family = "vilt"
    model_types = ("vilt",)
    capabilities = frozenset({"fusion"})
    buildable = frozenset({"fusion", "video"})  # video: frames' patches in the one fused sequence

    def __init__(self, model: ViltModel, processor: VLProcessor) -> None:
        super().__init__(processor)
        self.model = model
        self.hidden_size = self.vision_width = model.config.hidden_size

    def forward(self, batch: dict[str, Any]) -> Features:
        inputs = {k: batch[k] for k in _TEXT_KEYS if k in batch}
        clip = batch.get("video", batch.get("video_features"))
        if clip is None:
            inputs.update({k: batch[k] for k in ("pixel_values", "pixel_mask") if k in batch})
            out = self.model(**inputs)
            visual_mask = None
        else:  # every frame's tokens join the one fused sequence (ViLT is single-stream)
            tokens, visual_mask = self.flat(self.encode_video(clip, batch.get("frame_mask")))
            out = self.model(**inputs, image_embeds=tokens, pixel_mask=visual_mask)
        tokens = out.last_hidden_state
        text_len = batch["input_ids"].shape[1]
        mask = batch["attention_mask"].new_ones(tokens.shape[:2])
        mask[:, :text_len] = batch["attention_mask"]
        if visual_mask is not None:
            mask[:, text_len:] = visual_mask
        return Features(tokens=tokens, mask=mask, pooled=out.pooler_output)

    def _frames(self, frames: Tensor) -> tuple[None, Tensor]:
        """ViLT's own patch embedding of each frame ([CLS] + positions), every patch, in grid order.

        ``visual_embed`` returns the patches in a random order (it draws them with
        ``torch.multinomial``, in evaluation too) and, given a smaller ``max_image_length``, a random
        subset: capped that way, one clip evaluated twice gave two accuracies (0.43, then 0.4225 for
        the same checkpoint). The patches are put back in grid order here and the adapter's ``cap``
        pools the grid, the same in training and evaluation."""
        mask = torch.ones(frames.shape[0], *frames.shape[-2:], dtype=torch.long, device=frames.device)
        tokens, _, (index, (_, width)) = self.model.embeddings.visual_embed(frames, mask, max_image_length=-1)
        order = (index[..., 0] * width + index[..., 1]).argsort(dim=1)
        patches = tokens[:, 1:].gather(1, order[..., None].expand(-1, -1, tokens.shape[-1]))
        return None, torch.cat([tokens[:, :1], patches], dim=1)

    # -- building --------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, preset: dict[str, Any], tokenizer: Any) -> ViltBackbone:
        size = int(preset.get("image_size", 64))
        config = ViltConfig(
            vocab_size=len(tokenizer),
            hidden_size=preset.get("hidden_size", 128),
            num_hidden_layers=preset.get("num_layers", 4),
            num_attention_heads=preset.get("num_heads", 4),
            intermediate_size=preset.get("intermediate_size", 256),
            image_size=size,
            patch_size=preset.get("patch_size", 8),
            max_position_embeddings=preset.get("max_text_len", 32),
            pad_token_id=tokenizer.pad_token_id,
            hidden_dropout_prob=preset.get("dropout", 0.0),
            attention_probs_dropout_prob=preset.get("dropout", 0.0),
        )
        image_processor = ViltImageProcessor(
            size={"shortest_edge": size}, size_divisor=preset.get("patch_size", 8)
        )
        processor = VLProcessor(tokenizer, image_processor, config.max_position_embeddings)
        model = ViltModel(config, add_pooling_layer=True)
        # HF starts patch positions at zero (pretrained ViT weights fill them); a preset may opt in
        if preset.get("pos_init", "zeros") == "sincos":
            _sincos_(model.embeddings.position_embeddings)
        return cls(model, processor)

    @classmethod
    def from_pretrained(cls, name_or_dir: str, **kwargs: Any) -> ViltBackbone:
        model = ViltModel.from_pretrained(name_or_dir, **kwargs)
        backbone = cls(model, cls._load_processor(name_or_dir, model.config))
        backbone.load_video(name_or_dir)
        return backbone

    @classmethod
    def from_dir_without_weights(cls, path: str | Path, **kwargs: Any) -> ViltBackbone:
        config = ViltConfig.from_pretrained(str(path))
        backbone = cls(ViltModel(config), cls._load_processor(str(path), config))
        backbone.load_video(path, weights=False)
        return backbone

    @staticmethod
    def _load_processor(name_or_dir: str, config: ViltConfig) -> VLProcessor:
        tokenizer = AutoTokenizer.from_pretrained(name_or_dir)
        image_processor = AutoImageProcessor.from_pretrained(name_or_dir)
        return VLProcessor(tokenizer, image_processor, config.max_position_embeddings)

    def save_pretrained(self, path: str | Path) -> None:
        self.model.save_pretrained(str(path))
        self.processor.save_pretrained(path)
        self.save_video(path)


@torch.no_grad()
def _sincos_(pos: torch.Tensor) -> None:
    """2D sin-cos initial patch positions (as MAE): a model trained from scratch knows where a patch
    is from the first step (ViLT shuffles the patch order, so nothing else tells it)."""
    dim, grid = pos.shape[-1], math.isqrt(pos.shape[1] - 1)
    ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))
    parts = [(c.reshape(-1, 1).double() * omega).sin() for c in (ys, xs)]
    parts += [(c.reshape(-1, 1).double() * omega).cos() for c in (ys, xs)]
    pos[0, 0].zero_()
    pos[0, 1:] = torch.cat([parts[0], parts[2], parts[1], parts[3]], dim=1).to(pos)
