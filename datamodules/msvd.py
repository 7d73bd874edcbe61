"""MSVD (YouTube2Text; Chen and Dolan 2011) in the layout CLIP4Clip and most video-text work read.

    <root>/train_list.txt  val_list.txt  test_list.txt   one video id per line (1,200 / 100 / 670)
    <root>/raw-captions.pkl                              {video id: [[token, ...], ...]}: ~40 captions each
    <root>/YouTubeClips/<video id>.avi                   (or frames/<id>/..., or features/features.h5 by id)

The captions pickle is read without building any object but plain containers (datamodules/base.py
`load_plain_pickle`): a published pickle must not be able to run code. A caption is its tokens
joined by spaces; sentence ids count the captions in the pickle's order. Items are videos
(``sample_id`` = video id; ``imgid`` its place in the pickle). ``msvd`` gives retrieval batches
(every sentence is a text query; video-to-text ranks sentence groups, CLIP4Clip's multi-sentence
rule), ``msvd_caption`` caption decoder batches.
"""

from __future__ import annotations

from typing import Any

from vltasks.datamodules.base import READERS, BadSampleError, Problems, load_plain_pickle
from vltasks.datamodules.caption_corpus import CaptionBatches, CaptionCorpus
from vltasks.datamodules.checks import text_problem
from vltasks.datamodules.video import CLIP_OPTIONS, ClipSource

CAPTIONS = "raw-captions.pkl"
SPLITS = ("train", "val", "test")


@READERS.register("msvd")
class MSVDData(ClipSource, CaptionCorpus):
    format = "msvd"
    video_dir_default = "YouTubeClips"
    options = {**CLIP_OPTIONS, "train_unit": "caption"}

    @property
    def gallery_source(self) -> str:
        return str(self.root / CAPTIONS)

    def _caption_file(
        self,
    ) -> tuple[dict[str, int], dict[str, list[tuple[int, str]]], dict[str, list[tuple[str, str]]]]:
        """(video id -> index, video id -> [(sentence id, caption)], video id -> [(record, problem)])
        from the pickle, parsed once; each split reports the problems of its own videos."""
        if "_parsed" not in self.__dict__:
            path = self.root / CAPTIONS
            if not path.is_file():
                raise FileNotFoundError(f"{path}: captions file not found")
            data = load_plain_pickle(path)
            if not isinstance(data, dict):
                raise BadSampleError(
                    f"{path}: expected a dict of video id -> token lists, got {type(data).__name__}"
                )
            index: dict[str, int] = {}
            captions: dict[str, list[tuple[int, str]]] = {}
            bad: dict[str, list[tuple[str, str]]] = {}
            sid = 0
            for vid, caps in data.items():
                vid = str(vid)
                index[vid], captions[vid] = len(index), []
                for k, tokens in enumerate(caps if isinstance(caps, list) else [None]):
                    ok = isinstance(tokens, list) and tokens and all(isinstance(t, str) for t in tokens)
                    problem = None if ok else "must be a non-empty list of token strings"
                    problem = problem or text_problem(tokens, "tokens")
                    if problem is None:
                        captions[vid].append((sid, " ".join(tokens)))
                    else:
                        bad.setdefault(vid, []).append((f"video_id={vid} caption #{k}", problem))
                    sid += 1
            self._parsed = (index, captions, bad)
        return self._parsed

    def read(self, split: str, problems: Problems) -> list[dict[str, Any]]:
        if split not in SPLITS:
            raise BadSampleError(f"{self.root}: unknown MSVD split {split!r}; valid: {list(SPLITS)}")
        listing = self.root / f"{split}_list.txt"
        if not listing.is_file():
            raise FileNotFoundError(f"{listing}: video list not found for split {split!r}")
        ids = [line.strip() for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]
        index, captions, bad = self._caption_file()
        videos = []
        for n, vid in enumerate(dict.fromkeys(ids), start=1):
            if vid not in index:
                problems.report(listing, f"line {n} (video_id={vid})", f"has no captions in {CAPTIONS}")
                continue
            for record, problem in bad.get(vid, []):
                problems.report(self.root / CAPTIONS, record, problem)
            videos.append((vid, index[vid], self.root / CAPTIONS))
        return self.clip_items(videos, captions, problems)


@READERS.register("msvd_caption")
class MSVDCaptionData(CaptionBatches, MSVDData):
    format = "msvd_caption"
