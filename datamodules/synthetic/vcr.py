"""Write the synthetic world as VCR 1.0: <split>.jsonl + vcr1images/lsmdc_<movie>/<clip>@0.{jpg,json}.

The scene's shapes are the detected objects (named by shape, listed left to right, with boxes and
polygons in the metadata JSON). Q: "What color is [circle1]?"; the 4 answers name 4 colours (other
objects' colours first). The 4 rationales all repeat the right colour and add a claim about a second
object ("[circle1] is red and [square1] is blue."), true in one of them only, so QA->R needs the
image, not just the answer text. Only objects whose shape is unique in the scene are named, so a tag
means one object without its box. (Corners, "in the top left corner", were tried first: a tiny ViLT
from scratch stays at chance on them within the demo's budget, while it binds colours to shapes.)
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from .visual7w import wrong_colors
from .world import Obj, Scene, image_rng, render, sample_scene
from .writers import WorldSpec, synthetic_writer

DEFAULT_SPLITS = {"train": 1000, "val": 250}
PHRASES = (("What", "color", "is", None, "?"), ("What", "is", "the", "color", "of", None, "?"))
LABEL_FIELDS = (
    "answer_label",
    "rationale_label",
    "answer_orig",
    "rationale_orig",
    "answer_sources",
    "rationale_sources",
)


def polygon(o: Obj) -> list[list[float]]:
    """The object's outline as VCR segms store it (one polygon of [x, y] points)."""
    x0, y0, x1, y1 = o.bbox_xyxy
    if o.shape == "square":
        return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    if o.shape == "triangle":
        return [[x0, y1], [x1, y1], [(x0 + x1) / 2, y0]]
    (cx, cy), r = o.center, (x1 - x0) / 2
    return [
        [round(cx + r * math.cos(a), 2), round(cy + r * math.sin(a), 2)] for a in np.arange(12) * math.pi / 6
    ]


def _named(scene: Scene) -> list[Obj]:
    return [o for o in scene.objects if scene.is_unique(o, ("shape",))]


def _scene(seed: int, image_id: int, size: int) -> Scene:
    """First scene drawn for this image with two objects that a shape name alone designates."""
    for attempt in range(100):
        scene = sample_scene(image_rng(seed, image_id, 10 + attempt), image_id, size, 2, 3)
        if len(_named(scene)) >= 2:
            return scene
    raise RuntimeError(f"no scene with two askable objects in 100 tries for image {image_id}")


def _question(scene: Scene, objs: list[Obj], target: Obj, rng: np.random.Generator) -> dict[str, Any]:
    i = objs.index(target)
    others = [o for o in _named(scene) if o is not target]
    other = others[int(rng.integers(len(others)))]
    j = objs.index(other)
    phrase = PHRASES[int(rng.integers(len(PHRASES)))]
    question = [[i] if t is None else t for t in phrase]
    colors = [target.color, *wrong_colors(scene, target.color, rng)]
    claims = [other.color, *wrong_colors(scene, other.color, rng)]
    a_order, r_order = rng.permutation(4), rng.permutation(4)
    answers = [[[i], "is", colors[k], "."] for k in a_order]
    rationales = [[[i], "is", target.color, "and", [j], "is", claims[k], "."] for k in r_order]
    orig = lambda toks: " ".join(str(t[0] + 1) if isinstance(t, list) else t for t in toks)  # noqa: E731
    a_label, r_label = int(np.argmin(a_order)), int(np.argmin(r_order))
    return {
        "question": question,
        "answer_choices": answers,
        "rationale_choices": rationales,
        "answer_label": a_label,
        "rationale_label": r_label,
        "question_orig": orig(question),
        "answer_orig": orig(answers[a_label]),
        "rationale_orig": orig(rationales[r_label]),
        "answer_sources": [int(k) for k in a_order],
        "rationale_sources": [int(k) for k in r_order],
    }


@synthetic_writer("vcr", DEFAULT_SPLITS)
def write_vcr(world: WorldSpec, questions_per_image: int = 2) -> dict[str, Any]:
    """Write ``splits`` (labelled) and ``test_splits`` (no labels, as test.jsonl) as image counts;
    return a summary with the hidden test labels (also the world's meta)."""
    root, seed, image_size = world.root, world.seed, world.image_size
    labelled, sizes = world.splits, world.all_splits
    images_dir = root / "vcr1images"
    summary: dict[str, Any] = {"seed": seed, "image_size": image_size, "splits": {}, "test_labels": {}}
    index = 0
    for split, n in sizes.items():
        lines = []
        for k in range(n):
            index += 1
            image_id = index
            movie = f"{9000 + image_id // 25:04d}_SHAPE_WORLD"
            stem = f"lsmdc_{movie}/{movie}_{image_id:06d}@0"
            (images_dir / stem).parent.mkdir(parents=True, exist_ok=True)
            scene = _scene(seed, image_id, image_size)
            render(scene).save(images_dir / f"{stem}.jpg", "JPEG", quality=95)
            objs = sorted(scene.objects, key=lambda o: o.center)
            meta = {
                "boxes": [[*o.bbox_xyxy, 1.0] for o in objs],
                "segms": [[polygon(o)] for o in objs],
                "names": [o.shape for o in objs],
                "width": scene.width,
                "height": scene.height,
            }
            (images_dir / f"{stem}.json").write_text(json.dumps(meta), encoding="utf-8")
            rng = image_rng(seed, image_id, 1)
            askable = [o for o in objs if o in _named(scene)]
            targets = [askable[int(j)] for j in rng.permutation(len(askable))[:questions_per_image]]
            for number, target in enumerate(targets):
                qa = _question(scene, objs, target, rng)
                annot_id = f"{split}-{len(lines)}"
                line = {
                    "movie": movie,
                    "objects": [o.shape for o in objs],
                    "interesting_scores": [],
                    "answer_likelihood": "likely",
                    "img_fn": f"{stem}.jpg",
                    "metadata_fn": f"{stem}.json",
                    **qa,
                    "img_id": f"{split}-{k}",
                    "question_number": number,
                    "annot_id": annot_id,
                }
                if split not in labelled:
                    summary["test_labels"][annot_id] = [line["answer_label"], line["rationale_label"]]
                    line = {key: v for key, v in line.items() if key not in LABEL_FIELDS}
                lines.append(line)
        text = "".join(json.dumps(line) + "\n" for line in lines)
        (root / f"{split}.jsonl").write_text(text, encoding="utf-8")
        summary["splits"][split] = {"images": n, "questions": len(lines), "labelled": split in labelled}
    chance = {"chance Q->A": 0.25, "chance QA->R": 0.25, "chance Q->AR": 0.0625}  # 4 answers, 4 rationales
    summary["baselines"] = {split: dict(chance) for split in labelled}
    return summary
