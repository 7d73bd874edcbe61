"""DiDeMo (Hendricks et al. 2017, LocalizingMoments) for paragraph-to-video retrieval, as CLIP4Clip
reads it.

    <root>/{train,val,test}_data.json   [{"video", "description", "times" (4 annotators' [start, end]
                                        5-second segment indices), "annotation_id", "num_segments",
                                        "dl_link"}], one record per described moment
    <root>/{train,val,test}_list.txt    optional: the videos of the split that were found (CLIP4Clip)
    <root>/videos/<video>               the file named as ``video`` says (or with .mp4 appended), or
                                        frames/<video>/..., or features/features.h5 keyed by ``video``

Every description of a video, in file order, joined by spaces, is one paragraph: the text side of
the retrieval (one per video), as CLIP4Clip concatenates them. Items are videos (``sample_id`` =
video name, ``imgid`` its order of appearance in the file); the paragraph's sentence id is that
index too. Moments (the ``times``) are read by the temporal grounding reader.
"""

from __future__ import annotations

from typing import Any

from vltasks.datamodules.base import READERS, BadSampleError, Problems, load_json
from vltasks.datamodules.caption_corpus import CaptionCorpus
from vltasks.datamodules.checks import id_problem, text_problem
from vltasks.datamodules.video import CLIP_OPTIONS, ClipSource

SPLITS = ("train", "val", "test")


def annotations_file(root: Any, split: str) -> Any:
    return root / f"{split}_data.json"


@READERS.register("didemo_paragraphs")
class DiDeMoParagraphData(ClipSource, CaptionCorpus):
    format = "didemo_paragraphs"
    video_dir_default = "videos"
    options = {**CLIP_OPTIONS, "train_unit": "caption"}

    def read(self, split: str, problems: Problems) -> list[dict[str, Any]]:
        if split not in SPLITS:
            raise BadSampleError(f"{self.root}: unknown DiDeMo split {split!r}; valid: {list(SPLITS)}")
        path = annotations_file(self.root, split)
        records = load_json(path)
        if not isinstance(records, list):
            raise BadSampleError(f"{path}: expected a list of moment annotations")
        listing = self.root / f"{split}_list.txt"
        listed = None
        if listing.is_file():
            listed = {
                line.strip() for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()
            }
        texts: dict[str, list[str]] = {}
        seen: set[int] = set()
        for k, rec in enumerate(records):
            aid = rec.get("annotation_id") if isinstance(rec, dict) else None
            record = f"record #{k} (annotation_id={aid})"
            problem = id_problem(aid, seen, "annotation_id")
            if problem is None and (not isinstance(rec.get("video"), str) or not rec["video"]):
                problem = "needs a 'video' name"
            if problem is None and (
                not isinstance(rec.get("description"), str) or not rec["description"].strip()
            ):
                problem = "empty or missing 'description'"
            problem = problem or text_problem(rec["description"], "'description'")
            if problem is not None:
                problems.report(path, record, problem)
                continue
            seen.add(aid)
            if listed is None or rec["video"] in listed:
                texts.setdefault(rec["video"], []).append(" ".join(rec["description"].split()))
        videos = [(vid, i, path) for i, vid in enumerate(texts)]
        return self.clip_items(videos, {vid: [(i, " ".join(texts[vid]))] for vid, i, _ in videos}, problems)
