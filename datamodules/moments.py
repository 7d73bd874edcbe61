"""Temporal grounding readers: Charades-STA, QVHighlights and DiDeMo's moments, in their official files.

Every sample is one query: its sentence, its video (decoded frames, a frame folder or a feature
file: datamodules/video.py), the video's duration in seconds and, when labelled, its windows
(seconds). `SpanCollator` makes the span head's batches: the clip's time steps, the query's
tokens, ``duration``, ``targets`` (one `Instances` of ``windows`` per sample) and a saliency target
per time step (QVHighlights: the annotators' mean score of the 2 s clip the step falls in; the others:
1 inside a window, 0 outside).

    Charades-STA   charades_sta_{train,test}.txt   "VID start end##sentence" per line
                   Charades_v1_{train,test}.csv     id, ..., length (seconds): the durations
                   Charades_v1_480/<VID>.mp4        (or frames/<VID>/, or features)
    QVHighlights   highlight_{train,val,test}_release.jsonl   qid, query, duration, vid,
                   relevant_windows, relevant_clip_ids, saliency_scores (test: the first four)
                   features/<vid>.npz (or .npy, or one HDF5 by vid): one row per 2 s clip
    DiDeMo         {train,val,test}_data.json       video, description, times (4 annotators'
                   [start, end] 5 s segment indices, inclusive), annotation_id, num_segments

A window whose end is before its start, or that leaves the video by more than
``span_tolerance`` seconds (default 1), is a bad record; an end within the tolerance is clamped to
the duration (Charades-STA's annotations overshoot by fractions of a second).
"""

from __future__ import annotations

import csv
import math
from typing import Any

import torch
from vltasks.datamodules.base import (
    READERS,
    BadSampleError,
    Collator,
    Problems,
    TaskData,
    jsonl_records,
    load_json,
)
from vltasks.datamodules.checks import id_problem, is_int, text_problem
from vltasks.datamodules.video import CLIP_OPTIONS, ClipSource

from vltasks.batch import Instances

CLIP_SECONDS = 2.0  # QVHighlights' clips
SEGMENT_SECONDS = 5.0  # DiDeMo's segments
MOMENT_OPTIONS = {**CLIP_OPTIONS, "video_source": "features", "feature_file": "features", "num_frames": 0}
MOMENT_OPTIONS["span_tolerance"] = 1.0  # seconds a window may overshoot the video (clamped)


class SpanCollator(Collator):
    """Time steps + query tokens + durations + windows (`Instances`) + per-step saliency targets."""

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.visual(samples)
        batch.update(self.processor.text([s["query"] for s in samples]))
        clip = batch.get("video", batch.get("video_features"))
        steps = clip.shape[1]
        mask = batch.get("frame_mask")
        valid = mask.sum(1).tolist() if mask is not None else [steps] * len(samples)
        saliency = torch.zeros(len(samples), steps)
        for i, s in enumerate(samples):
            for k in range(int(valid[i])):
                saliency[i, k] = step_saliency(s, (k + 0.5) * s["duration"] / valid[i])
        batch["saliency"] = saliency
        batch["duration"] = torch.tensor([float(s["duration"]) for s in samples], dtype=torch.float64)
        if all(s.get("windows") for s in samples):
            batch["targets"] = [
                Instances(windows=torch.tensor(s["windows"], dtype=torch.float64)) for s in samples
            ]
        extra = tuple(k for k in ("qid", "gt_saliency", "gt_moments") if k in samples[0])
        return self.copy(batch, samples, lists=("sample_id", "query", "vid", *extra))


