"""Write the synthetic world as Visual7W telling: dataset_v7w_telling.json + images/v7w_<id>.jpg.

Questions start with a W as in Visual7W (what / how / where), answers are short capitalised
sentences with a full stop, and the 3 wrong choices are plausible for the question (other colours,
other counts, a neighbour in colours absent from the image), so only the image tells them apart.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np

from .world import COLORS, Scene, image_rng, render, sample_scene
from .writers import WorldSpec, synthetic_writer

DATASET_FILE = "dataset_v7w_telling.json"
DEFAULT_SPLITS = {"train": 1000, "val": 250}
NUMBERS = ("None.", "One.", "Two.", "Three.", "Four.", "Five.")


def wrong_colors(scene: Scene, right: str, rng: np.random.Generator, n: int = 3) -> list[str]:
    """Colours of other objects first (hard negatives), then random other colours."""
    hard = sorted({o.color for o in scene.objects} - {right})
    rest = [c for c in COLORS if c != right and c not in hard]
    rng.shuffle(hard)
    rng.shuffle(rest)
    return (hard + rest)[:n]


def _what(scene: Scene, rng: np.random.Generator) -> tuple[str, str, list[str]] | None:
    cands = [o for o in scene.objects if scene.is_unique(o, ("shape",))]
    if not cands:
        return None
    o = cands[int(rng.integers(len(cands)))]
    wrong = [f"{c.capitalize()}." for c in wrong_colors(scene, o.color, rng)]
    return f"What color is the {o.shape}?", f"{o.color.capitalize()}.", wrong


def _how(scene: Scene, rng: np.random.Generator) -> tuple[str, str, list[str]]:
    if rng.random() < 0.5:
        color = list(COLORS)[int(rng.integers(len(COLORS)))]
        n, question = scene.count(color=color), f"How many {color} shapes are there?"
    else:
        n, question = len(scene.objects), "How many shapes are there?"
    wrong = [NUMBERS[k] for k in rng.permutation(5) if k != n][:3]
    return question, NUMBERS[n], wrong


def _where(scene: Scene, rng: np.random.Generator) -> tuple[str, str, list[str]] | None:
    """'Where is the circle?' -> 'Next to the blue square.'; the wrong ones recolour the neighbour
    with colours absent from the image first. (Image corners were tried first: the tiny demo
    backbone stays at chance on them within its budget.)"""
    pairs = [
        (o, n)
        for o in scene.objects
        if scene.is_unique(o, ("shape",))
        for n in scene.objects
        if n.color != o.color and scene.is_unique(n)
    ]
    if not pairs:
        return None
    o, n = pairs[int(rng.integers(len(pairs)))]
    false = [c for c in COLORS if scene.count(c, n.shape) == 0]  # no such object in the image
    absent = [c for c in false if scene.count(color=c) == 0]
    present = [c for c in false if c not in absent]
    rng.shuffle(absent)
    rng.shuffle(present)
    wrong = [f"Next to the {c} {n.shape}." for c in (absent + present)[:3]]
    return f"Where is the {o.shape}?", f"Next to the {n.color} {n.shape}.", wrong


ASKERS = {"what": _what, "how": _how, "where": _where}


def questions(scene: Scene, rng: np.random.Generator) -> list[tuple[str, str, str, list[str]]]:
    """(type, question, answer, 3 wrong choices) for each feasible W kind, in a random order."""
    out = []
    for kind in rng.permutation(list(ASKERS)):
        qa = ASKERS[str(kind)](scene, rng)
        if qa is not None:
            out.append((str(kind), *qa))
    return out


def _baselines(images: list[dict[str, Any]], splits: list[str]) -> dict[str, dict[str, float]]:
    """Per split: chance (1 of 4) and choosing the candidate given most often as the right answer
    in train (what a model that ignores image and question can learn)."""
    right = Counter(qa["answer"] for im in images if im["split"] == "train" for qa in im["qa_pairs"])
    out: dict[str, dict[str, float]] = {}
    for split in splits:
        qas = [qa for im in images if im["split"] == split for qa in im["qa_pairs"]]
        hits = [
            max([qa["answer"], *qa["multiple_choices"]], key=lambda a: right[a]) == qa["answer"] for qa in qas
        ]
        out[split] = {"chance": 0.25, "most frequent train answer": float(np.mean(hits)) if hits else 0.0}
    return out


@synthetic_writer("visual7w", DEFAULT_SPLITS)
def write_visual7w(world: WorldSpec, min_objects: int = 1, max_objects: int = 3) -> dict[str, Any]:
    """Write ``splits`` (and ``test_splits``: Visual7W's test split has answers too) as image counts
    into one dataset JSON; return a summary (also the world's meta)."""
    root, seed, image_size, sizes = world.root, world.seed, world.image_size, world.all_splits
    (root / "images").mkdir(parents=True, exist_ok=True)
    ids = np.random.default_rng([int(seed), 0x737]).choice(2_400_000, size=sum(sizes.values()), replace=False)
    images, start, qa_id = [], 0, 0
    summary: dict[str, Any] = {"seed": seed, "image_size": image_size, "splits": {}}
    for split, n in sizes.items():
        kinds: Counter[str] = Counter()
        for image_id in sorted(int(i) + 1 for i in ids[start : start + n]):
            scene = sample_scene(image_rng(seed, image_id, 0), image_id, image_size, min_objects, max_objects)
            filename = f"v7w_{image_id}.jpg"
            render(scene).save(root / "images" / filename, "JPEG", quality=95)
            pairs = []
            for kind, question, answer, wrong in questions(scene, image_rng(seed, image_id, 1)):
                qa_id += 1
                kinds[kind] += 1
                pairs.append(
                    {
                        "qa_id": qa_id,
                        "image_id": image_id,
                        "question": question,
                        "answer": answer,
                        "multiple_choices": wrong,
                        "type": kind,
                    }
                )
            images.append({"image_id": image_id, "filename": filename, "split": split, "qa_pairs": pairs})
        start += n
        summary["splits"][split] = {"images": n, "questions": sum(kinds.values()), "types": dict(kinds)}
    (root / DATASET_FILE).write_text(json.dumps({"images": images}, separators=(",", ":")), encoding="utf-8")
    summary["baselines"] = _baselines(images, list(sizes))
    return summary
