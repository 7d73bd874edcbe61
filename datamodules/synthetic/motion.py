"""The synthetic world in motion: short clips of coloured shapes that move, appear one after the
other, or blink, shared by every synthetic video dataset writer.

A clip is ``FRAMES`` frames at ``FPS`` (2 s). Its events need more than one frame to tell:

- ``move``: one shape crosses the picture left, right, up or down (a still shape may stand by);
- ``order``: two shapes appear one after the other (the second before the middle frame, so the
  middle frame shows both and cannot tell which came first);
- ``blink``: one shape disappears 1, 2 or 3 times for ``PHASE`` frames (a still shape may stand by).

Every on/off phase starts on an even frame and lasts a multiple of ``PHASE`` frames, so sampling
8 frames as 8 segments of 2 (TSN, datamodules/video.py) sees every phase exactly once, in
training and in evaluation. Clips are drawn from explicit generators: the same seed gives the same
clips, frames, files (x264 runs single-threaded) and features.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .world import COLORS, SHAPES, SIZES, Obj, Scene, image_rng, render

FRAMES, FPS, PHASE = 16, 8, 2
KINDS = ("move", "order", "blink")
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
TRAVEL = 28.0  # px a moving shape covers over the clip
NUMBER_WORDS = {1: "once", 2: "twice", 3: "three times"}
FEATURE_GRID = 8  # synthetic "pre-extracted features": each frame's RGB average-pooled to 8 x 8
FEATURE_DIM = FEATURE_GRID * FEATURE_GRID * 3


@dataclass(frozen=True)
class Actor:
    """A shape in a clip: where it is in frame 0, how it moves, and in which frames it is seen."""

    obj: Obj
    step: tuple[float, float] = (0.0, 0.0)  # px per frame
    visible: tuple[bool, ...] = (True,) * FRAMES

    def at(self, frame: int) -> Obj:
        dx, dy = self.step[0] * frame, self.step[1] * frame
        x0, y0, x1, y1 = self.obj.bbox_xyxy
        cx, cy = self.obj.center
        return Obj(
            self.obj.shape,
            self.obj.color,
            self.obj.size_name,
            (x0 + dx, y0 + dy, x1 + dx, y1 + dy),
            (cx + dx, cy + dy),
        )

    @property
    def name(self) -> str:
        return f"{self.obj.color} {self.obj.shape}"


@dataclass
class Clip:
    """One clip's content (no pixels: see `frames`), and the facts its texts are made of."""

    video_id: int
    kind: str
    actors: list[Actor]
    facts: dict[str, Any] = field(default_factory=dict)
    size: int = 64

    def frames(self) -> list[Image.Image]:
        out = []
        for f in range(FRAMES):
            objs = [a.at(f) for a in self.actors if a.visible[f]]
            out.append(
                render(Scene(self.video_id, self.size, self.size, objs), noise_seed=self.video_id * 64 + f)
            )
        return out

    def signature(self) -> tuple[Any, ...]:
        """What its texts can tell apart: the kind, the facts, the shapes by name."""
        return (self.kind, tuple(sorted(self.facts.items())), tuple(sorted(a.name for a in self.actors)))

    def middle(self) -> tuple[str, ...]:
        """What the middle frame alone shows: the shapes in view (and where a mover is, coarsely)."""
        f = FRAMES // 2
        seen = []
        for a in self.actors:
            if a.visible[f]:
                cx, cy = a.at(f).center
                seen.append(f"{a.name}@{int(cx * 3 // self.size)}{int(cy * 3 // self.size)}")
        return tuple(sorted(seen))


def _shape(rng: np.random.Generator, size: int, swept: tuple[float, float] = (0.0, 0.0)) -> Obj:
    """A random shape whose box, moved by ``swept`` px, stays inside the picture."""
    shape, color = SHAPES[int(rng.integers(len(SHAPES)))], list(COLORS)[int(rng.integers(len(COLORS)))]
    size_name = list(SIZES)[int(rng.integers(len(SIZES)))]
    lo, hi = SIZES[size_name]
    side = int(rng.integers(lo, hi + 1))

    def start(d: float) -> int:
        return int(rng.integers(1 + int(max(0.0, -d)), size - side - int(np.ceil(max(0.0, d)))))

    x0, y0 = start(swept[0]), start(swept[1])
    return Obj(shape, color, size_name, (x0, y0, x0 + side, y0 + side), (x0 + side / 2, y0 + side / 2))


def _apart(a: Obj, others: Sequence[Obj], swept: tuple[float, float] = (0.0, 0.0)) -> bool:
    """``a`` (swept by ``swept`` px) keeps clear of every box in ``others``."""
    x0, y0, x1, y1 = a.bbox_xyxy
    x0, x1 = min(x0, x0 + swept[0]), max(x1, x1 + swept[0])
    y0, y1 = min(y0, y0 + swept[1]), max(y1, y1 + swept[1])
    return all(
        x1 + 2 <= o[0] or o[2] + 2 <= x0 or y1 + 2 <= o[1] or o[3] + 2 <= y0
        for o in (b.bbox_xyxy for b in others)
    )


