"""BLIP adapter: ViT image encoder shared by a text encoder (unimodal for ITC, cross-attending to the
image for fusion/ITM) and a causal text decoder (captioning), as in the BLIP paper.

The parts carry transformers' own names (``vision_model``, ``text_encoder``, ``vision_proj``,
``text_proj``, ``itm_head``, ``text_decoder``), so one directory written by ``save_pretrained`` holds
the union of ``BlipForImageTextRetrieval`` and ``BlipForConditionalGeneration``: each of those classes
loads it, and this adapter loads either hub layout (the part the checkpoint lacks starts random).
The decoder starts from ``text_config.bos_token_id`` ([DEC] on the hub; [CLS] for tiny presets,
whose tokenizer has no [DEC]: the decoder has its own embeddings, so the id needs no new token).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from transformers import (
    AutoImageProcessor,
    AutoTokenizer,
    BlipConfig,
    BlipImageProcessor,
    BlipTextConfig,
    BlipVisionConfig,
)
from transformers.models.blip.modeling_blip import BlipPreTrainedModel, BlipVisionModel
from transformers.models.blip.modeling_blip_text import BlipTextLMHeadModel, BlipTextModel

from vltasks.backbones.base import Backbone, Encoded, Features, VLProcessor
from vltasks.batch import visual_input


class BlipVLModel(BlipPreTrainedModel):
    """BlipForImageTextRetrieval + BlipForConditionalGeneration with one vision encoder."""

    main_input_name = "pixel_values"
    _tied_weights_keys = {
        "text_decoder.cls.predictions.decoder.bias": "text_decoder.cls.predictions.bias",
        "text_decoder.cls.predictions.decoder.weight": "text_decoder.bert.embeddings.word_embeddings.weight",
    }

    def __init__(self, config: BlipConfig) -> None:
        super().__init__(config)
        text, vision = config.text_config, config.vision_config
        self.vision_model = BlipVisionModel(vision)
        self.text_encoder = BlipTextModel(text, add_pooling_layer=False)
        self.vision_proj = nn.Linear(vision.hidden_size, config.image_text_hidden_size)
        self.text_proj = nn.Linear(text.hidden_size, config.image_text_hidden_size)
        self.itm_head = nn.Linear(text.hidden_size, 2)
        self.text_decoder = BlipTextLMHeadModel(text)
        self.post_init()


class BlipBackbone(Backbone):
    family = "blip"
    model_types = ("blip",)
    capabilities = frozenset({"dual", "fusion", "decoder"})
    buildable = frozenset({*capabilities, "video"})

    def __init__(self, model: BlipVLModel, processor: VLProcessor) -> None:
        super().__init__(processor)
        self.model = model
        self.hidden_size = model.config.text_config.hidden_size
        self.embed_dim = model.config.image_text_hidden_size
        self.vision_width = model.config.vision_config.hidden_size  # the decoder's cross-attention input
        self.text_width = model.config.text_config.hidden_size

    # -- parts, for heads that call the encoders separately (ITC, ITM re-ranking, decoding) --------
    def vision_tokens(self, pixel_values: Tensor) -> Tensor:
        """Vision tokens [B, P, Dv] ([CLS] first): what the decoder and the fusion attend to. A clip
        (frames [B, T, 3, H, W] or features [B, T, F]): its frames' tokens as one sequence."""
        if pixel_values.ndim != 4:
            return self.flat(self.encode_video(pixel_values))[0]
        return self.model.vision_model(pixel_values=pixel_values).last_hidden_state

    def _frames(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        tokens = self.model.vision_model(pixel_values=frames).last_hidden_state
        return tokens[:, 0], tokens

    def _project_visual(self, vector: Tensor) -> Tensor:
        return self.model.vision_proj(vector)

    def _text_tokens(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Unimodal text tokens [B, T, Dt]: the text encoder without cross-attention."""
        return self.model.text_encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def fuse(self, image_tokens: Tensor, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Fused tokens [B, T, Dt]: the text encoder cross-attending to the image (BLIP's ITM)."""
        return self.model.text_encoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            encoder_hidden_states=image_tokens,
            encoder_attention_mask=_ones(image_tokens),
        ).last_hidden_state

    def encode_image(self, pixel_values: Tensor) -> Encoded:
        """(ITC embedding [B, E]: vision_proj of the image [CLS], vision tokens [B, P, Dv]); a clip:
        the mean of its frames' embeddings and its frames' tokens as one sequence."""
        if pixel_values.ndim != 4:
            embeds, video = self._encode_clip(pixel_values)
            return Encoded(embeds, self.flat(video)[0])
        image = self.vision_tokens(pixel_values)
        return Encoded(self.model.vision_proj(image[:, 0]), image)

    def encode_text(self, input_ids: Tensor, attention_mask: Tensor) -> Encoded:
        """(ITC embedding [B, E]: text_proj of the unimodal [CLS], unimodal text tokens [B, T, Dt])."""
        text = self._text_tokens(input_ids, attention_mask)
        return Encoded(self.model.text_proj(text[:, 0]), text)

    def fuse_pairs(
        self, image_tokens: Tensor, text_tokens: Tensor, input_ids: Tensor, attention_mask: Tensor
    ) -> Tensor:
        """Fused [CLS] [B, Dt] of pairs: BLIP's ITM re-encodes the text cross-attending to the image
        (``text_tokens`` are the unimodal pass's and are not reused)."""
        return self.fuse(image_tokens, input_ids, attention_mask)[:, 0]

    def match_logits(self, pooled: Tensor) -> Tensor:
        """The checkpoint's ITM head on a fused [CLS]: [B, 2] (no match, match)."""
        return self.model.itm_head(pooled)

    def forward(self, batch: dict[str, Any]) -> Features:
        image = self.encode_image(visual_input(batch))
        feats = Features(image_tokens=image.tokens, image_embeds=image.embeds)
        if "input_ids" in batch:
            ids, mask = batch["input_ids"], batch["attention_mask"]
            text = self.encode_text(ids, mask)
            fused = self.fuse(image.tokens, ids, mask)
            feats.text_tokens, feats.text_embeds = text.tokens, text.embeds
            feats.tokens, feats.mask, feats.pooled = fused, mask, fused[:, 0]
        return feats

    # -- decoder -----------------------------------------------------------------------------------
    @property
    def bos_token_id(self) -> int:
        return int(self.model.config.text_config.bos_token_id)

    def decoder_inputs(self, input_ids: Tensor) -> Tensor:
        """Processor ids start with [CLS]; the decoder starts with its bos ([DEC]), as BLIP trains."""
        ids = input_ids.clone()
        ids[:, 0] = self.bos_token_id
        return ids

    def decoder_logits(self, image_tokens: Tensor, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Teacher-forced next-token logits [B, T, V] of the decoder (position t predicts t + 1)."""
        return self.model.text_decoder(
            input_ids=self.decoder_inputs(input_ids),
            attention_mask=attention_mask,
            encoder_hidden_states=image_tokens,
            encoder_attention_mask=_ones(image_tokens),
            use_cache=False,
        ).logits

    @torch.no_grad()
    def generate(
        self, image_tokens: Tensor, prompt_ids: Tensor | None = None, **generate_kwargs: Any
    ) -> Tensor:
        """Token ids [B, T'] (bos and prompt included) from transformers' own generate: greedy, beam
        search or sampling, as `generate_kwargs` say (num_beams, do_sample, top_p, max_new_tokens...)."""
        cfg = self.model.config.text_config
        b = image_tokens.shape[0]
        bos = torch.full((b, 1), self.bos_token_id, dtype=torch.long, device=image_tokens.device)
        ids = bos if prompt_ids is None else torch.cat([bos, prompt_ids.to(bos.device).expand(b, -1)], 1)
        return self.model.text_decoder.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            eos_token_id=cfg.sep_token_id,
            pad_token_id=cfg.pad_token_id,
            encoder_hidden_states=image_tokens,
            encoder_attention_mask=_ones(image_tokens),
            **generate_kwargs,
        )

    # -- building --------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, preset: dict[str, Any], tokenizer: Any) -> BlipBackbone:
        size, width = int(preset.get("image_size", 64)), int(preset.get("hidden_size", 128))
        dropout = float(preset.get("dropout", 0.0))
        common = dict(
            hidden_size=width,
            num_hidden_layers=int(preset.get("num_layers", 4)),
            num_attention_heads=int(preset.get("num_heads", 4)),
            intermediate_size=int(preset.get("intermediate_size", 256)),
        )
        text = BlipTextConfig(
            vocab_size=len(tokenizer),
            max_position_embeddings=int(preset.get("max_text_len", 32)),
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.cls_token_id,  # BLIP's [DEC] role (see the module docstring)
            eos_token_id=tokenizer.sep_token_id,
            sep_token_id=tokenizer.sep_token_id,  # generation stops at [SEP], as on the hub
            hidden_dropout_prob=dropout,
            attention_probs_dropout_prob=dropout,
            **common,
        )
        # BlipVisionConfig's default initializer_range (1e-10) suits loading, not training from scratch
        vision = BlipVisionConfig(
            image_size=size,
            patch_size=int(preset.get("patch_size", 16)),
            initializer_range=0.02,
            attention_dropout=dropout,
            **common,
        )
        config = BlipConfig(
            text_config=text.to_dict(),
            vision_config=vision.to_dict(),
            image_text_hidden_size=int(preset.get("embed_dim", 64)),
            projection_dim=int(preset.get("embed_dim", 64)),
        )
        image_processor = BlipImageProcessor(size={"height": size, "width": size})
        processor = VLProcessor(tokenizer, image_processor, text.max_position_embeddings)
        return cls(BlipVLModel(config), processor)

    @classmethod
    def from_pretrained(cls, name_or_dir: str, **kwargs: Any) -> BlipBackbone:
        """A dir of ours, or a hub BLIP checkpoint (retrieval or captioning layout)."""
        model = BlipVLModel.from_pretrained(name_or_dir, **kwargs)
        backbone = cls(model, _load_processor(name_or_dir, model.config))
        backbone.load_video(name_or_dir)
        return backbone

    @classmethod
    def from_dir_without_weights(cls, path: str | Path, **kwargs: Any) -> BlipBackbone:
        config = BlipConfig.from_pretrained(str(path))
        backbone = cls(BlipVLModel(config), _load_processor(str(path), config))
        backbone.load_video(path, weights=False)
        return backbone

    def save_pretrained(self, path: str | Path) -> None:
        self.model.save_pretrained(str(path))
        self.processor.save_pretrained(path)
        self.save_video(path)


def _ones(tokens: Tensor) -> Tensor:
    return torch.ones(tokens.shape[:2], dtype=torch.long, device=tokens.device)


def _load_processor(name_or_dir: str, config: BlipConfig) -> VLProcessor:
    tokenizer = AutoTokenizer.from_pretrained(name_or_dir)
    image_processor = AutoImageProcessor.from_pretrained(name_or_dir)
    return VLProcessor(tokenizer, image_processor, config.text_config.max_position_embeddings)
