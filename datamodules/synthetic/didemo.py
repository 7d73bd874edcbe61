"""Write the synthetic world in motion as DiDeMo (LocalizingMoments' JSON, CLIP4Clip's lists).

    <root>/{train,val,test}_data.json   one record per description: video, description, times (four
                                        annotators' 5-second segments), annotation_id, num_segments
    <root>/{train,val,test}_list.txt    the videos of the split
    <root>/videos/<video>.mp4           (``sources`` may add frames/ and features/)

Each clip gets two or three descriptions of its event; paragraph retrieval joins them. The clips
last 2 s, so every moment is the first 5-second segment ([0, 0] for every annotator).
"""

from __future__ import annotations

import json
from typing import Any

from .motion import captions, sample_clips, single_frame_t2v_r1, write_clips
from .world import image_rng
from .writers import WorldSpec, synthetic_writer

DEFAULT_SPLITS = {"train": 60, "val": 20}


@synthetic_writer("didemo_paragraphs", DEFAULT_SPLITS)
def write_didemo(world: WorldSpec, sources: tuple[str, ...] = ("video",)) -> dict[str, Any]:
    """Write the splits' clips and DiDeMo's files; return counts and baselines."""
    bad = sorted(set(world.all_splits) - {"train", "val", "test"})
    if bad:
        raise ValueError(f"DiDeMo splits are train, val, test; cannot write {bad}")
    summary: dict[str, Any] = {
        "seed": world.seed,
        "image_size": world.image_size,
        "splits": {},
        "baselines": {},
    }
    n, annotation = 0, 0
    for split, count in world.all_splits.items():
        clips = sample_clips(world.seed, range(n, n + count), world.image_size, distinct=split != "train")
        names = [f"{c.video_id}@N00_{1000 + c.video_id}_synthetic.mp4" for c in clips]
        n += count
        write_clips(world.root, clips, names, "videos", sources)
        records = []
        for clip, name in zip(clips, names):
            rng = image_rng(world.seed, clip.video_id, 13)
            for text in captions(clip, rng, 2 + int(rng.integers(2))):
                records.append(
                    {
                        "num_segments": 6,
                        "description": text,
                        "dl_link": f"https://www.flickr.com/video_download.gne?id={1000 + clip.video_id}",
                        "times": [[0, 0]] * 4,
                        "video": name,
                        "annotation_id": annotation,
                    }
                )
                annotation += 1
        (world.root / f"{split}_data.json").write_text(json.dumps(records), encoding="utf-8")
        (world.root / f"{split}_list.txt").write_text("".join(f"{v}\n" for v in names), encoding="utf-8")
        summary["splits"][split] = {"videos": count, "descriptions": len(records)}
        if split != "train" and clips:
            summary["baselines"][split] = {
                "R@1, a random ranking (either way)": 1.0 / count,
                "R@1 paragraph->video, one frame per clip (shapes, no motion)": single_frame_t2v_r1(clips),
            }
    return summary
