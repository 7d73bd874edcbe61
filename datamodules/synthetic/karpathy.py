"""Write the synthetic world as Karpathy's caption splits (``dataset_coco.json`` + COCO-named JPEGs).

Each image holds 2-3 shapes and gets 5 captions in varied phrasings that all name every object
("A red circle to the left of a blue square."), so a caption identifies its scene. Images of the
evaluation splits are drawn with distinct left-to-right (colour, shape) sequences where possible, so
retrieval has one right answer and is learnable; chance R@1 is 1 / images both ways.

Layout (``dataset="coco"``, Karpathy's ``caption_datasets.zip`` next to the COCO folders):

    <root>/dataset_coco.json
    <root>/train2014/COCO_train2014_<cocoid:012d>.jpg     (split "train")
    <root>/val2014/COCO_val2014_<cocoid:012d>.jpg         (splits "val", "test", "restval")

``dataset="flickr30k"``: ``<root>/dataset_flickr30k.json`` and ``<root>/flickr30k-images/<id>.jpg``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from .world import RELATIONS, Obj, Scene, describe, image_rng, render, sample_scene
from .writers import WorldSpec, synthetic_writer

KARPATHY_SPLITS = ("train", "restval", "val", "test")
DEFAULT_SPLITS = {"train": 1000, "val": 100}
CAPTIONS_PER_IMAGE = 5
MARGIN = 8.0  # px between centres before a relation is stated
NUMBERS = {2: "two", 3: "three"}
LIST_PREFIXES = ("", "there is ", "an image of ", "a picture with ", "a drawing of ")


def annotation_path(root: Path | str, dataset: str = "coco") -> Path:
    return Path(root) / f"dataset_{dataset}.json"


def _phrase(o: Obj, rng: np.random.Generator) -> str:
    return "a " + describe(o, with_size=bool(rng.random() < 0.25))


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _relation_caption(objs: list[Obj], rng: np.random.Generator, axis: int) -> str | None:
    """'a A to the left of a B (and a C)' / 'a A above a B ...' for a pair separated by MARGIN."""
    names = ("left of", "right of") if axis == 0 else ("above", "below")
    facts = [(a, r, b) for a in objs for b in objs if a is not b for r in names if RELATIONS[r](a, b, MARGIN)]
    if not facts:
        return None
    a, rel, b = facts[int(rng.integers(len(facts)))]
    words = f"to the {rel}" if axis == 0 else rel
    rest = [_phrase(o, rng) for o in objs if o is not a and o is not b]
    tail = f" and {rest[0]}" if rest else ""
    return f"{_phrase(a, rng)} {words} {_phrase(b, rng)}{tail}"


def _order_caption(objs: list[Obj], rng: np.random.Generator) -> str | None:
    """'from left to right: a A, a B and a C' when every neighbour pair is clearly apart."""
    xs = sorted(objs, key=lambda o: o.center[0])
    if any(not RELATIONS["left of"](p, q, MARGIN) for p, q in zip(xs, xs[1:])):
        return None
    return "from left to right: " + _join([_phrase(o, rng) for o in xs])


def _list_caption(objs: list[Obj], rng: np.random.Generator, counted: bool) -> str:
    order = [objs[int(i)] for i in rng.permutation(len(objs))]
    body = _join([_phrase(o, rng) for o in order])
    if counted:
        return f"{NUMBERS.get(len(objs), str(len(objs)))} shapes: {body}"
    return LIST_PREFIXES[int(rng.integers(len(LIST_PREFIXES)))] + body


def captions_for(scene: Scene, rng: np.random.Generator, n: int = CAPTIONS_PER_IMAGE) -> list[str]:
    """``n`` distinct lower-case captions naming every object; relations only where they clearly hold."""
    objs = scene.objects
    makers = [
        lambda: _relation_caption(objs, rng, 0),
        lambda: _relation_caption(objs, rng, 1),
        lambda: _order_caption(objs, rng),
        lambda: _list_caption(objs, rng, counted=True),
        lambda: _list_caption(objs, rng, counted=False),
    ]
    out: list[str] = []
    for _ in range(20):
        for i in rng.permutation(len(makers)):
            cap = makers[int(i)]()
            if cap and cap not in out:
                out.append(cap)
            if len(out) == n:
                return out
    while len(out) < n:  # tiny scenes can run out of distinct phrasings: repeat (COCO has repeats too)
        out.append(out[len(out) % max(1, len(out))])
    return out


def raw_and_tokens(caption: str, rng: np.random.Generator) -> tuple[str, list[str]]:
    """COCO-like raw text (capitalised, often a final period) and Karpathy's lower-case tokens."""
    raw = caption[0].upper() + caption[1:]
    raw += "." if rng.random() < 0.7 else ""
    tokens = [t for t in caption.replace(",", " ").replace(":", " ").split() if t]
    return raw, tokens


def _signature(scene: Scene) -> tuple[tuple[str, str], ...]:
    return tuple((o.color, o.shape) for o in sorted(scene.objects, key=lambda o: o.center[0]))


def _scene(seed: int, key: int, image_size: int, seen: set | None, tries: int = 30) -> Scene:
    """A 2-3 object scene; in evaluation splits (``seen`` given) one whose signature is new."""
    for attempt in range(tries):
        scene = sample_scene(image_rng(seed, key, 10 + attempt), key, image_size, 2, 3)
        if seen is None or _signature(scene) not in seen:
            break
    if seen is not None:
        seen.add(_signature(scene))
    return scene


