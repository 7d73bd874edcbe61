"""The synthetic world of coloured shapes, written in each dataset's official file format."""

from vltasks.registry import import_submodules  # noqa: E402

from .questions import KINDS, QA, annotate, generate_questions, normalize_answer, vqa_accuracy
from .vqav2 import write_vqav2
from .world import (
    COLORS,
    RELATIONS,
    SHAPES,
    SIZES,
    Obj,
    Scene,
    above,
    below,
    describe,
    image_rng,
    left_of,
    render,
    right_of,
    sample_scene,
)
from .writers import META_FILE, WRITERS, SyntheticWriter, WorldSpec, ensure_world, read_meta  # noqa: E402

import_submodules(__name__, skip=("writers",))  # each format's writer registers itself

__all__ = [
    "META_FILE",
    "WRITERS",
    "SyntheticWriter",
    "WorldSpec",
    "ensure_world",
    "read_meta",
    "COLORS",
    "KINDS",
    "QA",
    "RELATIONS",
    "SHAPES",
    "SIZES",
    "Obj",
    "Scene",
    "above",
    "annotate",
    "below",
    "describe",
    "generate_questions",
    "image_rng",
    "left_of",
    "normalize_answer",
    "render",
    "right_of",
    "sample_scene",
    "vqa_accuracy",
    "write_vqav2",
]
