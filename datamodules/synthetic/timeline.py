"""The synthetic world on a timeline: videos of tens of seconds in which shapes come and go, with
sentences that hold during a time span, for temporal grounding and highlight detection.

A video lasts ``duration`` seconds, drawn one frame per ``step`` seconds. A few shapes (distinct by
colour and shape) are each on screen during one or two windows; a query names one shape ("the red
circle is on the screen") and its windows are the moments to find. Finding them needs the sentence:
the shapes, their windows and their number change from video to video, so the most frequent
training window is right only by chance. Frames are rendered from the world of datamodules/
synthetic/world.py (the videos and frame folders). The feature files stand in for a pretrained
extractor's: what is on screen, where, through a fixed random projection (`Timeline.features`).
Pooled pixels were tried first and the span head did not learn from them (R1@0.5 at the most
frequent window's level after 20 epochs): a linear layer cannot tell which colour is where from
an 8 x 8 average of the frame, and a released CLIP / SlowFast feature is not such an average.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .motion import write_mp4
from .world import COLORS, SHAPES, Obj, Scene, render

_SLOTS = (*COLORS, *SHAPES)  # what a feature row encodes per cell
FEATURE_DIM = 192
_PROJECTION = (  # fixed: every world's features live in one space
    np.random.default_rng(20261202).normal(0.0, 1.0, (9 * len(_SLOTS), FEATURE_DIM)) / np.sqrt(2.0)
).astype(np.float32)
TEMPLATES = ("the {name} is on the screen", "a {name} appears", "we see a {name}", "there is a {name}")


@dataclass(frozen=True)
class Event:
    """A shape, where it stands, and the windows (seconds) during which it is seen."""

    obj: Obj
    windows: tuple[tuple[float, float], ...]

    @property
    def name(self) -> str:
        return f"{self.obj.color} {self.obj.shape}"

    def visible(self, t: float) -> bool:
        return any(s <= t < e for s, e in self.windows)


@dataclass
class Timeline:
    video_id: int
    duration: float
    step: float
    events: list[Event]
    size: int = 64

    @property
    def steps(self) -> int:
        return int(np.ceil(self.duration / self.step - 1e-9))

    def frames(self) -> list[Image.Image]:
        """One frame per step, drawn at the step's middle."""
        out = []
        for k in range(self.steps):
            t = (k + 0.5) * self.step
            objs = [e.obj for e in self.events if e.visible(t)]
            out.append(
                render(Scene(self.video_id, self.size, self.size, objs), noise_seed=self.video_id * 997 + k)
            )
        return out

    def features(self) -> np.ndarray:
        """[steps, FEATURE_DIM] float32 stand-ins for a pretrained extractor's per-step features
        (the released Charades-STA / QVHighlights features are CLIP / SlowFast outputs, in which what
        is on screen is linearly readable): per cell of the 3 x 3 layout, the colour and shape on it
        one-hot, through a fixed random projection, plus noise seeded by video and step."""
        third = self.size / 3
        out = np.zeros((self.steps, FEATURE_DIM), dtype=np.float32)
        for k in range(self.steps):
            t = (k + 0.5) * self.step
            code = np.zeros(len(_SLOTS) * 9, dtype=np.float32)
            for e in self.events:
                if e.visible(t):
                    cell = 3 * int(e.obj.center[1] // third) + int(e.obj.center[0] // third)
                    for name in (e.obj.color, e.obj.shape):
                        code[cell * len(_SLOTS) + _SLOTS.index(name)] = 1.0
            noise = np.random.default_rng(self.video_id * 997 + k).normal(0.0, 0.1, FEATURE_DIM)
            out[k] = code @ _PROJECTION + noise
        return out

    def queries(self, rng: np.random.Generator) -> list[tuple[str, Event]]:
        return [(TEMPLATES[int(rng.integers(len(TEMPLATES)))].format(name=e.name), e) for e in self.events]


def _windows(
    rng: np.random.Generator, duration: float, grid: float, two: bool
) -> tuple[tuple[float, float], ...]:
    """One or two windows on a ``grid`` (seconds), each at least two grid cells long, apart."""
    cells = int(round(duration / grid))
    while True:
        n = 2 if two else 1
        starts = sorted(int(s) for s in rng.choice(cells - 1, size=n, replace=False))
        spans = []
        for i, s in enumerate(starts):
            limit = (starts[i + 1] - 1) if i + 1 < n else cells
            if limit - s < 2:
                break
            spans.append((s, int(rng.integers(s + 2, limit + 1))))
        if len(spans) == n:
            return tuple((s * grid, e * grid) for s, e in spans)


def sample_timeline(
    rng: np.random.Generator, video_id: int, duration: float, step: float, grid: float, size: int = 64
) -> Timeline:
    """2-4 shapes on screen at their own windows (one in three has two windows), placed apart."""
    combos = [(c, s) for c in COLORS for s in SHAPES]
    chosen = rng.choice(len(combos), size=int(rng.integers(2, 5)), replace=False)
    cells = [(x, y) for x in range(3) for y in range(3)]
    places = rng.choice(len(cells), size=len(chosen), replace=False)
    events = []
    for k, p in zip(chosen, places):
        color, shape = combos[int(k)]
        x0, y0 = (v * (size // 3) + 2 for v in cells[int(p)])
        side = size // 3 - 4
        obj = Obj(shape, color, "small", (x0, y0, x0 + side, y0 + side), (x0 + side / 2, y0 + side / 2))
        events.append(Event(obj, _windows(rng, duration, grid, two=rng.random() < 1 / 3)))
    return Timeline(video_id, duration, step, events, size)


def write_timeline(
    root: Path, timeline: Timeline, name: str, sources: tuple[str, ...], video_dir: str
) -> dict[str, Any]:
    """The video as ``<video_dir>/<name>.mp4`` (one frame per step), ``frames/<name>/``, and its
    features ([steps, dim]) returned for the caller to store in its dataset's own layout."""
    frames = timeline.frames()
    fps = max(int(round(1 / timeline.step)), 1)
    if "video" in sources:
        write_mp4(root / video_dir / f"{name}.mp4", frames, fps=fps)
    if "frames" in sources:
        from .motion import write_frames

        write_frames(root / "frames" / name, frames)
    return {"features": timeline.features()}


def most_frequent_window_r1(
    train: list[tuple[float, float, float]],
    evaluated: list[tuple[float, float, float, list]],
    threshold: float = 0.5,
) -> float:
    """R1@threshold of always answering the most frequent training window, as a fraction of the
    video (start / duration, end / duration), against each evaluated query's windows."""
    from collections import Counter

    top = Counter((round(s / d, 2), round(e / d, 2)) for s, e, d in train).most_common(1)[0][0]
    hits = 0
    for _, _, d, windows in evaluated:
        s, e = top[0] * d, top[1] * d
        best = max(_iou((s, e), w) for w in windows)
        hits += best >= threshold
    return hits / max(len(evaluated), 1)


def random_window_r1(
    rng: np.random.Generator,
    evaluated: list[tuple[float, float, float, list]],
    threshold: float = 0.5,
    draws: int = 200,
) -> float:
    """Expected R1@threshold of a random window (start and end uniform, ordered)."""
    total = 0.0
    for _, _, d, windows in evaluated:
        pts = np.sort(rng.random((draws, 2)) * d, axis=1)
        total += np.mean([max(_iou(tuple(p), w) for w in windows) >= threshold for p in pts])
    return float(total / max(len(evaluated), 1))


def _iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0
