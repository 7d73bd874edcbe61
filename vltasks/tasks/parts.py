"""Which backbone parts a run trains, known by design instead of found by DDP's search.

Each head declares the backbone outputs it reads (`Head.reads`, names from `BACKBONE_OUTPUTS`); each
family names the modules that only some outputs need (`FAMILY_PARTS`: ViLT's pooler serves only the
pooled vector, BLIP's decoder only decoding). A module that no head of the run needs is frozen, so in
every step every trainable parameter receives a gradient and DDP can run without
``find_unused_parameters`` (docs/design-notes.md, 46). A head that declares nothing reads everything:
nothing is frozen for it, and the run keeps DDP's search.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from fnmatch import fnmatchcase

from torch import nn

from vltasks.heads.base import BACKBONE_OUTPUTS, Head

log = logging.getLogger(__name__)

# What the data reads of the backbone besides the heads' outputs: "pixels" (images or video frames
# through the image encoder), absent when every task feeds pre-extracted features
# (``data.options.video_source=features``), which enter through the video adapter's projection.
PIXELS = "pixels"
KNOWN = BACKBONE_OUTPUTS | {PIXELS}

# family -> (parameter name pattern, the outputs that need it): a parameter is frozen when, for one
# of the entries its name matches, no output of the run is among the entry's. A pattern matches a
# parameter name exactly, as a module prefix ("model.pooler" holds "model.pooler.dense.weight"), or
# as an fnmatch glob. Parameters no entry names (the encoder layers) serve every output.
FAMILY_PARTS: dict[str, tuple[tuple[str, frozenset[str]], ...]] = {
    "vilt": (
        ("model.pooler", frozenset({"pooled"})),
        # the visual embedding of pixels; features come in as image_embeds, past all of it
        ("model.embeddings.patch_embeddings", frozenset({PIXELS})),
        ("model.embeddings.cls_token", frozenset({PIXELS})),
        ("model.embeddings.position_embeddings", frozenset({PIXELS})),
    ),
    "clip": (
        # vision [CLS] -> post_layernorm -> visual_projection is the ITC embedding alone; the tokens
        # that fusion reads leave the encoder before post_layernorm
        ("model.vision_model.post_layernorm", frozenset({"image_embeds"})),
        ("model.visual_projection", frozenset({"image_embeds"})),
        ("model.text_projection", frozenset({"text_embeds"})),
        ("fusion", frozenset({"tokens", "pooled", "pair_fusion"})),
        ("model.vision_model", frozenset({PIXELS})),
    ),
    "blip": (
        ("model.vision_proj", frozenset({"image_embeds"})),
        ("model.text_proj", frozenset({"text_embeds"})),
        ("model.itm_head", frozenset({"itm"})),
        ("model.text_decoder", frozenset({"decoder"})),
        ("model.text_encoder", frozenset({"tokens", "pooled", "pair_fusion", "text_tokens", "text_embeds"})),
        # the unimodal text pass (ITC, span heads) skips cross-attention
        ("model.text_encoder.encoder.layer.*.crossattention", frozenset({"tokens", "pooled", "pair_fusion"})),
        ("model.vision_model", frozenset({PIXELS})),
    ),
}


def head_reads(head: Head) -> frozenset[str]:
    """What a head reads of the backbone; everything when it does not say."""
    return BACKBONE_OUTPUTS if head.reads is None else frozenset(head.reads)


def _matches(name: str, pattern: str) -> bool:
    """``name`` is the part ``pattern`` names or lies inside it (a module prefix; globs alike)."""
    return (
        name == pattern
        or name.startswith(pattern + ".")
        or fnmatchcase(name, pattern)
        or fnmatchcase(name, pattern + ".*")
    )


def unused_parts(backbone: nn.Module, family: str, reads: Iterable[str]) -> list[str]:
    """The parts of ``FAMILY_PARTS[family]`` that nothing in ``reads`` needs, present in the backbone:
    module or parameter names (a glob named once per module it matches), outermost only."""
    reads = set(reads)
    unknown = reads - KNOWN
    if unknown:
        raise ValueError(f"unknown backbone outputs {sorted(unknown)}; known: {sorted(KNOWN)}")
    params = [n for n, _ in backbone.named_parameters()]
    modules = [n for n, _ in backbone.named_modules() if n]
    found: set[str] = set()
    for pattern, outputs in FAMILY_PARTS.get(family, ()):
        if outputs & reads or not any(_matches(n, pattern) for n in params):
            continue
        found |= {m for m in modules if fnmatchcase(m, pattern)} if "*" in pattern else {pattern}
    return sorted(n for n in found if not any(n != o and _matches(n, o) for o in found))


def freeze_unused(backbone: nn.Module, family: str, heads: Iterable[Head], pixels: bool = True) -> list[str]:
    """Freeze the parts that neither a head nor the data reads; returns their names (logged once).
    ``pixels``: some task feeds images or frames (not only pre-extracted features)."""
    reads = frozenset().union(*(head_reads(h) for h in heads)) | ({PIXELS} if pixels else set())
    parts = unused_parts(backbone, family, reads)
    frozen = 0
    for name, p in backbone.named_parameters():
        if any(_matches(name, part) for part in parts):
            frozen += p.numel() if p.requires_grad else 0
            p.requires_grad_(False)
    if parts:
        log.info("frozen, nothing of the run reads them: %s (%s parameters)", ", ".join(parts), f"{frozen:,}")
    return parts


def feeds_pixels(config: dict) -> bool:
    """Whether some task of a run (its plain config) gives the backbone images or video frames: every
    reader does, except a video reader set to pre-extracted features (``video_source: features``,
    the reader's default or the task's option)."""
    from vltasks.config import resolve
    from vltasks.datamodules import READERS

    for task in resolve(config).tasks.values():
        reader = READERS.get(task.data.format) if task.data.format in READERS else None
        options = {**(reader.options if reader else {}), **task.data.options}
        if options.get("video_source", "video") != "features":
            return True
    return False


def layer_classes(module: nn.Module) -> set[type[nn.Module]]:
    """The classes of a backbone's repeated blocks (the elements of its ModuleLists): the units FSDP
    shards and activation checkpointing recomputes (ViltLayer, CLIPEncoderLayer, BlipTextLayer...)."""
    return {
        type(block)
        for m in module.modules()
        if isinstance(m, nn.ModuleList)
        for block in m
        if any(p.numel() for p in block.parameters())
    }