def _place(
    rng: np.random.Generator,
    size: int,
    taken: list[Obj],
    swept: tuple[float, float] = (0.0, 0.0),
    differ: Callable[[Obj], bool] = lambda o: True,
) -> Obj:
    for _ in range(500):
        cand = _shape(rng, size, swept)
        if differ(cand) and _apart(cand, taken, swept) and all(_apart(t, [cand]) for t in taken):
            return cand
    raise RuntimeError(f"could not place a shape in a {size}px clip")


def _phases(rng: np.random.Generator, blinks: int) -> tuple[bool, ...]:
    """Visible per frame with ``blinks`` off phases of PHASE frames, apart, after the first phase."""
    slots = list(range(1, FRAMES // PHASE - 1))  # phase indices that may go dark (not the first/last)
    while True:
        chosen = sorted(int(s) for s in rng.choice(slots, size=blinks, replace=False))
        if all(b - a >= 2 for a, b in zip(chosen, chosen[1:])):  # an on phase between two blinks
            break
    return tuple(f // PHASE not in chosen for f in range(FRAMES))


def sample_clip(rng: np.random.Generator, video_id: int, size: int = 64, kind: str | None = None) -> Clip:
    """One clip: its kind drawn in turn (``move``, ``order``, ``blink``) unless given."""
    kind = kind or KINDS[int(rng.integers(len(KINDS)))]
    if kind == "move":
        direction = list(DIRECTIONS)[int(rng.integers(len(DIRECTIONS)))]
        ux, uy = DIRECTIONS[direction]
        swept = (ux * TRAVEL, uy * TRAVEL)
        mover = _place(rng, size, [], swept)
        actors = [Actor(mover, (swept[0] / (FRAMES - 1), swept[1] / (FRAMES - 1)))]
        if rng.random() < 0.5:
            still = _place(
                rng, size, [mover], differ=lambda o: (o.color, o.shape) != (mover.color, mover.shape)
            )
            if _apart(still, [mover], (0.0, 0.0)) and _apart(mover, [still], swept):
                actors.append(Actor(still))
        return Clip(video_id, kind, actors, {"direction": direction}, size)
    if kind == "order":
        first = _place(rng, size, [])
        second = _place(
            rng, size, [first], differ=lambda o: o.color != first.color and o.shape != first.shape
        )
        t1, t2 = int(rng.integers(0, 2)) * PHASE, int(rng.integers(2, 4)) * PHASE  # both shown by frame 8
        actors = [Actor(first, visible=tuple(f >= t1 for f in range(FRAMES)))]
        actors.append(Actor(second, visible=tuple(f >= t2 for f in range(FRAMES))))
        return Clip(video_id, kind, actors, {"first": actors[0].name, "then": actors[1].name}, size)
    blinks = int(rng.integers(1, 4))
    blinker = _place(rng, size, [])
    actors = [Actor(blinker, visible=_phases(rng, blinks))]
    if rng.random() < 0.5:
        actors.append(
            Actor(
                _place(
                    rng,
                    size,
                    [blinker],
                    differ=lambda o: (o.color, o.shape) != (blinker.color, blinker.shape),
                )
            )
        )
    return Clip(video_id, kind, actors, {"blinks": blinks}, size)


def sample_clips(seed: int, video_ids: Sequence[int], size: int, distinct: bool) -> list[Clip]:
    """One clip per id, kinds in turn; ``distinct``: evaluation clips whose texts tell them apart
    (a signature drawn again, up to 50 times, until unseen in the split)."""
    clips, seen = [], set()
    for i, vid in enumerate(video_ids):
        rng = image_rng(seed, vid, 11)
        clip = sample_clip(rng, vid, size, KINDS[i % len(KINDS)])
        for _ in range(50 if distinct else 0):
            if clip.signature() not in seen:
                break
            clip = sample_clip(rng, vid, size, KINDS[i % len(KINDS)])
        seen.add(clip.signature())
        clips.append(clip)
    return clips


# -- texts --------------------------------------------------------------------------------------
def _others(clip: Clip) -> str:
    rest = [a.name for a in clip.actors[1:]] if clip.kind != "order" else []
    return f" next to a {rest[0]}" if rest else ""


def captions(clip: Clip, rng: np.random.Generator, n: int = 5) -> list[str]:
    """``n`` phrasings of what happens (each names the event, so motion is needed to write it)."""
    a = clip.actors[0].name
    if clip.kind == "move":
        d = clip.facts["direction"]
        verb = {"left": "to the left", "right": "to the right", "up": "upwards", "down": "downwards"}[d]
        pool = [
            f"a {a} moves {verb}",
            f"the {a} slides {verb}",
            f"a {a} is moving {verb}",
            f"a {a} goes {verb}",
        ]
        pool = [p + _others(clip) for p in pool] + [f"a {a} travels {verb}"]
    elif clip.kind == "order":
        b = clip.facts["then"]
        pool = [
            f"a {a} appears and then a {b}",
            f"first a {a} appears then a {b}",
            f"a {b} appears after a {a}",
            f"a {a} shows up before a {b}",
            f"the {a} comes first and the {b} second",
        ]
    else:
        times = NUMBER_WORDS[clip.facts["blinks"]]
        pool = [f"a {a} blinks {times}", f"the {a} flashes {times}", f"a {a} disappears {times}"]
        pool = [p + _others(clip) for p in pool] + [
            f"a blinking {a} blinks {times}",
            f"the {a} vanishes {times}",
        ]
    order = rng.permutation(len(pool))
    return [pool[int(i)] for i in order[:n]]


def questions(clip: Clip) -> list[tuple[str, str, str]]:
    """(question, answer, question type) pairs, each needing more than one frame."""
    a = clip.actors[0].obj
    if clip.kind == "move":
        return [(f"which way does the {a.color} {a.shape} move?", clip.facts["direction"], "direction")]
    if clip.kind == "order":
        second = clip.actors[1].obj
        return [
            ("what shape appears first?", a.shape, "order"),
            ("what color is the shape that appears last?", second.color, "order"),
        ]
    return [(f"how many times does the {a.color} {a.shape} blink?", str(clip.facts["blinks"]), "count")]


def middle_caption(clip: Clip) -> str:
    """What a captioner that sees one frame could say: the shapes in view, nothing of the event."""
    names = sorted({a.name for a in clip.actors if a.visible[FRAMES // 2]})
    return " and ".join(f"a {n}" for n in names) or "nothing"


# -- files --------------------------------------------------------------------------------------
def write_mp4(path: Path, frames: Sequence[Image.Image], fps: int = FPS) -> None:
    """A video file with PyAV, one keyframe a second: H.264 in MP4 (``.mp4``), or MPEG-4 Part 2 in
    AVI (``.avi``, as MSVD's YouTube clips are). x264 runs single-threaded and without its lookahead
    and macroblock tree, which otherwise made two writes of one clip differ in a few bytes."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    avi = path.suffix == ".avi"
    with av.open(buffer, "w", format="avi" if avi else "mp4") as container:
        stream = container.add_stream("mpeg4" if avi else "libx264", rate=fps)
        stream.width, stream.height = frames[0].size
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": str(fps), "threads": "1"}
        stream.options |= (
            {"qscale": "2"}
            if avi
            else {
                "crf": "18",
                "preset": "veryfast",
                "x264-params": "threads=1:rc-lookahead=0:mbtree=0:sync-lookahead=0",
            }
        )
        stream.thread_count = 1
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.asarray(image.convert("RGB")), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    path.write_bytes(buffer.getvalue())


def write_frames(folder: Path, frames: Sequence[Image.Image]) -> None:
    """Extracted frames as a folder of JPEGs (``00001.jpg``...), as frame-folder releases ship them."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(frames, start=1):
        image.save(folder / f"{i:05d}.jpg", "JPEG", quality=95)


def frame_features(frames: Sequence[Image.Image]) -> np.ndarray:
    """[FRAMES, FEATURE_DIM] float32: each frame's RGB average-pooled to an 8 x 8 grid, in [0, 1]."""
    out = [
        np.asarray(f.resize((FEATURE_GRID, FEATURE_GRID), Image.BOX), dtype=np.float32).reshape(-1) / 255.0
        for f in frames
    ]
    return np.stack(out)


def write_clips(
    root: Path,
    clips: Sequence[Clip],
    names: Sequence[str],
    video_dir: str,
    sources: Sequence[str],
    suffix: str = ".mp4",
) -> None:
    """Each clip as ``<video_dir>/<name><suffix>`` (a name with its own suffix keeps it),
    ``frames/<name>/``, and one row of ``features/features.h5`` (keyed by name), as ``sources`` ask."""
    features = {}
    for clip, name in zip(clips, names):
        frames = clip.frames()
        if "video" in sources:
            write_mp4(root / video_dir / (name if Path(name).suffix else name + suffix), frames)
        if "frames" in sources:
            write_frames(root / "frames" / name, frames)
        if "features" in sources:
            features[name] = frame_features(frames)
    if features:
        import h5py

        (root / "features").mkdir(parents=True, exist_ok=True)
        with h5py.File(root / "features" / "features.h5", "a") as f:
            for name, array in features.items():
                if name in f:
                    del f[name]
                f.create_dataset(name, data=array)


# -- what needs no motion ----------------------------------------------------------------------
def single_frame_t2v_r1(clips: Sequence[Clip]) -> float:
    """Expected text-to-video R@1 of a ranker that knows which shapes each clip's middle frame shows
    and which a caption names, but nothing of the event: a random pick among the clips that fit."""
    shown = [{a.name for a in c.actors if a.visible[FRAMES // 2]} for c in clips]
    total = 0.0
    for i, clip in enumerate(clips):
        named = {a.name for a in clip.actors}
        fits = [j for j, s in enumerate(shown) if named <= s or s <= named]
        total += (i in fits) / max(len(fits), 1)
    return total / max(len(clips), 1)
