"""Write the synthetic world in motion as MSVD (CLIP4Clip's layout).

    <root>/{train,val,test}_list.txt     one video id per line
    <root>/raw-captions.pkl              {video id: [[token, ...], ...]} (a plain pickle, protocol 2)
    <root>/YouTubeClips/<video id>.avi   MPEG-4 Part 2 in AVI (``sources`` may add frames/ and features/)

Ten captions per video (the release has about 40), each naming the clip's event.
"""

from __future__ import annotations

import pickle
from typing import Any

from .motion import captions, sample_clips, single_frame_t2v_r1, write_clips
from .world import image_rng
from .writers import WRITERS, WorldSpec, synthetic_writer

DEFAULT_SPLITS = {"train": 60, "val": 20}
CAPTIONS_PER_VIDEO = 10


@synthetic_writer("msvd", DEFAULT_SPLITS)
def write_msvd(world: WorldSpec, sources: tuple[str, ...] = ("video",)) -> dict[str, Any]:
    """Write the splits' clips, lists and captions pickle; return counts and baselines."""
    bad = sorted(set(world.all_splits) - {"train", "val", "test"})
    if bad:
        raise ValueError(f"MSVD splits are train, val, test; cannot write {bad}")
    all_captions: dict[str, list[list[str]]] = {}
    summary: dict[str, Any] = {
        "seed": world.seed,
        "image_size": world.image_size,
        "splits": {},
        "baselines": {},
    }
    n = 0
    for split, count in world.all_splits.items():
        clips = sample_clips(world.seed, range(n, n + count), world.image_size, distinct=split != "train")
        names = [f"clip{c.video_id}_0_2" for c in clips]
        n += count
        write_clips(world.root, clips, names, "YouTubeClips", sources, suffix=".avi")
        (world.root / f"{split}_list.txt").write_text("".join(f"{v}\n" for v in names), encoding="utf-8")
        for clip, name in zip(clips, names):
            texts = captions(clip, image_rng(world.seed, clip.video_id, 12), CAPTIONS_PER_VIDEO)
            all_captions[name] = [t.split() for t in texts]
        summary["splits"][split] = {"videos": count, "captions": count * CAPTIONS_PER_VIDEO}
        if split != "train" and clips:
            summary["baselines"][split] = {
                "R@1, a random ranking (either way)": 1.0 / count,
                "R@1 text->video, one frame per clip (shapes, no motion)": single_frame_t2v_r1(clips),
            }
    (world.root / "raw-captions.pkl").write_bytes(pickle.dumps(all_captions, protocol=2))
    return summary


WRITERS.register("msvd_caption")(write_msvd)  # the same files, read for a caption decoder
