"""Karpathy's caption splits (``caption_datasets.zip``) for COCO, Flickr30k and Flickr8k.

    <root>/dataset_coco.json          {"images": [{"filepath", "sentids", "filename", "imgid", "split",
                                                   "sentences": [{"tokens", "raw", "imgid", "sentid"}],
                                                   "cocoid"}], "dataset": "coco"}
    <root>/train2014/COCO_train2014_<cocoid:012d>.jpg     (coco: <image_root>/<filepath>/<filename>)
    <root>/val2014/COCO_val2014_<cocoid:012d>.jpg
    <root>/dataset_flickr30k.json + <root>/flickr30k-images/<filename>   (flickr: no filepath)

Splits: train / restval / val / test; ``restval_as_train`` adds restval to train (ALBEF/BLIP's 113k
COCO images). The views shared by retrieval and captioning (one sample per image with all captions,
one per caption) and the batches are those of every captioned corpus (datamodules/caption_corpus.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vltasks.datamodules.base import READERS, BadSampleError, Problems, load_json
from vltasks.datamodules.caption_corpus import CaptionCorpus
from vltasks.datamodules.checks import is_int, text_problem
from vltasks.datamodules.media import path_inside

SPLITS = ("train", "restval", "val", "test")
IMAGE_DIRS = {"coco": "", "flickr30k": "flickr30k-images", "flickr8k": "Flicker8k_Dataset"}


@READERS.register("karpathy")
class KarpathyData(CaptionCorpus):
    format = "karpathy"
    options = {
        "dataset": "coco",  # coco | flickr30k | flickr8k: default file name and image folder
        "annotation_file": None,  # default <root>/dataset_<dataset>.json
        "image_root": None,  # default <root> (coco) or <root>/flickr30k-images, <root>/Flicker8k_Dataset
        "restval_as_train": True,
        "check_images": True,
        "train_unit": "caption",  # caption | image: what one training sample is
    }

    @property
    def gallery_source(self) -> str:
        return str(self.annotation_file)

    @property
    def annotation_file(self) -> Path:
        name = self.opts["annotation_file"] or f"dataset_{self.opts['dataset']}.json"
        return self.root / name

    @property
    def image_root(self) -> Path:
        return self.root / (self.opts["image_root"] or IMAGE_DIRS.get(self.opts["dataset"], ""))

    def image_path(self, record: dict[str, Any]) -> tuple[Path | None, str | None]:
        """The image's path (``<image_root>/<filepath>/<filename>``), or None and why it is refused."""
        folder = record.get("filepath")
        parts = [folder, record["filename"]] if isinstance(folder, str) and folder else [record["filename"]]
        return path_inside(self.image_root, *parts)

    # -- reading and validation ------------------------------------------------------------------
    def read(self, split: str, problems: Problems) -> list[dict[str, Any]]:
        if split not in SPLITS:
            raise ValueError(f"{self.annotation_file}: unknown Karpathy split {split!r}; valid: {SPLITS}")
        wanted = {split, "restval"} if split == "train" and self.opts["restval_as_train"] else {split}
        file = self.annotation_file
        data = load_json(file)
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise BadSampleError(f"{file}: expected an object with an 'images' list (Karpathy's format)")
        out: list[dict[str, Any]] = []
        seen: tuple[set[int], set[int], set[int]] = (set(), set(), set())  # imgids, sentids, image_ids
        for i, rec in enumerate(data["images"]):
            sample = self._image(file, i, rec, wanted, problems, seen)
            if sample is not None:
                out.append(sample)
        if not out:
            raise BadSampleError(f"{file}: no usable images in split(s) {sorted(wanted)}")
        return out

    def _image(
        self, file: Path, i: int, rec: Any, wanted: set[str], problems: Problems, seen: tuple[set, ...]
    ) -> dict[str, Any] | None:
        """One validated per-image sample, or None (reported, or of another split: a record of a
        known other split is left to that split's reading, so its problems are counted once)."""
        if isinstance(rec, dict) and rec.get("split") in SPLITS and rec["split"] not in wanted:
            return None
        if not isinstance(rec, dict) or not is_int(rec.get("imgid")):
            problems.report(file, f"image #{i}", "needs an integer 'imgid'")
            return None
        imgid, split, sentences = rec["imgid"], rec.get("split"), rec.get("sentences")
        record = f"imgid={imgid}"
        coco = self.opts["dataset"] == "coco"
        named = isinstance(rec.get("filename"), str) and bool(rec["filename"])
        image_id = _image_id(rec, imgid) if named else None
        checks = [
            (split not in SPLITS, f"'split' must be one of {SPLITS}, got {split!r}"),
            (not named, "missing 'filename'"),
            (coco and not is_int(rec.get("cocoid")), "needs an integer 'cocoid' (COCO results name it)"),
            (imgid in seen[0], "duplicate imgid"),
            (
                image_id in seen[2],
                "its image id (cocoid, or the Flickr photo id of its file name) repeats another image's",
            ),
            (not isinstance(sentences, list) or not sentences, "has no sentences"),
        ]
        problem = next((message for bad, message in checks if bad), None)
        if problem is not None:
            problems.report(file, record, problem)
            return None
        path, problem = self.image_path(rec)
        if problem is not None:
            problems.report(file, record, problem)
            return None
        if self.opts["check_images"] and not path.is_file():
            problems.report(path, record, "image file not found")
            return None
        seen[0].add(imgid)
        seen[2].add(image_id)
        good = _sentences(file, record, imgid, sentences, problems, seen[1])
        if not good:
            return None  # every sentence was reported
        return {
            "sample_id": str(imgid),
            "record": record,
            "imgid": imgid,
            "image_id": image_id,
            "image_path": str(path),
            "filename": rec["filename"],
            "split": split,
            "captions": [c for _, c, _ in good],
            "sentids": [sid for sid, _, _ in good],
            "tokens": [t for _, _, t in good],
        }


