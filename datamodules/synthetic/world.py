"""A small deterministic world of coloured shapes, shared by every synthetic dataset writer.

Scenes are drawn from an explicit ``numpy.random.Generator`` (never global state), so the same seed
always gives the same scenes, the same images and the same files.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 225),
    "yellow": (235, 200, 25),
    "purple": (150, 50, 185),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
SIZES: dict[str, tuple[int, int]] = {"small": (14, 18), "large": (20, 24)}  # side in px (inclusive)
BACKGROUND: tuple[int, int, int] = (236, 236, 230)
NOISE: int = 6  # +- per-channel pixel noise


@dataclass(frozen=True)
class Obj:
    """One object: a coloured shape inside an axis-aligned box (pixels, x1/y1 exclusive)."""

    shape: str
    color: str
    size_name: str
    bbox_xyxy: tuple[float, float, float, float]
    center: tuple[float, float]

    @property
    def bbox_xywh(self) -> tuple[float, float, float, float]:
        """COCO-style box ``[x, y, w, h]``."""
        x0, y0, x1, y1 = self.bbox_xyxy
        return (x0, y0, x1 - x0, y1 - y0)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["bbox_xyxy"] = list(self.bbox_xyxy)
        d["center"] = list(self.center)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Obj:
        return cls(d["shape"], d["color"], d["size_name"], tuple(d["bbox_xyxy"]), tuple(d["center"]))


@dataclass
class Scene:
    """An image's content: size and objects (no pixels; see ``render``)."""

    image_id: int
    width: int
    height: int
    objects: list[Obj] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_id": self.image_id,
            "width": self.width,
            "height": self.height,
            "objects": [o.to_dict() for o in self.objects],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scene:
        objs = [Obj.from_dict(o) for o in d["objects"]]
        return cls(int(d["image_id"]), int(d["width"]), int(d["height"]), objs)

    def count(self, color: str | None = None, shape: str | None = None) -> int:
        """Number of objects matching the given colour and/or shape (None matches all)."""
        return sum(1 for o in self.objects if (color in (None, o.color)) and (shape in (None, o.shape)))

    def is_unique(self, obj: Obj, keys: tuple[str, ...] = ("color", "shape")) -> bool:
        """True when no other object shares ``obj``'s values for ``keys``."""
        sig = tuple(getattr(obj, k) for k in keys)
        return sum(1 for o in self.objects if tuple(getattr(o, k) for k in keys) == sig) == 1


def image_rng(seed: int, image_id: int, stream: int = 0) -> np.random.Generator:
    """A generator private to one (seed, image, purpose): results do not depend on iteration order."""
    return np.random.default_rng([int(seed), int(image_id), int(stream)])


def describe(obj: Obj, with_size: bool = False) -> str:
    """Short referring phrase, e.g. ``"red circle"`` or ``"small red circle"``."""
    words = ([obj.size_name] if with_size else []) + [obj.color, obj.shape]
    return " ".join(words)


def left_of(a: Obj, b: Obj, margin: float = 0.0) -> bool:
    """Centre of ``a`` is more than ``margin`` px left of ``b``'s."""
    return a.center[0] + margin < b.center[0]


def right_of(a: Obj, b: Obj, margin: float = 0.0) -> bool:
    return left_of(b, a, margin)


def above(a: Obj, b: Obj, margin: float = 0.0) -> bool:
    """Centre of ``a`` is more than ``margin`` px above ``b``'s (smaller y)."""
    return a.center[1] + margin < b.center[1]


def below(a: Obj, b: Obj, margin: float = 0.0) -> bool:
    return above(b, a, margin)


RELATIONS = {"left of": left_of, "right of": right_of, "above": above, "below": below}


def _overlaps(box: tuple[float, ...], other: tuple[float, ...], gap: float) -> bool:
    return not (
        box[2] + gap <= other[0]
        or other[2] + gap <= box[0]
        or box[3] + gap <= other[1]
        or other[3] + gap <= box[1]
    )


def sample_object(rng: np.random.Generator, image_size: int) -> Obj:
    """One random object somewhere inside the image (may overlap others)."""
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    color = list(COLORS)[int(rng.integers(len(COLORS)))]
    size_name = list(SIZES)[int(rng.integers(len(SIZES)))]
    lo, hi = SIZES[size_name]
    side = int(rng.integers(lo, hi + 1))
    x0 = int(rng.integers(1, image_size - side))
    y0 = int(rng.integers(1, image_size - side))
    box = (float(x0), float(y0), float(x0 + side), float(y0 + side))
    return Obj(shape, color, size_name, box, (x0 + side / 2.0, y0 + side / 2.0))


def sample_scene(
    rng: np.random.Generator,
    image_id: int,
    image_size: int = 64,
    min_objects: int = 1,
    max_objects: int = 3,
    gap: float = 2.0,
    max_tries: int = 200,
) -> Scene:
    """A scene of ``min_objects..max_objects`` non-overlapping objects (rejection sampling)."""
    if not 1 <= min_objects <= max_objects:
        raise ValueError(f"need 1 <= min_objects <= max_objects, got {min_objects}, {max_objects}")
    n = int(rng.integers(min_objects, max_objects + 1))
    objs: list[Obj] = []
    for _ in range(n * max_tries):
        if len(objs) == n:
            break
        cand = sample_object(rng, image_size)
        if all(not _overlaps(cand.bbox_xyxy, o.bbox_xyxy, gap) for o in objs):
            objs.append(cand)
    if len(objs) < min_objects:
        raise RuntimeError(f"could not place {min_objects} objects in a {image_size}px image")
    return Scene(int(image_id), image_size, image_size, objs)


def render(scene: Scene, noise_seed: int | None = None) -> Image.Image:
    """Draw the scene as an RGB image: light background, solid shapes, slight pixel noise."""
    img = Image.new("RGB", (scene.width, scene.height), BACKGROUND)
    draw = ImageDraw.Draw(img)
    for o in scene.objects:
        x0, y0, x1, y1 = o.bbox_xyxy
        box = (x0, y0, x1 - 1, y1 - 1)
        fill = COLORS[o.color]
        if o.shape == "circle":
            draw.ellipse(box, fill=fill)
        elif o.shape == "square":
            draw.rectangle(box, fill=fill)
        elif o.shape == "triangle":
            draw.polygon([(x0, y1 - 1), (x1 - 1, y1 - 1), ((x0 + x1 - 1) / 2.0, y0)], fill=fill)
        else:
            raise ValueError(f"unknown shape {o.shape!r} in scene {scene.image_id}")
    seed = scene.image_id if noise_seed is None else noise_seed
    rng = np.random.default_rng([int(seed), 7919])
    arr = np.asarray(img, dtype=np.int16)
    arr = arr + rng.integers(-NOISE, NOISE + 1, size=arr.shape, dtype=np.int16)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
