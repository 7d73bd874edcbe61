"""Visual Genome region descriptions for dense captioning, prepared as DenseCap prepared them.

    <root>/region_descriptions.json   [{"id": image_id, "regions": [region, ...]}, ...]
    <root>/image_data.json            [{"image_id": ..., "width", "height", "url", ...}, ...]
    <root>/densecap_splits.json       {"train": [image_id, ...], "val": [...], "test": [...]}, from
                                      densecap's info/ (77,398 / 5,000 / 5,000 images); not part of VG
    <root>/VG_100K/<image_id>.jpg     or VG_100K_2/<image_id>.jpg (VG ships its images in two parts)

Versions. A v1.2 region holds ``region_id``, ``image_id``, ``phrase``, ``x``, ``y``, ``width``,
``height``; v1.0 (the file DenseCap's preprocess.py was written for) named the region's id ``id`` and
its image ``image``. Both list images as ``{"id", "regions"}``. ``data.options.version: auto`` reads
the layout from the file; ``"1.2"`` or ``"1.0"`` refuses a file of the other one, naming the file,
the image and the region. image_data.json names the image ``image_id`` in v1.2 and ``id`` in v1.0;
both are read. Boxes are pixels of the original image, ``x``/``y`` the top-left corner.

DenseCap's preprocessing, on every split: a phrase has a few characters replaced (½ -> "half",
é -> "e", ° -> " degree"...), is lowercased, loses ASCII punctuation and is split on white space;
a phrase of more than ``max_words`` words (15) is dropped with its region, as DenseCap drops it (it
does not truncate; its "0 disables" in fact dropped every phrase, here 0 keeps all); a box is
clipped to its image; an image left without regions is dropped (DenseCap keeps only images with
regions). The drops and clips are counted per split (``preprocessing``) and logged.

Bad records are an error naming the file, the image id and the region id, or under
``data.on_bad_sample=skip`` a counted skip of that region (or image): a field missing or not a
finite number, a width or height that is not positive, a box with no pixel inside its image
(DenseCap clamps it to a one-pixel sliver at the edge), an empty phrase, a region id seen twice, a
region in the other version's layout, and a split's image that region_descriptions.json or
image_data.json does not list, or whose file is in neither image folder.

One sample per image (id = the image id) with all its kept regions; the collate makes one
`Instances` of them per image (vltasks/batch.py).
"""

from __future__ import annotations

import logging
import math
import string
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torchvision.ops import box_convert
from vltasks.datamodules.base import READERS, BadSampleError, Collator, Problems, TaskData, load_json
from vltasks.datamodules.checks import is_int, text_problem
from vltasks.datamodules.media import path_inside

from vltasks.batch import Instances
from vltasks.objectives import IGNORE_INDEX

log = logging.getLogger(__name__)

VERSIONS = ("auto", "1.2", "1.0")
LAYOUTS = {"1.2": ("region_id", "image_id"), "1.0": ("id", "image")}  # (region id, image id) fields
ID_KEYS = tuple(keys[0] for keys in LAYOUTS.values())
BOX_FIELDS = ("x", "y", "width", "height")
# DenseCap's replacements before lowercasing (preprocess.py, words_preprocess)
REPLACEMENTS = (
    ("½", "half"),
    ("—", "-"),
    ("™", ""),
    ("¢", "cent"),
    ("ç", "c"),
    ("û", "u"),
    ("é", "e"),
    ("°", " degree"),
    ("è", "e"),
    ("…", ""),
)
_NO_PUNCTUATION = str.maketrans("", "", string.punctuation)


def densecap_words(phrase: str) -> list[str]:
    """A region phrase as DenseCap tokenizes it: replacements, lowercase, no ASCII punctuation
    (so "t-shirt" is "tshirt"), split on white space. Other non-ASCII letters are kept (DenseCap's
    Python 2 ``str()`` stopped on them)."""
    for old, new in REPLACEMENTS:
        phrase = phrase.replace(old, new)
    return phrase.lower().translate(_NO_PUNCTUATION).split()


def _version_of(region: dict[str, Any]) -> str | None:
    for version, keys in LAYOUTS.items():
        if any(k in region for k in keys):
            return version
    return None


