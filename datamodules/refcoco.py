"""RefCOCO / RefCOCO+ / RefCOCOg in the layout of the refer toolkit (github.com/lichengunc/refer).

    <root>/<dataset>/refs(<split_by>).p    pickled list of refs: ref_id, ann_id, image_id, split,
                                           sentences [{tokens, raw, sent_id, sent}], category_id, ...
    <root>/<dataset>/instances.json        COCO-style images, annotations (bbox [x, y, w, h]), categories
    <images_dir>/<image file_name>         COCO train2014 images (file_name from instances.json)

`dataset` is refcoco | refcoco+ | refcocog; `split_by` unc (RefCOCO, RefCOCO+: train, val, testA,
testB), umd (RefCOCOg: train, val, test) or google. All splits live in one refs file; as in refer,
split "test" selects every split named test*. A ref's own `file_name` (``..._<ann_id>.jpg``) names
no real file: the image is instances.json's entry for the ref's image_id, looked up under
``data.options.images_dir`` (relative to `root`), by default refer's ``images/mscoco/images/train2014``.
One sample per sentence, id = sent_id. The pickle is read without building any object but plain
containers and builtin scalars: a published pickle must not be able to run code.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torchvision.ops import box_convert
from vltasks.datamodules.base import (
    READERS,
    BadSampleError,
    Collator,
    Problems,
    TaskData,
    load_json,
    load_plain_pickle,
)
from vltasks.datamodules.checks import is_int, text_problem
from vltasks.datamodules.media import path_inside

DATASETS = ("refcoco", "refcoco+", "refcocog")
SPLIT_BYS = ("unc", "umd", "google")
TEXT_FIELDS = ("sent", "raw")


def refs_file(root: Path, dataset: str, split_by: str) -> Path:
    return root / dataset / f"refs({split_by}).p"


def instances_file(root: Path, dataset: str) -> Path:
    return root / dataset / "instances.json"


def _box_problem(bbox: Any, width: float, height: float) -> str | None:
    numbers = isinstance(bbox, (list, tuple)) and all(isinstance(v, (int, float)) for v in bbox)
    if not numbers or len(bbox) != 4 or any(isinstance(v, bool) for v in bbox):
        return f"bbox must be 4 numbers [x, y, w, h], got {bbox!r}"
    if not all(math.isfinite(v) for v in bbox):
        return f"bbox {list(bbox)} holds a NaN or infinite number"
    x, y, w, h = bbox
    if w <= 0 or h <= 0:
        return f"bbox {list(bbox)} has a non-positive width or height"
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        return f"bbox {list(bbox)} lies outside the {width}x{height} image"
    return None


def _known_split(split: Any) -> bool:
    """refer's split names: train, val, test, and the test subsets (testA, testB, testC)."""
    return split in ("train", "val", "test") or (
        isinstance(split, str) and split.startswith("test") and split[4:].isalpha() and split[4:].isupper()
    )


def _split_matches(wanted: str, split: Any) -> bool:
    return split == wanted or (wanted == "test" and isinstance(split, str) and split.startswith("test"))


class GroundingCollator(Collator):
    """Batch = processor outputs + the GT box (normalized cxcywh, `targets`) + ids and pixel sizes."""

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        batch: dict[str, Any] = self.processor(
            [s["image"] for s in samples], [s["expression"] for s in samples]
        )
        size = torch.tensor([[s["width"], s["height"]] for s in samples], dtype=torch.float32)
        xywh = torch.tensor([s["bbox"] for s in samples], dtype=torch.float32)
        xyxy = torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], dim=1) / size.repeat(1, 2)
        batch["targets"] = box_convert(xyxy.clamp(0.0, 1.0), "xyxy", "cxcywh")  # inside the image
        batch["gt_bbox"], batch["image_size"] = xywh, size
        lists = ("sample_id", "expression", "image_path", "split")
        return self.copy(batch, samples, lists=lists, ids=("sent_id", "ref_id", "image_id"))


