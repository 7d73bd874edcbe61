"""Write the synthetic timeline world (timeline.py) as Charades-STA, QVHighlights and DiDeMo moments.

    charades_sta     charades_sta_{split}.txt ("VID start end##sentence"), Charades_v1_{split}.csv
                     (id, ..., length), features/<VID>.npy (one row per second)
    qvhighlights     highlight_{split}_release.jsonl (qid, query, duration, vid, relevant_windows,
                     relevant_clip_ids, saliency_scores; a test split without the last three),
                     features/<vid>.npz ("features": one row per 2 s clip)
    didemo_moments   {split}_data.json (video, description, times: 4 annotators' 5 s segments,
                     annotation_id, num_segments), average_fc7.h5 keyed by video (one row per 2.5 s)

``sources`` may add the videos themselves (H.264, one frame per step) and frame folders. Each
writer records the trivial baselines of its evaluated splits: a random window, and the most frequent
training window (the answer that ignores the sentence).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

import numpy as np

from .timeline import Timeline, most_frequent_window_r1, random_window_r1, sample_timeline, write_timeline
from .world import image_rng
from .writers import WorldSpec, synthetic_writer

LAYOUT = 2  # 2: features stand in for a pretrained extractor's (timeline.py), no longer pooled pixels

Query = tuple[Timeline, str, str, Any]  # timeline, its name, the query, the event


def _queries(
    world: WorldSpec,
    split: str,
    first: int,
    count: int,
    duration: float,
    step: float,
    grid: float,
    sources: tuple[str, ...],
    video_dir: str,
    suffix: str = "",
) -> Iterator[tuple[Query, np.ndarray]]:
    """Each video of a split, written, with its queries and features."""
    for n in range(first, first + count):
        rng = image_rng(world.seed, n, 21)
        timeline = sample_timeline(rng, n, duration, step, grid, world.image_size)
        name = f"S{n:04d}{suffix}"
        features = write_timeline(world.root, timeline, name, sources, video_dir)["features"]
        for text, event in timeline.queries(rng):
            yield (timeline, name, text, event), features


def _baselines(train: list, evaluated: list, seed: int) -> dict[str, float]:
    """train: (start, end, duration) per query; evaluated: (start, end, duration, windows)."""
    rng = np.random.default_rng([seed, 99])
    return {
        "R1@0.5, a random window": random_window_r1(rng, evaluated),
        "R1@0.5, the most frequent training window (ignores the sentence)": most_frequent_window_r1(
            train, evaluated
        ),
    }


def _write_splits(world: WorldSpec, write_split: Any, sizes: dict[str, int]) -> dict[str, Any]:
    """Call ``write_split(name, first, count) -> [(start, end, duration, windows)]`` per split and
    record counts and baselines (against the training split's windows)."""
    summary: dict[str, Any] = {
        "seed": world.seed,
        "image_size": world.image_size,
        "splits": {},
        "baselines": {},
    }
    queries: dict[str, list] = {}
    first = 0
    for split, count in sizes.items():
        queries[split] = write_split(split, first, count)
        first += count
        summary["splits"][split] = {"videos": count, "queries": len(queries[split])}
    train = [(w[0][0], w[0][1], d) for _, _, d, w in queries.get("train", []) if w]
    for split, rows in queries.items():
        labelled = [r for r in rows if r[3]]
        if split != "train" and train and labelled:
            summary["baselines"][split] = _baselines(train, labelled, world.seed)
    return summary


@synthetic_writer("charades_sta", {"train": 40, "test": 15}, layout=LAYOUT)
def write_charades_sta(
    world: WorldSpec, sources: tuple[str, ...] = ("features",), duration: float = 30.0
) -> dict[str, Any]:
    def split_files(split: str, first: int, count: int) -> list:
        lines, lengths, rows = [], [], []
        for (timeline, name, text, event), features in _queries(
            world, split, first, count, duration, 1.0, 1.0, sources, "Charades_v1_480"
        ):
            start, end = event.windows[0]  # Charades-STA: one moment per sentence
            lines.append(f"{name} {start:.1f} {end:.1f}##{text}.")
            rows.append((start, end, duration, [(start, end)]))
            if not lengths or lengths[-1][0] != name:
                lengths.append((name, timeline.duration))
                _save(world.root / "features" / f"{name}.npy", features)
        (world.root / f"charades_sta_{split}.txt").write_text(
            "".join(f"{x}\n" for x in lines), encoding="utf-8"
        )
        header = [
            "id",
            "subject",
            "scene",
            "quality",
            "relevance",
            "verified",
            "script",
            "objects",
            "descriptions",
            "actions",
            "length",
        ]
        with (world.root / f"Charades_v1_{split}.csv").open("w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(header)
            out.writerows(
                [[vid, "SYN", "Room", 7, 7, "Yes", "", "", "", "", f"{d:.2f}"] for vid, d in lengths]
            )
        return rows

    return _write_splits(world, split_files, world.all_splits)


@synthetic_writer("qvhighlights", {"train": 40, "val": 15}, layout=LAYOUT)
def write_qvhighlights(
    world: WorldSpec, sources: tuple[str, ...] = ("features",), duration: float = 40.0
) -> dict[str, Any]:
    def split_files(split: str, first: int, count: int) -> list:
        records, rows, saved = [], [], set()
        labelled = split in world.splits
        for (_timeline, name, text, event), features in _queries(
            world, split, first, count, duration, 2.0, 2.0, sources, "videos", "_0.0_40.0"
        ):
            if name not in saved:
                saved.add(name)
                _save(world.root / "features" / f"{name}.npz", features)
            record = {"qid": len(records) + first * 10, "query": text, "duration": duration, "vid": name}
            if labelled:
                rng = image_rng(world.seed, record["qid"], 22)
                clip_ids = sorted(
                    {c for s, e in event.windows for c in range(int(s // 2), int(np.ceil(e / 2)))}
                )
                inside = [any(s <= 2 * c and 2 * c + 2 <= e for s, e in event.windows) for c in clip_ids]
                scores = [
                    [int(v) for v in rng.integers(3, 5, 3)]
                    if full
                    else [int(v) for v in rng.integers(1, 3, 3)]
                    for full in inside
                ]
                record.update(
                    relevant_windows=[list(w) for w in event.windows],
                    relevant_clip_ids=clip_ids,
                    saliency_scores=scores,
                )
            records.append(record)
            rows.append((*event.windows[0], duration, list(event.windows) if labelled else []))
        path = world.root / f"highlight_{split}_release.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        return rows

    return _write_splits(world, split_files, world.all_splits)


@synthetic_writer("didemo_moments", {"train": 40, "val": 15}, layout=LAYOUT)
def write_didemo_moments(world: WorldSpec, sources: tuple[str, ...] = ("features",)) -> dict[str, Any]:
    def split_files(split: str, first: int, count: int) -> list:
        records, rows = [], []
        for (_timeline, name, text, event), features in _queries(
            world, split, first, count, 30.0, 2.5, 5.0, sources, "videos", ".mp4"
        ):
            _save(world.root / "average_fc7.h5", features, key=name)
            start, end = event.windows[0]
            s, e = int(start // 5), int(end // 5) - 1  # the segments the window covers, inclusive
            rng = image_rng(world.seed, len(records) + first * 10, 23)
            times = [[s, e]] * 3 + [[max(0, s - int(rng.integers(2))), min(5, e + int(rng.integers(2)))]]
            records.append(
                {
                    "num_segments": 6,
                    "description": text,
                    "dl_link": "",
                    "times": times,
                    "video": name,
                    "annotation_id": first * 10 + len(records),
                }
            )
            rows.append((start, end, 30.0, [(start, end)]))
        (world.root / f"{split}_data.json").write_text(json.dumps(records), encoding="utf-8")
        return rows

    return _write_splits(world, split_files, world.all_splits)


def _save(path: Any, features: np.ndarray, key: str | None = None) -> None:
    """Features as ``.npy``, ``.npz`` under the key ``features`` (Moment-DETR's files), or one row of
    an HDF5 file under ``key`` (LocalizingMoments' average_fc7.h5)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if key is not None:
        import h5py

        with h5py.File(path, "a") as f:
            if key in f:
                del f[key]
            f.create_dataset(key, data=features)
    elif path.suffix == ".npz":
        np.savez(path, features=features)
    else:
        np.save(path, features)
