"""NExT-QA (Xiao et al. 2021) multiple choice in its release's layout.

    <root>/train.csv, val.csv, test.csv   video,frame_count,width,height,question,answer,qid,type,a0..a4
    <root>/map_vid_vidorID.json           {"<video>": "<folder>/<video>"}: where VidOR keeps each clip
    <root>/NExTVideo/<folder>/<video>.mp4

``answer`` is the right candidate's position (0..4) and ``type`` one of CW, CH (causal why / how),
TN, TC, TP (temporal next / concurrent / previous), DL, DC, DO (descriptive location / count /
other). A question is named ``<video>_<qid>`` as the official results file keys it (qid is unique
within a video only). Scored with ``NExTQAAccuracy`` (overall, per type, per group C/T/D, as
eval_mc.py). Video files come through the map; frames and features are keyed by the csv's
``video`` id, as the NExT-QA feature releases key them.
"""

from __future__ import annotations

from typing import Any

from vltasks.datamodules.base import READERS, BadSampleError, Problems, load_json
from vltasks.datamodules.video_qa import NUM_CHOICES, VideoQAData, nonempty_text, read_table

from vltasks.metrics.functional.video_qa import NEXTQA_TYPES

MAP_FILE = "map_vid_vidorID.json"
CHOICES = tuple(f"a{k}" for k in range(NUM_CHOICES))
COLUMNS = ("video", "question", "answer", "qid", "type", *CHOICES)


@READERS.register("nextqa")
class NExTQAData(VideoQAData):
    format = "nextqa"
    kind = "choice"
    choice_protocol = "nextqa"
    video_dir_default = "NExTVideo"

    def video_map(self) -> dict[str, str]:
        """map_vid_vidorID.json, checked once: video id -> the clip's path under the video folder."""
        if "_map" not in self.__dict__:
            path = self.root / MAP_FILE
            data = load_json(path)
            if not isinstance(data, dict) or not all(isinstance(v, str) and v for v in data.values()):
                raise BadSampleError(f"{path}: expected an object mapping each video id to a path string")
            self._map = data
        return self._map

    def read(self, split: str, problems: Problems) -> list[dict[str, Any]]:
        path = self.root / f"{split}.csv"
        by_file = self.opts["video_source"] == "video"
        videos = self.video_map() if by_file else {}
        samples, seen = [], set()
        for line, row in read_table(path, COLUMNS, problems):
            video, qid = row["video"].strip(), row["qid"].strip()
            qns_id = f"{video}_{qid}"
            record = f"{qns_id} ({line})"
            fields, problem = self._fields(row)
            if not video or not qid.isdigit():
                problem = f"needs a 'video' id and an integer 'qid', got {row['video']!r}, {row['qid']!r}"
            elif qns_id in seen:
                problem = f"a second question {qid} for video {video}"
            if problem is not None:
                problems.report(path, record, problem)
                continue
            if by_file and video not in videos:
                problems.report(self.root / MAP_FILE, record, f"video {video} is not in {MAP_FILE}")
                continue
            clip_id = videos[video] if by_file else video
            sample = self.video_sample(path, record, clip_id, problems, question_id=qns_id, **fields)
            if sample is not None:
                seen.add(qns_id)
                samples.append({**sample, "video_id": video})
        return samples

    @staticmethod
    def _fields(row: dict[str, str]) -> tuple[dict[str, Any], str | None]:
        """The sample fields of one csv row, or its problem."""
        question, answer = nonempty_text(row["question"]), row["answer"].strip()
        candidates = [nonempty_text(row[c]) for c in CHOICES]
        if question is None or any(c is None for c in candidates):
            return {}, f"empty 'question' or candidate ({', '.join(CHOICES)})"
        if not answer.isdigit() or not 0 <= int(answer) < NUM_CHOICES:
            return {}, f"'answer' must be a candidate position 0..{NUM_CHOICES - 1}, got {answer!r}"
        qtype = row["type"].strip()
        if qtype not in NEXTQA_TYPES:
            return {}, f"'type' must be one of {NEXTQA_TYPES}, got {qtype!r}"
        label = int(answer)
        return {
            "question": question,
            "candidates": candidates,
            "label": label,
            "answer": candidates[label],
            "question_type": qtype,
        }, None
