"""Write the synthetic world as Visual Genome region descriptions (v1.2) with DenseCap's split file.

    <root>/region_descriptions.json   [{"id", "regions": [{"region_id", "image_id", "phrase", "x", "y",
                                        "width", "height"}]}]
    <root>/image_data.json            [{"image_id", "url", "width", "height", "coco_id", "flickr_id"}]
    <root>/densecap_splits.json       {split name: [image ids]}, every split written (test ones too)
    <root>/VG_100K/<image_id>.jpg

Each shape of a scene (1-3 of them) is one region whose phrase names its colour and shape, and its
side when its centre is in the left or right third of the image: "a red circle", "blue square on
the right". As annotators write, some phrases start with a capital and some end with a full stop,
which the reader's DenseCap preprocessing removes.

Baselines, per evaluated split, with DenseCap mAP as `vltasks.metrics` computes it: one box covering
the whole image captioned with the most frequent training phrase; and ``random_boxes`` boxes per
image whose sizes are drawn from the training boxes, placed uniformly inside the image, with random
scores and the most frequent phrase. ``det_map`` always; ``map`` too where METEOR (Java and
pycocoevalcap's jar) runs, else the summary's ``meteor`` says what is missing.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchvision.ops import box_convert
from vltasks.datamodules.visual_genome import densecap_words  # the reader's rules, for the baselines

from vltasks.metrics.functional.densecap import densecap_map, inclusive_corners, meteor_problem

from .world import Obj, Scene, image_rng, render, sample_scene
from .writers import WorldSpec, synthetic_writer

DEFAULT_SPLITS = {"train": 2000, "val": 300}
LAYOUT = 1
IMAGE_DIR = "VG_100K"
URL = "https://cs.stanford.edu/people/rak248/VG_100K/{}.jpg"  # where VG's image_data.json points


def region_phrase(obj: Obj, width: int) -> str:
    """The phrase the world's annotators write for an object (before capitals and full stops)."""
    cx = obj.center[0]
    side = "left" if cx < width / 3 else "right" if cx > 2 * width / 3 else None
    return f"{obj.color} {obj.shape} on the {side}" if side else f"a {obj.color} {obj.shape}"


def _as_written(phrase: str, rng: np.random.Generator) -> str:
    """Plain, capitalised, or capitalised with a full stop, as region phrases come in VG."""
    style = int(rng.integers(3))
    return phrase if style == 0 else phrase[:1].upper() + phrase[1:] + ("." if style == 2 else "")


