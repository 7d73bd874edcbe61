"""MSR-VTT (Xu et al. 2016) in the layouts its release and CLIP4Clip's data use.

    <root>/MSRVTT_data.json            {"videos": [{"video_id": "video0", "split": "train" | "validate"
                                        | "test", "id": 0, ...}], "sentences": [{"video_id", "caption",
                                        "sen_id"}]}  (CLIP4Clip's msrvtt_data.zip)
        or train_val_videodatainfo.json + test_videodatainfo.json (the 10K release: the same fields)
    <root>/MSRVTT_train.9k.csv         column video_id: the 9,000 training videos of the 1k-A protocol
    <root>/MSRVTT_JSFUSION_test.csv    key, vid_key, video_id, sentence: the 1k-A test, one sentence
                                       per video (JSFusion's split)
    <root>/MSRVTT_Videos/<video_id>.mp4   (or frames/<video_id>/..., or features/features.h5 by id)

Splits: ``train`` / ``validate`` (or ``val``) / ``test`` are the JSON's 6,513 / 497 / 2,990 videos
with all their sentences (20 each; captioning); ``train.9k`` the 9k csv's videos with all their
sentences and ``test.1k`` JSFusion's 1,000 (video, sentence) pairs (retrieval, 1k-A). Items are
videos (``sample_id`` = video id, ``imgid`` its index in the JSON); sentence ids are ``sen_id``
(JSFusion rows: their row number). ``msrvtt`` gives retrieval batches, ``msrvtt_caption`` caption
decoder batches (datamodules/caption_corpus.py).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from vltasks.datamodules.base import READERS, BadSampleError, Problems, load_json
from vltasks.datamodules.caption_corpus import CaptionBatches, CaptionCorpus
from vltasks.datamodules.checks import is_int, text_problem
from vltasks.datamodules.video import CLIP_OPTIONS, ClipSource

ANNOTATIONS = ("MSRVTT_data.json", "train_val_videodatainfo.json", "test_videodatainfo.json")
JSON_SPLITS = {"train": "train", "validate": "validate", "val": "validate", "test": "test"}
CSV_SPLITS = {"train.9k": "MSRVTT_train.9k.csv", "test.1k": "MSRVTT_JSFUSION_test.csv"}


def _video_index(video_id: str, fallback: int) -> int:
    """``video123`` -> 123 (what MSR-VTT's ids count); other ids keep their place in the file."""
    m = re.fullmatch(r"video(\d+)", video_id)
    return int(m.group(1)) if m else fallback


def _keys(videos: list[dict[str, Any]]) -> list[tuple[str, int, Path]]:
    return [(v["video_id"], v["_index"], v["_file"]) for v in videos]


@READERS.register("msrvtt")
class MSRVTTData(ClipSource, CaptionCorpus):
    format = "msrvtt"
    video_dir_default = "MSRVTT_Videos"
    options = {**CLIP_OPTIONS, "annotation_file": None, "train_unit": "caption"}

    def _annotations(self) -> tuple[list[Path], dict[str, Any], list[Any]]:
        """(files read, videos by id, every sentence record), parsed once for every split."""
        if "_parsed" not in self.__dict__:
            names = [self.opts["annotation_file"]] if self.opts["annotation_file"] else None
            if names is None:
                names = [ANNOTATIONS[0]] if (self.root / ANNOTATIONS[0]).is_file() else list(ANNOTATIONS[1:])
            files = [self.root / n for n in names]
            videos: dict[str, Any] = {}
            sentences: list[Any] = []
            for file in files:
                data = load_json(file)
                if not isinstance(data, dict) or not all(
                    isinstance(data.get(k), list) for k in ("videos", "sentences")
                ):
                    raise BadSampleError(f"{file}: expected an object with 'videos' and 'sentences' lists")
                for k, v in enumerate(data["videos"]):
                    vid = v.get("video_id") if isinstance(v, dict) else None
                    if not isinstance(vid, str) or not vid:
                        raise BadSampleError(f"{file}: videos[{k}]: needs a 'video_id' string")
                    if vid in videos:
                        raise BadSampleError(f"{file}: videos[{k}]: duplicate video_id {vid!r}")
                    videos[vid] = {**v, "_index": _video_index(vid, len(videos)), "_file": file}
                sentences += [(file, k, s) for k, s in enumerate(data["sentences"])]
            self._parsed = (files, videos, sentences)
        return self._parsed

    @property
    def gallery_source(self) -> str:
        return str(self._annotations()[0][0])

    def read(self, split: str, problems: Problems) -> list[dict[str, Any]]:
        if split in CSV_SPLITS:
            return self._read_csv(split, problems)
        if split not in JSON_SPLITS:
            known = sorted({*JSON_SPLITS, *CSV_SPLITS})
            raise BadSampleError(f"{self.root}: unknown MSR-VTT split {split!r}; valid: {known}")
        _, videos = self._annotations()[:2]
        wanted = [v for v in videos.values() if v.get("split") == JSON_SPLITS[split]]
        if not wanted:
            raise BadSampleError(f"{self.root}: no video of split {JSON_SPLITS[split]!r} in the annotations")
        return self.clip_items(_keys(wanted), self._captions_by_video(problems), problems)

    def _captions_by_video(self, problems: Problems) -> dict[str, list[tuple[int, str]]]:
        _, videos, sentences = self._annotations()
        out: dict[str, list[tuple[int, str]]] = {}
        seen: set[int] = set()
        for file, k, s in sentences:
            record = f"sentences[{k}] (sen_id={s.get('sen_id') if isinstance(s, dict) else None})"
            problem = None
            if not isinstance(s, dict) or not is_int(s.get("sen_id")):
                problem = "needs an integer 'sen_id'"
            elif s["sen_id"] in seen:
                problem = "duplicate sen_id"
            elif not isinstance(s.get("caption"), str) or not s["caption"].strip():
                problem = "empty or missing 'caption'"
            elif s.get("video_id") not in videos:
                problem = f"names video_id {s.get('video_id')!r}, which no video has"
            else:
                problem = text_problem(s["caption"], "'caption'")
            if problem is not None:
                problems.report(file, record, problem)
                continue
            seen.add(s["sen_id"])
            out.setdefault(s["video_id"], []).append((s["sen_id"], " ".join(s["caption"].split())))
        return out

    def _read_csv(self, split: str, problems: Problems) -> list[dict[str, Any]]:
        path = self.root / CSV_SPLITS[split]
        if not path.is_file():
            raise FileNotFoundError(f"{path}: file not found for split {split!r}")
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        need = ("video_id", "sentence") if split == "test.1k" else ("video_id",)
        if rows and not all(c in rows[0] for c in need):
            raise BadSampleError(f"{path}: needs the columns {list(need)}, has {list(rows[0])}")
        if split == "train.9k":
            _, videos = self._annotations()[:2]
            ids = []
            for n, row in enumerate(rows, start=2):
                if row["video_id"] not in videos:
                    problems.report(
                        path, f"line {n}", f"video_id {row['video_id']!r} is not in the annotations"
                    )
                else:
                    ids.append(row["video_id"])
            return self.clip_items(
                _keys([videos[i] for i in dict.fromkeys(ids)]), self._captions_by_video(problems), problems
            )
        videos_1k, captions = [], {}
        for n, row in enumerate(rows, start=2):  # line 1 is the header
            vid, sentence = row["video_id"], row.get("sentence") or ""
            problem = text_problem(sentence, "'sentence'") or ("" if sentence.strip() else "empty 'sentence'")
            if not vid or vid in captions:
                problem = problem or f"{'duplicate' if vid else 'missing'} video_id {vid!r}"
            if problem:
                problems.report(path, f"line {n}", problem)
                continue
            captions[vid] = [(n - 2, " ".join(sentence.split()))]
            videos_1k.append({"video_id": vid, "_index": _video_index(vid, n - 2), "_file": path})
        return self.clip_items(_keys(videos_1k), captions, problems)


@READERS.register("msrvtt_caption")
class MSRVTTCaptionData(CaptionBatches, MSRVTTData):
    format = "msrvtt_caption"