def _image_id(rec: dict[str, Any], imgid: int) -> int:
    """The id results files name: COCO's cocoid, Flickr30k's photo id (the file name), else imgid."""
    if is_int(rec.get("cocoid")):
        return rec["cocoid"]
    stem = Path(rec["filename"]).stem
    return int(stem) if stem.isdigit() else imgid


def _sentences(
    file: Path, record: str, imgid: int, sentences: list[Any], problems: Problems, seen: set[int]
) -> list[tuple[int, str, list[str]]]:
    """(sentid, caption with whitespace collapsed, Karpathy tokens) of the valid sentences."""
    out = []
    for j, s in enumerate(sentences):
        s = s if isinstance(s, dict) else {}  # a non-object sentence has no sentid
        sid = s.get("sentid")
        where = f"{record} sentid={sid}" if is_int(sid) else f"{record} sentence #{j}"
        bad_text = text_problem(s)
        checks = [
            (not is_int(sid), "needs an integer 'sentid'"),
            (not isinstance(s.get("raw"), str) or not s["raw"].strip(), "empty or missing 'raw' caption"),
            (s.get("imgid", imgid) != imgid, "sentence names another imgid"),
            (sid in seen, "duplicate sentid"),
            (bad_text is not None, bad_text),
            (
                "tokens" in s
                and not (isinstance(s["tokens"], list) and all(isinstance(t, str) for t in s["tokens"])),
                "'tokens' must be a list of strings",
            ),
        ]
        problem = next((message for bad, message in checks if bad), None)
        if problem is not None:
            problems.report(file, where, problem)
            continue
        seen.add(sid)
        tokens = s["tokens"] if "tokens" in s else s["raw"].lower().split()  # absent: Karpathy's rule
        out.append((sid, " ".join(s["raw"].split()), list(tokens)))
    return out