def _regions(scene: Scene, first_id: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    out = []
    for k, obj in enumerate(scene.objects):
        x, y, w, h = (int(v) for v in obj.bbox_xywh)
        phrase = _as_written(region_phrase(obj, scene.width), rng)
        out.append(
            {
                "region_id": first_id + k,
                "width": w,
                "height": h,
                "image_id": scene.image_id,
                "phrase": phrase,
                "y": y,
                "x": x,
            }
        )
    return out


def _inclusive(xywh: list[list[float]]) -> Tensor:
    """VG boxes [x, y, w, h] -> the inclusive pixel corners DenseCap's metric takes."""
    return inclusive_corners(
        box_convert(torch.tensor(xywh, dtype=torch.float64).reshape(-1, 4), "xywh", "xyxy")
    )


def _baselines(
    scenes: list[Scene], truth: list[list[str]], phrase: str, sizes: np.ndarray, n_random: int, seed: int
) -> dict[str, float]:
    """DenseCap {det_map, map} of the two trivial predictors on one split (map only with METEOR)."""
    rng = np.random.default_rng([int(seed), 0xDC])
    gt, whole, random = [], [], []
    for scene, phrases in zip(scenes, truth):
        gt.append({"boxes": _inclusive([list(o.bbox_xywh) for o in scene.objects]), "captions": phrases})
        full = _inclusive([[0, 0, scene.width, scene.height]])
        whole.append({"boxes": full, "scores": torch.ones(1), "captions": [phrase]})
        wh = sizes[rng.integers(len(sizes), size=n_random)]
        xy = rng.random((n_random, 2)) * (np.array([scene.width, scene.height]) - wh)
        random.append(
            {
                "boxes": _inclusive(np.concatenate([xy, wh], axis=1).tolist()),
                "scores": torch.from_numpy(rng.random(n_random)),
                "captions": [phrase] * n_random,
            }
        )
    why = meteor_problem()
    meteor = None if why is None else (lambda preds, refs: [0.0] * len(preds))
    names = {  # both caption every box with the most frequent training phrase
        "whole": "whole-image box + top phrase",
        "random": f"{n_random} random boxes of train sizes + top phrase",
    }
    out: dict[str, float] = {}
    for key, preds in (("whole", whole), ("random", random)):
        scores = densecap_map(preds, gt, meteor=meteor)
        out[f"det_map, {names[key]}"] = float(scores["det_map"])
        if why is None:
            out[f"map, {names[key]}"] = float(scores["map"])
    return out


@synthetic_writer("visual_genome", DEFAULT_SPLITS, layout=LAYOUT)
def write_visual_genome(
    world: WorldSpec,
    min_objects: int = 1,
    max_objects: int = 3,
    random_boxes: int = 10,
    jpeg_quality: int = 95,
) -> dict[str, Any]:
    """Write a synthetic Visual Genome (v1.2 files, DenseCap splits) under `root`; return a summary.

    Every split, test splits included, has regions (DenseCap's test split does). The summary holds
    per-split image and region counts, the most frequent training phrase and the trivial baselines
    (DenseCap det_map, and map where METEOR runs) of every split but the first (training) one.
    """
    root, seed, image_size, all_splits = world.root, world.seed, world.image_size, world.all_splits
    (root / IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([int(seed), 0x7E6])
    ids = [int(i) + 1 for i in rng.choice(2_400_000, size=sum(all_splits.values()), replace=False)]
    entries, image_data, splits = [], [], {}
    scenes: dict[str, list[Scene]] = {}
    truth: dict[str, list[list[str]]] = {}
    summary: dict[str, Any] = {"seed": seed, "image_size": image_size, "layout": LAYOUT, "splits": {}}
    start, next_region = 0, 1
    for split, n in all_splits.items():
        chosen = sorted(ids[start : start + n])
        splits[split], scenes[split], truth[split] = chosen, [], []
        for image_id in chosen:
            scene = sample_scene(image_rng(seed, image_id, 0), image_id, image_size, min_objects, max_objects)
            render(scene).save(root / IMAGE_DIR / f"{image_id}.jpg", "JPEG", quality=jpeg_quality)
            regions = _regions(scene, next_region, image_rng(seed, image_id, 5))
            next_region += len(regions)
            entries.append({"regions": regions, "id": image_id})
            image_data.append(
                {
                    "width": scene.width,
                    "url": URL.format(image_id),
                    "height": scene.height,
                    "image_id": image_id,
                    "coco_id": None,
                    "flickr_id": None,
                }
            )
            scenes[split].append(scene)
            truth[split].append([" ".join(densecap_words(r["phrase"])) for r in regions])
        summary["splits"][split] = {"images": n, "regions": sum(len(t) for t in truth[split])}
        start += n
    (root / "region_descriptions.json").write_text(json.dumps(entries, separators=(",", ":")))
    (root / "image_data.json").write_text(json.dumps(image_data, separators=(",", ":")))
    (root / "densecap_splits.json").write_text(json.dumps(splits, separators=(",", ":")))

    first = next(iter(all_splits))
    counts = Counter(p for phrases in truth[first] for p in phrases)
    phrase = min(counts, key=lambda p: (-counts[p], p)) if counts else "a red circle"
    sizes = np.array([o.bbox_xywh[2:] for s in scenes[first] for o in s.objects] or [(16.0, 16.0)])
    summary["most_frequent_phrase"] = phrase
    why = meteor_problem()
    summary["meteor"] = "official METEOR 1.5 jar" if why is None else f"unavailable, map not computed: {why}"
    summary["baselines"] = {
        split: _baselines(scenes[split], truth[split], phrase, sizes, random_boxes, seed)
        for split in list(all_splits)[1:]
        if scenes[split]
    }
    return summary
