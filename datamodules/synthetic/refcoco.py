"""Write the synthetic world in the refer toolkit's RefCOCO layout (refs pickle + instances.json).

    <root>/refcoco/refs(unc).p            every split in one pickled list of refs
    <root>/refcoco/instances.json         COCO images / annotations (all objects) / categories
    <root>/images/mscoco/images/train2014/COCO_train2014_<image_id:012d>.jpg

Each ref is one object of a scene with 2-4 shapes, and its sentences single it out: by colour and
shape ("the red circle"), one attribute ("the blue object", "the square"), size ("the big
triangle") or position among look-alikes ("the circle on the left", "the leftmost object").
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vltasks.metrics.functional.grounding import grounding_accuracy

from .world import SHAPES, Obj, Scene, above, below, image_rng, left_of, render, right_of, sample_scene
from .writers import WorldSpec, synthetic_writer

DATASET, SPLIT_BY, IMAGE_DIR = "refcoco", "unc", "images/mscoco/images/train2014"
DEFAULT_SPLITS = {"train": 2000, "val": 300}
# 2: images under refer's images/mscoco/images/train2014 (1: images/train2014); a world written with
# another layout is written again by ensure_world
LAYOUT = 2
SIZE_WORDS = {"small": "small", "large": "big"}
CATEGORIES = [{"supercategory": "shape", "id": i + 1, "name": s} for i, s in enumerate(SHAPES)]
INFO = {"description": "Synthetic coloured shapes in the RefCOCO (refer toolkit) layout (vltasks)."}
SIDES: tuple[tuple[str, str, Callable[[Obj, Obj, float], bool]], ...] = (
    ("on the left", "leftmost", left_of),
    ("on the right", "rightmost", right_of),
    ("at the top", "topmost", above),
    ("at the bottom", "bottommost", below),
)


def image_path(root: Path | str, image_id: int) -> Path:
    return Path(root) / IMAGE_DIR / f"COCO_train2014_{image_id:012d}.jpg"


def _noun(obj: Obj, keys: tuple[str, ...]) -> str:
    """'red circle', 'big circle', 'red object', 'object' for the attributes in `keys`."""
    words = [SIZE_WORDS[obj.size_name]] if "size_name" in keys else []
    words += [obj.color] if "color" in keys else []
    return " ".join([*words, obj.shape if "shape" in keys else "object"])


def referring_expressions(scene: Scene, obj: Obj, margin: float = 4.0) -> list[str]:
    """Every template sentence that singles `obj` out in `scene` (empty when none does)."""
    out = []
    for keys in (("color", "shape"), ("color",), ("shape",), ("size_name", "shape")):
        if scene.is_unique(obj, keys):
            out.append(f"the {_noun(obj, keys)}")
    for keys in ((), ("color",), ("shape",), ("color", "shape")):
        group = [
            o for o in scene.objects if o is not obj and all(getattr(o, k) == getattr(obj, k) for k in keys)
        ]
        if not group:
            continue  # unique already: no need to point
        for phrase, superlative, relation in SIDES:
            if all(relation(obj, o, margin) for o in group):
                noun = _noun(obj, keys)
                out.append(f"the {noun} {phrase}" if len(group) == 1 else f"the {superlative} {noun}")
    return out


def _scene_refs(scene: Scene, rng: np.random.Generator, refs_per_image: int, sentences: int) -> list[tuple]:
    """(object index, sentences) for up to `refs_per_image` objects that some sentence singles out."""
    candidates = [(i, referring_expressions(scene, o)) for i, o in enumerate(scene.objects)]
    candidates = [c for c in candidates if c[1]]
    picked = rng.permutation(len(candidates))[:refs_per_image]
    out = []
    for k in sorted(picked.tolist()):
        i, phrases = candidates[k]
        chosen = rng.permutation(len(phrases))[: int(rng.integers(1, sentences + 1))]
        out.append((i, [phrases[j] for j in sorted(chosen.tolist())]))
    return out


def _chance(rows: list[tuple[Scene, int]], size: tuple[float, float]) -> dict[str, float]:
    """Acc@0.5 of a centred box of the mean training size, and of picking a random object."""
    gt = torch.tensor([scene.objects[i].bbox_xyxy for scene, i in rows], dtype=torch.float64)
    centre = torch.tensor(
        [[s.width / 2, s.height / 2, size[0], size[1]] for s, _ in rows], dtype=torch.float64
    )
    random_object = float(np.mean([1.0 / len(scene.objects) for scene, _ in rows])) if rows else 0.0
    return {
        "centre_box": float(grounding_accuracy(centre, gt, box_format="cxcywh")) if rows else 0.0,
        "random_object": random_object,  # objects never overlap, so only the referent scores
    }


def _image_records(scene: Scene) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """instances.json entries of a scene: its image, and an annotation for every object (COCO)."""
    image_id = scene.image_id
    name = f"COCO_train2014_{image_id:012d}.jpg"
    image = {"license": 1, "file_name": name, "height": scene.height, "width": scene.width, "id": image_id}
    anns = []
    for k, o in enumerate(scene.objects):
        x, y, w, h = o.bbox_xywh
        anns.append(
            {
                "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]],
                "area": w * h,
                "iscrowd": 0,
                "image_id": image_id,
                "bbox": [x, y, w, h],
                "category_id": SHAPES.index(o.shape) + 1,
                "id": image_id * 10 + k,
            }
        )
    return image, anns


def _ref_record(ann: dict[str, Any], ref_id: int, split: str, first_sent: int, phrases: list[str]) -> dict:
    """One ref as refer publishes it (its file_name carries the ann_id and names no real file)."""
    image_id, sent_ids = ann["image_id"], list(range(first_sent, first_sent + len(phrases)))
    return {
        "sent_ids": sent_ids,
        "file_name": f"COCO_train2014_{image_id:012d}_{ann['id']}.jpg",
        "ann_id": ann["id"],
        "ref_id": ref_id,
        "image_id": image_id,
        "split": split,
        "sentences": [
            {"tokens": p.split(), "raw": p[:1].upper() + p[1:], "sent_id": s, "sent": p}
            for s, p in zip(sent_ids, phrases)
        ],
        "category_id": ann["category_id"],
    }


@synthetic_writer("refcoco", DEFAULT_SPLITS, layout=LAYOUT)
def write_refcoco(
    world: WorldSpec,
    min_objects: int = 2,
    max_objects: int = 4,
    refs_per_image: int = 2,
    sentences_per_ref: int = 2,
    jpeg_quality: int = 95,
) -> dict[str, Any]:
    """Write a synthetic RefCOCO (unc) under `root`; return a summary (also the world's meta).

    `splits` and `test_splits` both map split names (train, val, testA, testB, ...) to image counts:
    RefCOCO test splits have boxes, so both are written alike. The summary holds per-split image,
    ref and sentence counts and the chance baselines (Acc@0.5 of a centred box, of a random object).
    """
    root, seed, image_size, all_splits = world.root, world.seed, world.image_size, world.all_splits
    (root / DATASET).mkdir(parents=True, exist_ok=True)
    (root / IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([int(seed), 0x2EF])
    ids = [int(i) + 1 for i in rng.choice(580_000, size=sum(all_splits.values()), replace=False)]
    images, anns, refs = [], [], []
    rows: dict[str, list[tuple[Scene, int]]] = {}
    summary: dict[str, Any] = {"seed": seed, "image_size": image_size, "layout": LAYOUT, "splits": {}}
    start = next_sent = 0
    for split, n in all_splits.items():
        rows[split] = []
        n_refs = 0
        for image_id in sorted(ids[start : start + n]):
            scene = sample_scene(image_rng(seed, image_id, 0), image_id, image_size, min_objects, max_objects)
            render(scene).save(image_path(root, image_id), "JPEG", quality=jpeg_quality)
            image, objects = _image_records(scene)
            images.append(image)
            anns += objects
            picked = _scene_refs(scene, image_rng(seed, image_id, 3), refs_per_image, sentences_per_ref)
            for i, phrases in picked:
                refs.append(_ref_record(objects[i], len(refs), split, next_sent, phrases))
                rows[split] += [(scene, i)] * len(phrases)
                n_refs += 1
                next_sent += len(phrases)
        summary["splits"][split] = {"images": n, "refs": n_refs, "sentences": len(rows[split])}
        start += n
    with (root / DATASET / f"refs({SPLIT_BY}).p").open("wb") as f:
        pickle.dump(refs, f, protocol=2)  # the published files are Python 2 pickles
    licenses = [{"id": 1, "name": "synthetic"}]
    instances = {
        "info": INFO,
        "images": images,
        "licenses": licenses,
        "annotations": anns,
        "categories": CATEGORIES,
    }
    (root / DATASET / "instances.json").write_text(json.dumps(instances, separators=(",", ":")))
    first = next(iter(all_splits))
    train_boxes = [scene.objects[i].bbox_xywh for scene, i in rows[first]] or [(image_size / 4,) * 4]
    mean_size = (float(np.mean([b[2] for b in train_boxes])), float(np.mean([b[3] for b in train_boxes])))
    summary["chance"] = {split: _chance(r, mean_size) for split, r in rows.items()}
    summary["baselines"] = {
        split: {
            "Acc@0.5, a random scene object": c["random_object"],
            "Acc@0.5, a centred box of the mean size": c["centre_box"],
        }
        for split, c in summary["chance"].items()
    }
    return summary