def step_saliency(sample: dict[str, Any], t: float) -> float:
    """The saliency target of the time step centred at ``t`` seconds."""
    if "clip_scores" in sample:
        return float(sample["clip_scores"].get(int(t // CLIP_SECONDS), 0.0))
    return float(any(s <= t < e for s, e in sample.get("windows") or []))


class MomentData(ClipSource, TaskData):
    """What the three readers share: clip options, the collator, checking a window."""

    collator = SpanCollator
    protocol = ""

    def data_args(self) -> dict[str, Any]:
        return {"protocol": self.protocol}

    def texts(self) -> list[str]:
        return [s["query"] for s in self.samples("train")]

    def window_problem(self, start: Any, end: Any, duration: float) -> str | None:
        """What is wrong with a window (None if nothing); numbers must be finite."""
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (start, end))
        if not numbers or not all(math.isfinite(v) for v in (start, end)):
            return f"window [{start!r}, {end!r}] must be two finite numbers"
        tol = float(self.opts["span_tolerance"])
        if end <= start:
            return f"window [{start}, {end}] ends before it starts"
        if start < -tol or start >= duration or end > duration + tol:
            return f"window [{start}, {end}] leaves the {duration} s video by more than {tol} s"
        return None

    def clamp(self, windows: list[tuple[float, float]], duration: float) -> list[list[float]]:
        return [[max(0.0, float(s)), min(float(e), duration)] for s, e in windows]


@READERS.register("charades_sta")
class CharadesSTAData(MomentData):
    format = "charades_sta"
    protocol = "charades_sta"
    video_dir_default = "Charades_v1_480"
    options = dict(MOMENT_OPTIONS)

    def _durations(self, split: str) -> dict[str, float]:
        path = self.root / f"Charades_v1_{split}.csv"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the video durations (Charades' 'length' column) are needed")
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if rows and not {"id", "length"} <= set(rows[0]):
            raise BadSampleError(f"{path}: needs the columns 'id' and 'length', has {list(rows[0])}")
        out = {}
        for n, row in enumerate(rows, start=2):
            try:
                out[row["id"]] = float(row["length"])
            except ValueError:
                raise BadSampleError(f"{path}: line {n}: length {row['length']!r} is not a number") from None
        return out

    def read(self, split: str, problems: Problems) -> list[dict[str, Any]]:
        path = self.root / f"charades_sta_{split}.txt"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: annotations not found for split {split!r}")
        durations = self._durations(split)
        out = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            head, sep, sentence = line.partition("##")
            parts = head.split()
            record = f"line {n}"
            if not sep or len(parts) != 3 or not sentence.strip():
                problems.report(path, record, "expected 'VID start end##sentence'")
                continue
            vid, start, end = parts[0], _number(parts[1]), _number(parts[2])
            record = f"line {n} ({vid})"
            duration = durations.get(vid)
            problem = (
                None if duration is not None else f"video {vid!r} has no length in Charades_v1_{split}.csv"
            )
            problem = (
                problem or self.window_problem(start, end, duration) or text_problem(sentence, "the sentence")
            )
            clip, clip_problem = self.clip(vid) if problem is None else ({}, None)
            if problem or clip_problem:
                problems.report(clip["video_path"] if clip_problem else path, record, problem or clip_problem)
                continue
            out.append(
                {
                    "sample_id": f"{split}:{n}",
                    "record": record,
                    "vid": vid,
                    "query": " ".join(sentence.split()),
                    "duration": duration,
                    "windows": self.clamp([(start, end)], duration),
                    **clip,
                }
            )
        return out


@READERS.register("qvhighlights")
class QVHighlightsData(MomentData):
    format = "qvhighlights"
    protocol = "qvhighlights"
    video_dir_default = "videos"
    options = dict(MOMENT_OPTIONS)

    def read(self, split: str, problems: Problems) -> list[dict[str, Any]]:
        path = self.root / f"highlight_{split}_release.jsonl"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: annotations not found for split {split!r}")
        out, seen = [], set()
        for n, rec in jsonl_records(path, problems):
            sample, problem = self._sample(rec, seen)
            record = f"line {n} (qid={rec.get('qid') if isinstance(rec, dict) else None})"
            clip, clip_problem = self.clip(rec["vid"]) if problem is None else ({}, None)
            if problem or clip_problem:
                problems.report(clip["video_path"] if clip_problem else path, record, problem or clip_problem)
                continue
            seen.add(rec["qid"])
            out.append({**sample, "sample_id": str(rec["qid"]), "record": record, **clip})
        return out

    def _sample(self, rec: Any, seen: set[int]) -> tuple[dict[str, Any], str | None]:
        """The query's sample, or the problem with its record (labelled when it has windows)."""
        if not isinstance(rec, dict):
            return {}, "expected a JSON object"
        problem = id_problem(rec.get("qid"), seen, "qid")
        duration = rec.get("duration")
        if problem is None and not (isinstance(rec.get("vid"), str) and rec["vid"]):
            problem = "needs a 'vid'"
        if problem is None and not (
            isinstance(duration, (int, float)) and math.isfinite(duration) and duration > 0
        ):
            problem = f"'duration' must be a positive number, got {duration!r}"
        if problem is None and (not isinstance(rec.get("query"), str) or not rec["query"].strip()):
            problem = "empty or missing 'query'"
        problem = problem or text_problem(rec.get("query"), "'query'")
        if problem:
            return {}, problem
        sample = {
            "qid": rec["qid"],
            "vid": rec["vid"],
            "query": " ".join(rec["query"].split()),
            "duration": float(duration),
        }
        if "relevant_windows" not in rec:
            return sample, None  # the test split: no annotations, predict only
        windows = rec["relevant_windows"]
        if not isinstance(windows, list) or not windows:
            return {}, "a query without a window"
        for w in windows:
            if not isinstance(w, list) or len(w) != 2:
                return {}, f"window {w!r} must be [start, end]"
            if problem := self.window_problem(w[0], w[1], duration):
                return {}, problem
        ids, scores = rec.get("relevant_clip_ids"), rec.get("saliency_scores")
        clips = int(duration / CLIP_SECONDS)
        if not isinstance(ids, list) or not all(is_int(i) and 0 <= i < clips for i in ids):
            return {}, f"'relevant_clip_ids' must be clip indices below {clips}"
        rows_ok = isinstance(scores, list) and len(scores) == len(ids)
        if not rows_ok or not all(
            isinstance(r, list) and r and all(is_int(v) and 0 <= v <= 4 for v in r) for r in scores
        ):
            return {}, "'saliency_scores' needs one row of 0-4 scores per relevant clip"
        from vltasks.metrics.functional.highlight import qvhighlights_gt_saliency

        sample.update(
            windows=self.clamp([tuple(w) for w in windows], duration),
            clip_scores={i: sum(r) / len(r) for i, r in zip(ids, scores)},
            gt_saliency=qvhighlights_gt_saliency(duration, ids, scores),
        )
        return sample, None


@READERS.register("didemo_moments")
class DiDeMoMomentsData(MomentData):
    format = "didemo_moments"
    protocol = "didemo"
    video_dir_default = "videos"
    options = dict(MOMENT_OPTIONS)

    def read(self, split: str, problems: Problems) -> list[dict[str, Any]]:
        path = self.root / f"{split}_data.json"
        records = load_json(path)
        if not isinstance(records, list):
            raise BadSampleError(f"{path}: expected a list of moment annotations")
        out, seen = [], set()
        for k, rec in enumerate(records):
            aid = rec.get("annotation_id") if isinstance(rec, dict) else None
            record = f"record #{k} (annotation_id={aid})"
            problem = id_problem(aid, seen, "annotation_id") or self._problem(rec)
            clip, clip_problem = self.clip(rec["video"]) if problem is None else ({}, None)
            if problem or clip_problem:
                problems.report(clip["video_path"] if clip_problem else path, record, problem or clip_problem)
                continue
            seen.add(aid)
            duration = SEGMENT_SECONDS * rec.get("num_segments", 6)
            moments = [tuple(t) for t in rec["times"]]
            windows = sorted(
                {(s * SEGMENT_SECONDS, min((e + 1) * SEGMENT_SECONDS, duration)) for s, e in moments}
            )
            out.append(
                {
                    "sample_id": str(aid),
                    "record": record,
                    "vid": rec["video"],
                    "query": " ".join(rec["description"].split()),
                    "duration": duration,
                    "windows": [list(w) for w in windows],
                    "gt_moments": [list(m) for m in moments],
                    **clip,
                }
            )
        return out

    def _problem(self, rec: dict[str, Any]) -> str | None:
        if not isinstance(rec.get("video"), str) or not rec["video"]:
            return "needs a 'video' name"
        if not isinstance(rec.get("description"), str) or not rec["description"].strip():
            return "empty or missing 'description'"
        segments = rec.get("num_segments", 6)
        times = rec.get("times")
        pairs = isinstance(times, list) and times and all(isinstance(t, list) and len(t) == 2 for t in times)
        if not is_int(segments) or not pairs:
            return "'times' must be a non-empty list of [start, end] segment pairs"
        if not all(is_int(s) and is_int(e) and 0 <= s <= e < segments for s, e in times):
            return f"'times' {times} must hold segment indices 0 <= start <= end < {segments}"
        return text_problem(rec["description"], "'description'")


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text