class DenseCapCollator(Collator):
    """Images, and per image one `Instances` of its regions (``targets``): ``boxes`` normalized
    cxcywh relative to the original image, ``pixel_boxes`` (x1, y1, x2, y2 pixels, for the metric),
    the phrase tokens ``input_ids`` / ``attention_mask`` and ``labels`` (-100 on padding) for
    teacher forcing, and the ``phrases`` the metric compares with; plus ``image_size`` [B, 2] (w, h)."""

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        batch: dict[str, Any] = self.processor(images=[s["image"] for s in samples])
        text = self.processor.text([p for s in samples for p in s["phrases"]])  # one length for all
        ids, mask = text["input_ids"], text["attention_mask"]
        labels = ids.masked_fill(mask == 0, IGNORE_INDEX)
        size = torch.tensor([[s["width"], s["height"]] for s in samples], dtype=torch.float32)
        targets, start = [], 0
        for s, wh in zip(samples, size):
            n = len(s["phrases"])
            xyxy = torch.as_tensor(s["boxes"], dtype=torch.float32).reshape(n, 4)
            rows = slice(start, start + n)
            targets.append(
                Instances(
                    boxes=box_convert(xyxy / wh.repeat(2), "xyxy", "cxcywh"),
                    pixel_boxes=xyxy,
                    input_ids=ids[rows],
                    attention_mask=mask[rows],
                    labels=labels[rows],
                    phrases=list(s["phrases"]),
                )
            )
            start += n
        batch["targets"], batch["image_size"] = targets, size
        return self.copy(batch, samples, lists=("sample_id", "image_path"), ids=("image_id",))


