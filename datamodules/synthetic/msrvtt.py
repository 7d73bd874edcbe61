"""Write the synthetic world in motion as MSR-VTT (CLIP4Clip's layout, or the 10K release's).

    <root>/MSRVTT_data.json                 videos (video_id, split train/validate/test, id, ...) and
                                            sentences (caption, video_id, sen_id); ``release="10k"``
                                            writes train_val_videodatainfo.json + test_videodatainfo.json
    <root>/MSRVTT_train.9k.csv              the train videos (1k-A's training list)
    <root>/MSRVTT_JSFUSION_test.csv         key, vid_key, video_id, sentence: a test video's first sentence
    <root>/MSRVTT_Videos/<video_id>.mp4     H.264 (``sources`` may add frames/<id>/ and features/features.h5)

Split names map to the JSON's: train and train.9k -> train, validate and val -> validate, test and
test.1k -> test. Five sentences per video (the release has 20): each names the event, so a caption
or a query needs the clip's motion, not one frame (datamodules/synthetic/motion.py).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from typing import Any

from .motion import (
    Clip,
    captions,
    middle_caption,
    sample_clips,
    single_frame_t2v_r1,
    write_clips,
)
from .world import image_rng
from .writers import WRITERS, WorldSpec, synthetic_writer

DEFAULT_SPLITS = {"train": 60, "validate": 20}
JSON_SPLIT = {"train": "train", "train.9k": "train", "validate": "validate", "val": "validate"}
JSON_SPLIT |= {"test": "test", "test.1k": "test"}
SENTENCES = 5


@synthetic_writer("msrvtt", DEFAULT_SPLITS)
def write_msrvtt(
    world: WorldSpec, release: str = "clip4clip", sources: tuple[str, ...] = ("video",)
) -> dict[str, Any]:
    """Write the splits' clips and MSR-VTT's files; return counts and the trivial baselines."""
    if release not in ("clip4clip", "10k"):
        raise ValueError(f"synthetic msrvtt release must be 'clip4clip' or '10k', got {release!r}")
    bad = sorted(set(world.all_splits) - set(JSON_SPLIT))
    if bad:
        raise ValueError(f"MSR-VTT splits are {sorted(JSON_SPLIT)}; cannot write {bad}")
    videos, sentences, by_split = [], [], {}
    n = 0
    for name, count in world.all_splits.items():
        split = JSON_SPLIT[name]
        ids = list(range(n, n + count))
        n += count
        clips = sample_clips(world.seed, ids, world.image_size, distinct=split != "train")
        by_split[split] = by_split.get(split, []) + clips
        names = [f"video{i}" for i in ids]
        write_clips(world.root, clips, names, "MSRVTT_Videos", sources)
        for clip, vid in zip(clips, names):
            videos.append(_video_record(clip, vid, split))
            for text in captions(clip, image_rng(world.seed, clip.video_id, 12), SENTENCES):
                sentences.append({"caption": text, "video_id": vid, "sen_id": len(sentences)})
    _write_annotations(world, videos, sentences, release)
    first = {}
    for s in sentences:
        first.setdefault(s["video_id"], s["caption"])
    _write_csv(
        world, "MSRVTT_train.9k.csv", ["video_id"], [[v["video_id"]] for v in videos if v["split"] == "train"]
    )
    tests = [v for v in videos if v["split"] == "test"]
    rows = [[f"ret{k}", f"msr{v['id']}", v["video_id"], first[v["video_id"]]] for k, v in enumerate(tests)]
    _write_csv(world, "MSRVTT_JSFUSION_test.csv", ["key", "vid_key", "video_id", "sentence"], rows)
    return {
        "seed": world.seed,
        "image_size": world.image_size,
        "splits": {s: {"videos": len(c), "sentences": len(c) * SENTENCES} for s, c in by_split.items()},
        "baselines": _baselines(world, by_split, sentences, videos),
    }


def _video_record(clip: Clip, video_id: str, split: str) -> dict[str, Any]:
    return {
        "category": ["move", "order", "blink"].index(clip.kind),
        "url": f"https://www.youtube.com/watch?v=synthetic{clip.video_id}",
        "video_id": video_id,
        "start time": 0.0,
        "end time": 2.0,
        "split": split,
        "id": clip.video_id,
    }


def _write_annotations(world: WorldSpec, videos: list[dict], sentences: list[dict], release: str) -> None:
    info = {"description": "Synthetic shapes in motion in the MSR-VTT layout (vltasks)", "year": 2016}
    if release == "clip4clip":
        files = {"MSRVTT_data.json": lambda v: True}
    else:
        files = {
            "train_val_videodatainfo.json": lambda v: v["split"] != "test",
            "test_videodatainfo.json": lambda v: v["split"] == "test",
        }
    for name, keep in files.items():
        kept = [v for v in videos if keep(v)]
        ids = {v["video_id"] for v in kept}
        data = {"info": info, "videos": kept, "sentences": [s for s in sentences if s["video_id"] in ids]}
        (world.root / name).write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")


def _write_csv(world: WorldSpec, name: str, header: list[str], rows: list[list[Any]]) -> None:
    with (world.root / name).open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def _baselines(
    world: WorldSpec, by_split: dict[str, list[Clip]], sentences: list[dict], videos: list[dict]
) -> dict[str, dict[str, float]]:
    """Per evaluated split: chance R@1, the R@1 of a ranker that sees one frame (the shapes in view,
    not the event), and the caption scores of the most frequent training sentence and of a caption
    written from one frame; under every JSON name the configs may use for the split."""
    from vltasks.metrics.functional.caption import coco_caption_scores

    split_of = {v["video_id"]: v["split"] for v in videos}
    refs: dict[str, list[str]] = {}
    for s in sentences:
        refs.setdefault(s["video_id"], []).append(s["caption"])
    train = Counter(s["caption"] for s in sentences if split_of[s["video_id"]] == "train")
    out: dict[str, dict[str, float]] = {}
    for split, clips in by_split.items():
        if split == "train" or not clips:
            continue
        gt = [refs[f"video{c.video_id}"] for c in clips]
        row = {
            "R@1, a random ranking (either way)": 1.0 / len(clips),
            "R@1 text->video, one frame per clip (shapes, no motion)": single_frame_t2v_r1(clips),
        }
        if train:
            top = coco_caption_scores([train.most_common(1)[0][0]] * len(gt), gt, metrics=("Bleu", "CIDEr"))
            row["CIDEr, the most frequent train caption"] = top["CIDEr"]
        one = coco_caption_scores([middle_caption(c) for c in clips], gt, metrics=("Bleu", "CIDEr"))
        row["CIDEr, a caption from one frame (shapes, no motion)"] = one["CIDEr"]
        for name, json_split in JSON_SPLIT.items():
            if json_split == split:
                out[name] = row
    return out


WRITERS.register("msrvtt_caption")(write_msrvtt)  # the same files, read for a caption decoder
