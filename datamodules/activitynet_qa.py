"""ActivityNet-QA (Yu et al. 2019) in its release's layout: open-ended video QA.

    <root>/<split>_q.json   [{"video_name", "question", "question_id"}]   (split: train, val, test)
    <root>/<split>_a.json   [{"answer", "type", "question_id"}]           (absent: predict only)
    <root>/videos/v_<video_name>.mp4                                       (ActivityNet's clip files)

``type`` is 0 motion, 1 spatial relation, 2 temporal relation (the three question types), 3 yes/no,
4 color, 5 object, 6 location, 7 number, 8 other (the free questions, by answer type): the
per-type accuracy the paper reports. Question ids are strings (``v_<video>_<n>``) and name the
predictions. Frames and features are keyed by the clip's file stem (``v_<video_name>``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vltasks.datamodules.base import READERS, BadSampleError, Problems, load_json
from vltasks.datamodules.checks import is_int
from vltasks.datamodules.video_qa import VideoQAData, nonempty_text

TYPES = ("motion", "spatial", "temporal", "yes/no", "color", "object", "location", "number", "other")


def split_files(root: Path, split: str) -> tuple[Path, Path]:
    return root / f"{split}_q.json", root / f"{split}_a.json"


def _records(path: Path) -> list[Any]:
    data = load_json(path)
    if not isinstance(data, list):
        raise BadSampleError(f"{path}: expected a list of records")
    return data


@READERS.register("activitynet_qa")
class ActivityNetQAData(VideoQAData):
    format = "activitynet_qa"
    question_types = TYPES
    question_type_groups = {"free": list(TYPES[3:])}  # the paper's "Free" column: types 3-8 together
    options = {**VideoQAData.options, "video_prefix": "v_"}  # file stem = prefix + video_name

    def read(self, split: str, problems: Problems) -> list[dict[str, Any]]:
        qfile, afile = split_files(self.root, split)
        questions = _records(qfile)
        answers, bad = self._answers(afile, problems) if afile.exists() or split == "train" else (None, set())
        samples, seen = [], set()
        for k, q in enumerate(questions):
            qid = q.get("question_id") if isinstance(q, dict) else None
            record = f"question #{k} (question_id={qid})"
            question, video = (
                nonempty_text(q.get(f)) if isinstance(q, dict) else None for f in ("question", "video_name")
            )
            problem = None
            if nonempty_text(qid) is None:
                problem = "needs a 'question_id' string"
            elif qid in seen:
                problem = "duplicate question_id"
            elif question is None or video is None:
                problem = "empty or missing 'question' or 'video_name'"
            if problem is not None:
                problems.report(qfile, record, problem)
                continue
            record = f"question_id={qid} (video_name={video})"
            answer: dict[str, Any] = {"answers": None, "answer_type": None}
            if answers is not None:
                if qid in bad:
                    continue  # its answer was reported (and counted) already
                if qid not in answers:
                    problems.report(afile, record, "question has no usable answer")
                    continue
                answer = answers[qid]
            sample = self.video_sample(
                qfile,
                record,
                self.opts["video_prefix"] + video,
                problems,
                question_id=qid,
                question=question,
                question_type=answer["answer_type"],
                **answer,
            )
            if sample is not None:
                seen.add(qid)
                samples.append(sample)
        return samples

    def _answers(self, path: Path, problems: Problems) -> tuple[dict[str, dict[str, Any]], set[str]]:
        """Answers by question_id, and the ids whose answer was bad or repeated (reported here)."""
        out: dict[str, dict[str, Any]] = {}
        bad: set[str] = set()
        for k, a in enumerate(_records(path)):
            qid = a.get("question_id") if isinstance(a, dict) else None
            record = f"answer #{k} (question_id={qid})"
            problem = None
            if nonempty_text(qid) is None:
                problem = "needs a 'question_id' string"
            elif qid in out or qid in bad:
                problem = "a second answer for this question_id"
            elif nonempty_text(a.get("answer")) is None:
                problem = "empty or missing 'answer'"
            elif not is_int(a.get("type")) or not 0 <= a["type"] < len(TYPES):
                problem = f"'type' must be an integer 0..{len(TYPES) - 1}, got {a.get('type')!r}"
            if problem is not None:
                problems.report(path, record, problem)
                if isinstance(qid, str):
                    bad.add(qid)
                    out.pop(qid, None)
                continue
            out[qid] = {"answers": [nonempty_text(a["answer"])], "answer_type": TYPES[a["type"]]}
        return out, bad