@READERS.register("visual_genome")
class VisualGenomeData(TaskData):
    format = "visual_genome"
    collator = DenseCapCollator
    options = {
        "version": "auto",  # auto | "1.2" | "1.0": the region file's layout
        "regions_file": "region_descriptions.json",
        "image_data_file": "image_data.json",
        "splits_file": "densecap_splits.json",
        "image_dirs": ["VG_100K", "VG_100K_2"],  # searched in this order for <image_id>.jpg
        "max_words": 15,  # DenseCap's max_token_length: longer phrases are dropped; 0 keeps all
        "check_images": True,
    }

    def __init__(self, root: str, splits: dict[str, str | None], on_bad_sample: str = "error", **opts: Any):
        super().__init__(root, splits, on_bad_sample, **opts)
        if str(self.opts["version"]) not in VERSIONS:
            raise ValueError(f"data.options.version must be one of {VERSIONS}, got {self.opts['version']!r}")
        if not is_int(self.opts["max_words"]) or self.opts["max_words"] < 0:
            raise ValueError(
                f"data.options.max_words must be an integer >= 0, got {self.opts['max_words']!r}"
            )
        dirs = self.opts["image_dirs"]
        if isinstance(dirs, str) or not isinstance(dirs, Sequence) or not dirs:
            raise ValueError(f"data.options.image_dirs must be a list of folder names, got {dirs!r}")
        self.regions_path = self.root / self.opts["regions_file"]
        self.image_data_path = self.root / self.opts["image_data_file"]
        self.splits_path = self.root / self.opts["splits_file"]
        self.version: str | None = None  # the region file's layout, once read
        self.preprocessing: dict[str, dict[str, int]] = {}  # per split: what DenseCap's rules dropped
        self._regions: dict[int, list[Any]] | None = None
        self._sizes: dict[int, Any] | None = None
        self._split_ids: dict[str, Any] | None = None

    # -- the three files, each read once for every split -------------------------------------------
    def _load_regions(self) -> dict[int, list[Any]]:
        """Region lists by image id. An image entry without an integer id or a regions list, or a
        repeated id, makes the file unusable (which image a split means cannot be told)."""
        if self._regions is None:
            path = self.regions_path
            data = load_json(path)
            if not isinstance(data, list):
                raise BadSampleError(f"{path}: expected a list of images {{'id', 'regions'}}")
            out: dict[int, list[Any]] = {}
            for k, entry in enumerate(data):
                iid = entry.get("id", entry.get("image_id")) if isinstance(entry, dict) else None
                if not is_int(iid) or not isinstance(entry.get("regions"), list):
                    raise BadSampleError(f"{path}: image #{k}: needs an integer 'id' and a 'regions' list")
                if iid in out:
                    raise BadSampleError(f"{path}: image #{k}: image id {iid} is listed twice")
                out[iid] = entry["regions"]
            self.version = self._file_version(out)
            self._regions = out
        return self._regions

    def _file_version(self, regions: dict[int, list[Any]]) -> str:
        """The layout of the file's first region; a named version that differs is refused here."""
        wanted = str(self.opts["version"])
        for iid, rs in regions.items():
            for j, region in enumerate(rs):
                found = _version_of(region) if isinstance(region, dict) else None
                if found is None:
                    continue  # judged with its split
                if wanted not in ("auto", found):
                    fields = "', '".join(LAYOUTS[found])
                    raise BadSampleError(
                        f"{self.regions_path}: image_id={iid} region #{j}: a v{found} region ('{fields}') "
                        f"but data.options.version is {wanted!r}: is this the region file of another version?"
                    )
                return found
        return "1.2" if wanted == "auto" else wanted

    def _load_sizes(self) -> dict[int, Any]:
        if self._sizes is None:
            path = self.image_data_path
            data = load_json(path)
            if not isinstance(data, list):
                raise BadSampleError(f"{path}: expected a list of images {{'image_id', 'width', 'height'}}")
            out: dict[int, Any] = {}
            for k, entry in enumerate(data):
                iid = entry.get("image_id", entry.get("id")) if isinstance(entry, dict) else None
                if not is_int(iid):
                    raise BadSampleError(f"{path}: image #{k}: needs an integer 'image_id' (v1.0: 'id')")
                if iid in out:
                    raise BadSampleError(f"{path}: image #{k}: image id {iid} is listed twice")
                out[iid] = entry
            self._sizes = out
        return self._sizes

    def _load_split_ids(self, split: str) -> list[Any]:
        if self._split_ids is None:
            data = load_json(self.splits_path)
            if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
                raise BadSampleError(f"{self.splits_path}: expected {{split name: [image ids]}}")
            self._split_ids = data
        if split not in self._split_ids:
            raise BadSampleError(
                f"{self.splits_path}: no split {split!r}; the file has splits {sorted(self._split_ids)}"
            )
        return self._split_ids[split]

    # -- one split -----------------------------------------------------------------------------------
    def read(self, split: str, problems: Problems) -> list[dict[str, Any]]:
        ids = self._load_split_ids(split)
        regions, sizes = self._load_regions(), self._load_sizes()
        stats = {"images": 0, "regions": 0, "too_long": 0, "clipped": 0, "images_without_regions": 0}
        samples: list[dict[str, Any]] = []
        seen_images: set[int] = set()
        seen_regions: set[int] = set()
        for k, iid in enumerate(ids):
            record = f"image_id={iid}"
            if not is_int(iid):
                problems.report(self.splits_path, f"{split}[{k}]", f"image id {iid!r} is not an integer")
                continue
            if iid in seen_images:
                problems.report(self.splits_path, record, f"listed twice in split {split!r}")
                continue
            seen_images.add(iid)
            image = self._image(iid, split, regions, sizes, problems)
            if image is None:
                continue
            kept = self._regions_of(iid, regions[iid], image, seen_regions, stats, problems)
            if not kept:
                stats["images_without_regions"] += 1
                continue
            region_ids, boxes, phrases = zip(*kept)
            stats["images"] += 1
            stats["regions"] += len(kept)
            samples.append(
                {
                    **image,
                    "sample_id": str(iid),
                    "record": record,
                    "image_id": iid,
                    "region_ids": list(region_ids),
                    "boxes": np.asarray(boxes, dtype=np.float32),  # [N, 4] pixel x1 y1 x2 y2, clipped
                    "phrases": list(phrases),
                }
            )
        self.preprocessing[split] = stats
        if stats["too_long"] or stats["clipped"] or stats["images_without_regions"]:
            log.warning(
                "%s split %r: DenseCap preprocessing kept %d regions in %d images; dropped %d phrases "
                "longer than %d words and %d images left without regions; clipped %d boxes to their image",
                self.format,
                split,
                stats["regions"],
                stats["images"],
                stats["too_long"],
                self.opts["max_words"],
                stats["images_without_regions"],
                stats["clipped"],
            )
        return samples

    def _image(
        self, iid: int, split: str, regions: dict[int, Any], sizes: dict[int, Any], problems: Problems
    ) -> dict[str, Any] | None:
        """The image's path and size, or None once its problem is reported."""
        record = f"image_id={iid}"
        if iid not in regions:
            problems.report(
                self.splits_path, record, f"in split {split!r} but not in {self.regions_path.name}"
            )
            return None
        entry = sizes.get(iid)
        if entry is None:
            problems.report(self.image_data_path, record, "not listed, so its size is unknown")
            return None
        w, h = entry.get("width"), entry.get("height")
        if not (is_int(w) and is_int(h) and w > 0 and h > 0):
            problems.report(
                self.image_data_path, record, f"needs positive integer 'width' and 'height', got {w!r}, {h!r}"
            )
            return None
        path = None
        for folder in self.opts["image_dirs"]:
            candidate, problem = path_inside(self.root, str(folder), f"{iid}.jpg")
            if problem is not None:
                problems.report(self.root, record, problem)
                return None
            if not self.opts["check_images"] or candidate.is_file():
                path = candidate
                break
        if path is None:
            folders = " or ".join(f"{f}/" for f in self.opts["image_dirs"])
            problems.report(self.root, record, f"image file {iid}.jpg not found in {folders}")
            return None
        return {"image_path": str(path), "width": w, "height": h, "size_from": self.image_data_path.name}

    def _regions_of(
        self,
        iid: int,
        rows: list[Any],
        image: dict[str, Any],
        seen: set[int],
        stats: dict[str, int],
        problems: Problems,
    ) -> list[tuple[int, list[float], str]]:
        """(region id, clipped box, phrase) of an image's good regions that DenseCap's rules keep."""
        id_key, image_key = LAYOUTS[self.version or "1.2"]
        good = []  # (record, region id, region) of the regions that are well formed
        for j, region in enumerate(rows):
            named = [region.get(k) for k in (id_key, *ID_KEYS)] if isinstance(region, dict) else []
            rid = next((r for r in named if is_int(r)), None)  # the record's name, whatever its layout
            record = f"image_id={iid} region_id={rid}" if rid is not None else f"image_id={iid} region #{j}"
            problem = self._region_problem(region, iid, id_key, image_key, seen)
            if problem is not None:
                problems.report(self.regions_path, record, problem)
                continue
            seen.add(rid)
            good.append((record, rid, region))
        if not good:
            return []
        written = torch.tensor([[float(r[k]) for k in BOX_FIELDS] for _, _, r in good], dtype=torch.float64)
        corners = box_convert(written, "xywh", "xyxy")
        limit = torch.tensor([image["width"], image["height"]], dtype=torch.float64).repeat(2)
        clipped = torch.minimum(corners.clamp(min=0), limit)  # DenseCap clips boxes to the image
        sides = (clipped[:, 2:] - clipped[:, :2]).min(1).values.tolist()
        moved = (clipped != corners).any(1).tolist()
        kept = []
        for (record, rid, region), box, side, was_clipped in zip(good, clipped.tolist(), sides, moved):
            if side < 1:
                box_as_written = [region[k] for k in BOX_FIELDS]
                problems.report(
                    self.regions_path,
                    record,
                    f"box [x, y, width, height] = {box_as_written} has no pixel inside the "
                    f"{image['width']}x{image['height']} image",
                )
                continue
            stats["clipped"] += int(was_clipped)
            words = densecap_words(region["phrase"])
            if self.opts["max_words"] and len(words) > self.opts["max_words"]:
                stats["too_long"] += 1
                continue
            kept.append((rid, box, " ".join(words)))
        return kept

    def _region_problem(
        self, region: Any, iid: int, id_key: str, image_key: str, seen: set[int]
    ) -> str | None:
        """What is wrong with a region record as written (before DenseCap's rules), or None."""
        if not isinstance(region, dict):
            return "is not an object"
        other = _version_of(region)
        if other is not None and other != self.version:
            fields = "', '".join(LAYOUTS[other])
            return f"has the v{other} fields '{fields}' in a v{self.version} file"
        rid = region.get(id_key)
        if not is_int(rid):
            return f"needs an integer {id_key!r} (v{self.version})"
        if rid in seen:
            return f"region id {rid} is listed twice"
        if region.get(image_key) != iid:
            return f"{image_key!r} is {region.get(image_key)!r}, but the region is listed under image {iid}"
        values = [region.get(k) for k in BOX_FIELDS]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            return f"needs numbers x, y, width, height, got {values}"
        if not all(math.isfinite(v) for v in values):
            return f"box {values} holds a NaN or infinite number"
        if values[2] <= 0 or values[3] <= 0:
            return f"box [x, y, width, height] = {values} has a non-positive width or height"
        phrase = region.get("phrase")
        if not isinstance(phrase, str):
            return f"needs a 'phrase' text, got {phrase!r}"
        if bad := text_problem(phrase, "'phrase'"):
            return bad
        if not densecap_words(phrase):
            return f"empty phrase {phrase!r} (no word left once punctuation is removed)"
        return None

    # -- what the tokenizer needs --------------------------------------------------------------------
    def texts(self) -> Iterable[str]:
        return [p for s in self.samples("train") for p in s["phrases"]]
