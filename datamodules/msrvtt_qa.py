"""MSRVTT-QA and MSVD-QA (Xu et al. 2017) in their release's layout: open-ended video QA.

    <root>/train_qa.json, val_qa.json, test_qa.json   [{"answer", "id", "question", "video_id"}]
    MSRVTT-QA: <root>/MSRVTT_Videos/video<video_id>.mp4   (MSR-VTT's clips: video_id 0..9999)
    MSVD-QA:   <root>/youtube_mapping.txt                 lines "<clip name> vid<N>" (MSVD's own list)
               <root>/YouTubeClips/<clip name>.avi        (MSVD's clips; video_id N is vid<N>)

Split names are the files' (``train``, ``val``, ``test``). The question's type is its first word
(what, who, how, when, where: the paper's breakdown), ``other`` for anything else. Answers are
single words, compared as written (stripped): accuracy over all questions of the split, an answer
the training split never gave counting wrong. Frames and feature files are keyed like the video
files: ``video<N>`` for MSRVTT-QA, the clip name for MSVD-QA. The video folders default to the
ones the MSR-VTT and MSVD readers use, so one copy of the clips serves retrieval, captioning and QA
(``data.options.video_dir`` names another).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from vltasks.datamodules.base import READERS, BadSampleError, Problems, load_json
from vltasks.datamodules.checks import id_problem, is_int
from vltasks.datamodules.video_qa import VideoQAData, nonempty_text

QUESTION_WORDS = ("what", "who", "how", "when", "where")
MAPPING_FILE = "youtube_mapping.txt"


def qa_file(root: Path, split: str) -> Path:
    return root / f"{split}_qa.json"


def question_word(question: str) -> str:
    """MSRVTT-QA's question type: the first word if it is one of the five, else ``other``."""
    words = question.lower().split()
    return words[0] if words and words[0] in QUESTION_WORDS else "other"


@READERS.register("msrvtt_qa")
class MSRVTTQAData(VideoQAData):
    format = "msrvtt_qa"
    video_dir_default = "MSRVTT_Videos"
    question_types = (*QUESTION_WORDS, "other")

    def video_name(self, video_id: int) -> tuple[str | None, str]:
        """(the clip's name, or None; the problem when there is none) for a record's video_id."""
        return f"video{video_id}", ""

    def read(self, split: str, problems: Problems) -> list[dict[str, Any]]:
        path = qa_file(self.root, split)
        records = load_json(path)
        if not isinstance(records, list):
            raise BadSampleError(f"{path}: expected a list of question records")
        samples, seen = [], set()
        for k, r in enumerate(records):
            qid = r.get("id") if isinstance(r, dict) else None
            record = f"question #{k} (id={qid})"
            problem = id_problem(qid, seen, "id")
            if problem is None and not (is_int(r.get("video_id")) and r["video_id"] >= 0):
                problem = f"needs a non-negative integer 'video_id', got {r.get('video_id')!r}"
            if problem is None and (
                nonempty_text(r.get("question")) is None or nonempty_text(r.get("answer")) is None
            ):
                problem = "empty or missing 'question' or 'answer'"
            if problem is not None:
                problems.report(path, record, problem)
                continue
            name, problem = self.video_name(r["video_id"])
            record = f"id={qid} (video_id={r['video_id']})"
            if name is None:
                problems.report(self.root / MAPPING_FILE, record, problem)
                continue
            question = nonempty_text(r["question"])
            sample = self.video_sample(
                path,
                record,
                name,
                problems,
                question_id=qid,
                question=question,
                answers=[nonempty_text(r["answer"])],
                answer_type=question_word(question),
                question_type=question_word(question),
            )
            if sample is not None:
                seen.add(qid)
                samples.append(sample)
        return samples


@READERS.register("msvd_qa")
class MSVDQAData(MSRVTTQAData):
    format = "msvd_qa"
    video_dir_default = "YouTubeClips"

    def mapping(self, problems: Problems) -> dict[int, str]:
        """youtube_mapping.txt: vid number -> clip name; a malformed or repeated line is reported."""
        path = self.root / MAPPING_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: file not found (MSVD's clip names for the video ids)")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise BadSampleError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from e
        out: dict[int, str] = {}
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            m = re.fullmatch(r"\s*(\S+)\s+vid(\d+)\s*", line)
            if m is None:
                problems.report(path, f"line {n}", f"expected '<clip name> vid<N>', got {line[:80]!r}")
            elif int(m.group(2)) in out:
                problems.report(path, f"line {n}", f"vid{m.group(2)} is listed twice")
            else:
                out[int(m.group(2))] = m.group(1)
        return out

    def read(self, split: str, problems: Problems) -> list[dict[str, Any]]:
        self._mapping = self.mapping(problems)
        return super().read(split, problems)

    def video_name(self, video_id: int) -> tuple[str | None, str]:
        name = self._mapping.get(video_id)
        return name, f"video_id {video_id} (vid{video_id}) is not in {MAPPING_FILE}"