def _image_record(
    dataset: str, split: str, imgid: int, cocoid: int, sentids: list[int], sentences: list[dict[str, Any]]
) -> dict[str, Any]:
    if dataset == "coco":
        folder = "train2014" if split == "train" else "val2014"
        return {
            "filepath": folder,
            "sentids": sentids,
            "filename": f"COCO_{folder}_{cocoid:012d}.jpg",
            "imgid": imgid,
            "split": split,
            "sentences": sentences,
            "cocoid": cocoid,
        }
    return {
        "sentids": sentids,
        "imgid": imgid,
        "sentences": sentences,
        "split": split,
        "filename": f"{cocoid}.jpg",
    }


def image_file(root: Path | str, record: dict[str, Any], dataset: str = "coco") -> Path:
    """Where the writer puts (and the reader finds by default) a record's image."""
    if dataset == "coco":
        return Path(root) / record["filepath"] / record["filename"]
    return Path(root) / "flickr30k-images" / record["filename"]


def _baselines(images: list[dict[str, Any]], splits: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per split: R@1 of a random ranking, and the COCO caption scores of always giving the most
    frequent training caption (the captioning demo's trivial baseline)."""
    from vltasks.metrics.functional.caption import coco_caption_scores

    train = Counter(s["raw"] for im in images if im["split"] in ("train", "restval") for s in im["sentences"])
    out: dict[str, dict[str, float]] = {}
    for split, info in splits.items():
        out[split] = {"R@1, a random ranking (either way)": info["chance_r1"]}
        refs = [[s["raw"] for s in im["sentences"]] for im in images if im["split"] == split]
        if train and refs:
            top = train.most_common(1)[0][0]
            scores = coco_caption_scores([top] * len(refs), refs, metrics=("Bleu", "CIDEr"))
            out[split]["CIDEr, the most frequent train caption"] = scores["CIDEr"]
            out[split]["BLEU-4, the most frequent train caption"] = scores["Bleu_4"]
    return out


@synthetic_writer("karpathy", DEFAULT_SPLITS)
def write_karpathy(world: WorldSpec, dataset: str = "coco", jpeg_quality: int = 95) -> dict[str, Any]:
    """Write ``dataset_<dataset>.json`` and its images under ``root``; return a summary.

    ``splits`` and ``test_splits`` map Karpathy split names (train, restval, val, test; all captioned)
    to image counts. The summary (also the world's meta) gives per-split image and caption counts and
    chance R@1 (1 / images for t2i; about the same for i2t with 5 captions per image).
    """
    if dataset not in ("coco", "flickr30k"):
        raise ValueError(f"synthetic karpathy dataset must be 'coco' or 'flickr30k', got {dataset!r}")
    root, seed, image_size, sizes = world.root, world.seed, world.image_size, dict(world.splits)
    for name, n in world.test_splits.items():
        sizes[name] = max(sizes.get(name, 0), n)
    bad = sorted(set(sizes) - set(KARPATHY_SPLITS))
    if bad:
        raise ValueError(f"Karpathy splits are {KARPATHY_SPLITS}; cannot write {bad}")
    total = sum(sizes.values())
    rng = np.random.default_rng([int(seed), 0xCA97])
    cocoids = [int(i) + 1 for i in rng.choice(580_000, size=total, replace=False)]
    sentid_pool = np.sort(rng.choice(900_000, size=total * CAPTIONS_PER_IMAGE, replace=False)) + 1
    images: list[dict[str, Any]] = []
    summary: dict[str, Any] = {"seed": seed, "image_size": image_size, "dataset": dataset, "splits": {}}
    imgid = 0
    for split, n in sizes.items():
        seen: set | None = None if split in ("train", "restval") else set()
        signatures = set()
        for _ in range(n):
            cocoid = cocoids[imgid]
            scene = _scene(seed, cocoid, image_size, seen)
            signatures.add(_signature(scene))
            cap_rng = image_rng(seed, cocoid, 1)
            sentids = [
                int(s) for s in sentid_pool[imgid * CAPTIONS_PER_IMAGE : (imgid + 1) * CAPTIONS_PER_IMAGE]
            ]
            sentences = []
            for sid, cap in zip(sentids, captions_for(scene, cap_rng)):
                raw, tokens = raw_and_tokens(cap, cap_rng)
                sentences.append({"tokens": tokens, "raw": raw, "imgid": imgid, "sentid": sid})
            record = _image_record(dataset, split, imgid, cocoid, sentids, sentences)
            path = image_file(root, record, dataset)
            path.parent.mkdir(parents=True, exist_ok=True)
            render(scene).save(path, "JPEG", quality=jpeg_quality)
            images.append(record)
            imgid += 1
        summary["splits"][split] = {
            "images": n,
            "captions": n * CAPTIONS_PER_IMAGE,
            "distinct_scenes": len(signatures),
            "chance_r1": 1.0 / n if n else 0.0,
        }
    annotation_path(root, dataset).write_text(
        json.dumps({"images": images, "dataset": dataset}, separators=(",", ":")), encoding="utf-8"
    )
    summary["baselines"] = _baselines(images, summary["splits"])
    return summary