@READERS.register("refcoco")
class RefCOCOData(TaskData):
    format = "refcoco"
    collator = GroundingCollator
    eval_data_args = ("eval_splits",)
    options = {
        "dataset": "refcoco",
        "split_by": "unc",
        "images_dir": "images/mscoco/images/train2014",  # the refer toolkit's layout
        "text_field": "sent",  # refer's cleaned lowercase text; "raw" for the annotators' text
        "check_images": True,
    }

    def __init__(self, root: str, splits: dict[str, str | None], on_bad_sample: str = "error", **opts: Any):
        super().__init__(root, splits, on_bad_sample, **opts)
        for key, valid in (("dataset", DATASETS), ("split_by", SPLIT_BYS), ("text_field", TEXT_FIELDS)):
            if self.opts[key] not in valid:
                raise ValueError(f"data.options.{key} must be one of {valid}, got {self.opts[key]!r}")
        self.refs_path = refs_file(self.root, self.opts["dataset"], self.opts["split_by"])
        self.instances_path = instances_file(self.root, self.opts["dataset"])
        self.images_dir = self.root / Path(self.opts["images_dir"]).expanduser()
        self._refs: list[Any] | None = None
        self._instances: tuple[dict[int, Any], dict[int, Any]] | None = None

    def _load_refs(self) -> list[Any]:
        if self._refs is None:
            if not self.refs_path.is_file():
                raise FileNotFoundError(
                    f"{self.refs_path}: refs file not found (dataset={self.opts['dataset']!r}, "
                    f"split_by={self.opts['split_by']!r}; RefCOCO/RefCOCO+ use unc, RefCOCOg umd or google)"
                )
            refs = load_plain_pickle(self.refs_path)
            if not isinstance(refs, list):
                raise BadSampleError(f"{self.refs_path}: expected a list of refs, got {type(refs).__name__}")
            self._refs = refs
        return self._refs

    def _load_instances(self) -> tuple[dict[int, Any], dict[int, Any]]:
        """Images and annotations by id. An entry without an integer id, or a repeated id, makes the
        file unusable (which one a ref means cannot be told); fields are judged when a ref uses them."""
        if self._instances is None:
            data = load_json(self.instances_path)
            if not isinstance(data, dict) or not all(
                isinstance(data.get(k), list) for k in ("images", "annotations")
            ):
                raise BadSampleError(f"{self.instances_path}: expected 'images' and 'annotations' lists")
            self._instances = (
                self._by_id(data["images"], "images"),
                self._by_id(data["annotations"], "annotations"),
            )
        return self._instances

    def _by_id(self, entries: list[Any], what: str) -> dict[int, Any]:
        out: dict[int, Any] = {}
        for k, entry in enumerate(entries):
            eid = entry.get("id") if isinstance(entry, dict) else None
            if not is_int(eid):
                raise BadSampleError(f"{self.instances_path}: {what}[{k}]: needs an integer 'id'")
            if eid in out:
                raise BadSampleError(f"{self.instances_path}: {what}[{k}]: duplicate id {eid}")
            out[eid] = entry
        return out

    def read(self, split: str, problems: Problems) -> list[dict[str, Any]]:
        refs = self._load_refs()
        samples: list[dict[str, Any]] = []
        seen: set[int] = set()
        found, matched, ref_ids = set(), 0, set()
        for i, ref in enumerate(refs):
            if not isinstance(ref, dict):
                problems.report(self.refs_path, f"ref #{i}", "is not a dict")
                continue
            record = f"ref #{i} (ref_id={ref.get('ref_id')})"
            if not _known_split(ref.get("split")):  # reported by every split: it may be any of them
                problems.report(self.refs_path, record, f"unknown split {ref.get('split')!r}")
                continue
            found.add(ref["split"])
            if not _split_matches(split, ref["split"]):
                continue
            matched += 1
            if not all(is_int(ref.get(k)) for k in ("ref_id", "ann_id", "image_id")):
                problems.report(self.refs_path, record, "needs integer 'ref_id', 'ann_id' and 'image_id'")
                continue
            if ref["ref_id"] in ref_ids:
                problems.report(self.refs_path, record, "duplicate ref_id")
                continue
            ref_ids.add(ref["ref_id"])
            base = self._ref_sample(ref, split, problems)
            if base is None:
                continue
            for j, sent in enumerate(ref["sentences"]):
                sid = sent.get("sent_id") if isinstance(sent, dict) else None
                record = f"ref_id={ref['ref_id']} sentence #{j} (sent_id={sid})"
                text = sent.get(self.opts["text_field"]) if isinstance(sent, dict) else None
                if not is_int(sid):
                    problems.report(self.refs_path, record, "needs an integer 'sent_id'")
                elif not isinstance(text, str) or not text.strip():
                    problems.report(
                        self.refs_path, record, f"empty or missing {self.opts['text_field']!r} text"
                    )
                elif sid in seen:
                    problems.report(self.refs_path, record, "duplicate sent_id")
                elif bad_text := text_problem(text, repr(self.opts["text_field"])):
                    problems.report(self.refs_path, record, bad_text)
                else:
                    seen.add(sid)
                    samples.append(
                        {
                            **base,
                            "sample_id": str(sid),
                            "record": f"ref_id={ref['ref_id']} sent_id={sid}",
                            "sent_id": sid,
                            "expression": text.strip(),
                        }
                    )
        if not matched:
            names = sorted(str(s) for s in found)
            raise BadSampleError(f"{self.refs_path}: no refs of split {split!r}; the file has splits {names}")
        return samples

    def _ref_sample(self, ref: dict[str, Any], split: str, problems: Problems) -> dict[str, Any] | None:
        """What a ref's sentences share (box, image), or None once its problem is reported."""
        images, anns = self._load_instances()
        ref_id, ann_id, image_id = ref["ref_id"], ref["ann_id"], ref["image_id"]
        ann, image = anns.get(ann_id), images.get(image_id)
        problem, where, path = None, self.instances_path, Path()
        if ann is None:
            problem = f"ann_id={ann_id} is not among the annotations"
        elif image is None:
            problem = f"image_id={image_id} is not among the images"
        elif ann.get("image_id") != image_id:
            problem = f"ann_id={ann_id} belongs to image_id={ann.get('image_id')}, not {image_id}"
        elif not (is_int(image.get("width")) and is_int(image.get("height"))):
            problem = f"image_id={image_id} needs integer 'width' and 'height'"
        elif bad_box := _box_problem(ann.get("bbox"), image["width"], image["height"]):
            problem = f"ann_id={ann_id}: {bad_box}"
        elif not isinstance(ref.get("sentences"), list) or not ref["sentences"]:
            problem, where = "empty or missing 'sentences' list", self.refs_path
        else:
            name = image.get("file_name") or f"COCO_train2014_{image_id:012d}.jpg"
            path, problem = path_inside(self.images_dir, name)
            if problem is not None:
                problem = f"image_id={image_id}: {problem}"
            elif self.opts["check_images"] and not path.is_file():
                problem, where = f"image file not found (image_id={image_id})", path
        if problem is not None:
            problems.report(where, f"ref_id={ref_id}", problem)
            return None
        return {
            "ref_id": ref_id,
            "ann_id": ann_id,
            "image_id": image_id,
            "image_path": str(path),
            "width": image["width"],
            "height": image["height"],
            "size_from": "instances.json",
            "bbox": [float(v) for v in ann["bbox"]],
            "split": ref["split"],  # its own name: "test" reads testA and testB, reported apart
        }

    # -- what the head and tokenizer need --------------------------------------------------------
    def data_args(self) -> dict[str, Any]:
        """Per evaluated stage, the split names its samples carry (metric keys acc@0.5_testA, ...):
        the configured name, or for refer's "test" every test* split the refs file has."""
        out: dict[str, list[str]] = {}
        names = {r.get("split") for r in self._load_refs() if isinstance(r, dict)}
        for stage in ("val", "test"):
            wanted = self.splits.get(stage)
            if wanted:
                out[stage] = sorted(n for n in names if _known_split(n) and _split_matches(wanted, n))
                out[stage] = out[stage] or [wanted]  # none in the file: reading it will say so
        return {"eval_splits": out}

    def texts(self) -> Iterable[str]:
        return [s["expression"] for s in self.samples("train")]
