"""COCO's caption annotation files (``annotations/captions_<split>2014.json``), as the COCO caption
evaluation reads them: the references of each image, for scoring a results file (`vltasks score`).

    {"images": [{"id", "file_name", ...}], "annotations": [{"id", "image_id", "caption"}], ...}

Not a training reader (Karpathy's splits are, datamodules/karpathy_caption.py): only the references.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vltasks.datamodules.base import BadSampleError, load_json
from vltasks.datamodules.checks import is_int


def read_coco_captions(path: str | Path) -> dict[int, list[str]]:
    """image_id -> its reference captions, in file order; a record without an integer image_id or a
    caption string, or naming an image the file does not list, is an error naming the record."""
    path = Path(path)
    data: Any = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise BadSampleError(f"{path}: expected an object with an 'annotations' list (COCO captions)")
    images = data.get("images")
    refs: dict[int, list[str]] = {}
    if isinstance(images, list):
        for i, img in enumerate(images):
            if not isinstance(img, dict) or not is_int(img.get("id")):
                raise BadSampleError(f"{path}: image #{i}: needs an integer 'id'")
            refs.setdefault(img["id"], [])
    for i, ann in enumerate(data["annotations"]):
        ident = ann.get("id") if isinstance(ann, dict) else None
        record = f"annotation #{i} (id={ident})"
        if not isinstance(ann, dict) or not is_int(ann.get("image_id")):
            raise BadSampleError(f"{path}: {record}: needs an integer 'image_id'")
        if not isinstance(ann.get("caption"), str):
            raise BadSampleError(f"{path}: {record}: needs a 'caption' string")
        if isinstance(images, list) and ann["image_id"] not in refs:
            raise BadSampleError(f"{path}: {record}: image_id={ann['image_id']} is not among the images")
        refs.setdefault(ann["image_id"], []).append(ann["caption"])
    empty = [k for k, v in refs.items() if not v]
    if empty:
        raise BadSampleError(f"{path}: images without captions, e.g. image_id={empty[:3]}")
    return refs
