"""Write the synthetic world in the official VQAv2 layout (questions, annotations, COCO images)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from .questions import QA, annotate, generate_questions, vqa_accuracy
from .world import image_rng, render, sample_scene
from .writers import WorldSpec, synthetic_writer

INFO = {
    "description": "Synthetic coloured-shapes VQA in the VQA v2.0 format (vltasks).",
    "url": "http://visualqa.org",
    "version": "2.0",
    "year": 2017,
    "contributor": "vltasks synthetic world",
    "date_created": "2017-04-26 17:07:13",
}
LICENSE = {
    "url": "http://creativecommons.org/licenses/by/4.0/",
    "name": "Creative Commons Attribution 4.0 International License",
}
DEFAULT_SPLITS = {"train2014": 2000, "val2014": 500}
TEST_DEV = "test-dev2015"
TEST_IMAGES = "test2015"


def questions_path(root: Path | str, split: str) -> Path:
    return Path(root) / f"v2_OpenEnded_mscoco_{split}_questions.json"


def annotations_path(root: Path | str, split: str) -> Path:
    return Path(root) / f"v2_mscoco_{split}_annotations.json"


def image_path(root: Path | str, image_split: str, image_id: int) -> Path:
    return Path(root) / image_split / f"COCO_{image_split}_{image_id:012d}.jpg"


def _dump(obj: Any, path: Path) -> None:
    path.write_text(json.dumps(obj, separators=(",", ":")), encoding="utf-8")


def _draw_image_ids(seed: int, total: int) -> list[int]:
    """Distinct, non-contiguous COCO-like image ids (readers must not assume 0..n-1)."""
    rng = np.random.default_rng([int(seed), 0x5EED])
    return [int(i) + 1 for i in rng.choice(580_000, size=total, replace=False)]


def _make_split(
    root: Path,
    image_split: str,
    image_ids: list[int],
    seed: int,
    image_size: int,
    min_objects: int,
    max_objects: int,
    jpeg_quality: int,
) -> list[tuple[int, int, QA]]:
    """Render the images of one split; return (image_id, question_id, QA) rows."""
    (root / image_split).mkdir(parents=True, exist_ok=True)
    rows = []
    for image_id in image_ids:
        scene = sample_scene(image_rng(seed, image_id, 0), image_id, image_size, min_objects, max_objects)
        render(scene).save(image_path(root, image_split, image_id), "JPEG", quality=jpeg_quality)
        for k, qa in enumerate(generate_questions(scene, image_rng(seed, image_id, 1))):
            rows.append((image_id, image_id * 1000 + k, qa))
    return rows


def _questions_json(split: str, rows: list[tuple[int, int, QA]]) -> dict[str, Any]:
    return {
        "info": INFO,
        "task_type": "Open-Ended",
        "data_type": "mscoco",
        "license": LICENSE,
        "data_subtype": split,
        "questions": [{"image_id": i, "question": qa.question, "question_id": q} for i, q, qa in rows],
    }


def _annotations_json(split: str, rows: list[tuple[int, int, QA]], seed: int) -> dict[str, Any]:
    anns = []
    for image_id, qid, qa in rows:
        given = annotate(qa, image_rng(seed, qid, 2))
        anns.append(
            {
                "question_type": qa.question_type,
                "multiple_choice_answer": qa.answer,  # >= 6 of 10 annotators give it, so it is the mode
                "answers": [
                    {"answer": a, "answer_confidence": c, "answer_id": j + 1}
                    for j, (a, c) in enumerate(given)
                ],
                "image_id": image_id,
                "answer_type": qa.answer_type,
                "question_id": qid,
            }
        )
    return {"info": INFO, "license": LICENSE, "data_subtype": split, "annotations": anns}


def majority_baseline(annotations: list[dict[str, Any]], answer: str) -> float:
    """Mean VQA accuracy of always answering ``answer``."""
    if not annotations:
        return 0.0
    accs = [vqa_accuracy(answer, [a["answer"] for a in ann["answers"]]) for ann in annotations]
    return float(np.mean(accs))


@synthetic_writer("vqav2", DEFAULT_SPLITS)
def write_vqav2(
    world: WorldSpec, min_objects: int = 1, max_objects: int = 3, jpeg_quality: int = 95
) -> dict[str, Any]:
    """Write a synthetic VQAv2 dataset under ``root`` in the official layout; return a summary.

    ``splits`` maps annotated split names (e.g. ``train2014``) to image counts. ``test_splits`` maps
    question-only splits to image counts; ``test-dev2015`` questions are those of the first images of
    ``test2015`` (its images live in ``test2015/``, as in VQAv2). The summary (also the world's meta,
    with string keys) holds per-split counts per question kind, the majority answer of the first
    split and its VQA accuracy per split, ``question_kind`` (question_id -> kind) and ``test_answers``
    (question_id -> true answer for question-only splits).
    """
    root, seed, image_size = world.root, world.seed, world.image_size
    splits, test_splits = world.splits, world.test_splits
    image_splits = {**splits, **{s: n for s, n in test_splits.items() if s != TEST_DEV}}
    if TEST_DEV in test_splits:
        image_splits[TEST_IMAGES] = max(image_splits.get(TEST_IMAGES, 0), test_splits[TEST_DEV])
    ids = _draw_image_ids(seed, sum(image_splits.values()))
    rows_by_split: dict[str, list[tuple[int, int, QA]]] = {}
    start = 0
    for split, n in image_splits.items():
        rows_by_split[split] = _make_split(
            root,
            split,
            sorted(ids[start : start + n]),
            seed,
            image_size,
            min_objects,
            max_objects,
            jpeg_quality,
        )
        start += n
    if TEST_DEV in test_splits:
        dev_images = set(sorted({i for i, _, _ in rows_by_split[TEST_IMAGES]})[: test_splits[TEST_DEV]])
        rows_by_split[TEST_DEV] = [r for r in rows_by_split[TEST_IMAGES] if r[0] in dev_images]

    summary: dict[str, Any] = {"seed": seed, "image_size": image_size, "splits": {}}
    kinds: dict[int, str] = {}
    test_answers: dict[int, str] = {}
    annotations: dict[str, list[dict[str, Any]]] = {}
    for split, rows in rows_by_split.items():
        if split not in splits and split not in test_splits:
            continue  # test2015 images drawn only for test-dev
        _dump(_questions_json(split, rows), questions_path(root, split))
        if split in splits:
            ann = _annotations_json(split, rows, seed)
            _dump(ann, annotations_path(root, split))
            annotations[split] = ann["annotations"]
        else:
            test_answers.update({q: qa.answer for _, q, qa in rows})
        kinds.update({q: qa.kind for _, q, qa in rows})
        summary["splits"][split] = {
            "images": len({i for i, _, _ in rows}),
            "image_dir": TEST_IMAGES if split == TEST_DEV else split,
            "questions": len(rows),
            "annotated": split in splits,
            "kinds": dict(sorted(Counter(qa.kind for _, _, qa in rows).items())),
        }
    if annotations:
        first = next(iter(annotations))
        majority = Counter(a["multiple_choice_answer"] for a in annotations[first]).most_common(1)[0][0]
        summary["majority_answer"] = majority
        summary["majority_baseline"] = {s: majority_baseline(a, majority) for s, a in annotations.items()}
    return {**summary, "question_kind": kinds, "test_answers": test_answers}
