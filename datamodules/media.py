"""Media for the readers: file names from the data kept inside their folder, images opened with
checks and named errors, and samples that fail to load reported instead of crashing a worker.

Readers build every path from the data through `path_inside`, so a record naming ``../../etc/passwd``
or ``/etc/passwd`` is a bad record (reported, or counted under ``data.on_bad_sample=skip``), never a
file read. Images are opened by `ImageLoader` in the DataLoader's workers: an unreadable, truncated
or oversized file (a decompression bomb) and an image whose size differs from what the annotation
says raise `BadSampleError` naming the file and the record. `SampleDataset` turns that error into a
failed-sample marker, so the message reaches the main process as one line, where the DataModule
raises it (``error``) or drops the sample from its batch and counts it (``skip``).

Video (the next readers): ``open_video(path, record, num_frames, train, generator)`` will return
the sampled frames the same way (seek to each segment's frame, never decode all), with the same
named errors for missing, empty, corrupt or truncated files.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from PIL import Image
from torch.utils.data import Dataset

from vltasks.batch import FAILED

# PIL's own default limit (about 89 megapixels, a quarter gigabyte of RGB): far above any image of
# the supported datasets, far below a 14000 x 14000 decompression bomb.
DEFAULT_MAX_PIXELS = 89_478_485


class BadSampleError(ValueError):
    """A record of a dataset file is unusable; the message names file, record and problem."""


def path_inside(base: Path, *names: Any) -> tuple[Path | None, str | None]:
    """``base / names...`` if it stays inside ``base``, else (None, the problem).

    The check is on the names as written (absolute paths, drive letters, ``..`` that climbs out),
    not on where symlinks inside the dataset point: a dataset may link its image folder elsewhere.
    """
    parts: list[str] = []
    for name in names:
        if not isinstance(name, str) or not name or "\x00" in name or not _encodable(name):
            return None, f"file name {name!r} is not a usable relative path"
        posix = name.replace("\\", "/")
        if PurePosixPath(posix).is_absolute() or (len(posix) > 1 and posix[1] == ":"):
            return None, f"file name {name!r} is absolute: names in the data must be relative to {base}"
        parts.append(posix)
    joined = os.path.normpath(os.path.join(*parts))
    if joined == ".." or joined.startswith("../") or joined.startswith("/"):
        return None, f"file name {'/'.join(parts)!r} leaves {base}"
    return base / joined, None


def _encodable(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def open_image(path: str | Path, record: str, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """The decoded RGB image, or `BadSampleError` naming the file and the record: missing,
    unreadable or truncated, or more than ``max_pixels`` pixels (checked on the header, before any
    decoding: a small PNG can declare a 14000 x 14000 image)."""
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # our limit below replaces PIL's process-wide one
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if max_pixels and w * h > max_pixels:
                    raise BadSampleError(
                        f"{path}: {record}: image is {w}x{h} = {w * h:,} pixels, above the limit of "
                        f"{max_pixels:,} (data.max_image_pixels; a decompression bomb?)"
                    )
                return im.convert("RGB")
    except FileNotFoundError as e:
        raise BadSampleError(f"{path}: {record}: image file not found") from e
    except BadSampleError:
        raise
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError... on broken files
        raise BadSampleError(f"{path}: {record}: unreadable image ({type(e).__name__}: {e})") from e
    finally:
        Image.MAX_IMAGE_PIXELS = limit


class ImageLoader:
    """A dataset's ``load``: the sample's image, checked against the size the annotation gives
    (``width`` / ``height`` in the sample, from the file ``size_from`` names). Picklable, so it runs
    in the DataLoader's workers."""

    def __init__(self, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> None:
        self.max_pixels = max_pixels

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        path, record = sample["image_path"], sample["record"]
        image = open_image(path, record, self.max_pixels)
        want = (sample.get("width"), sample.get("height"))
        if want[0] is not None and image.size != want:
            raise BadSampleError(
                f"{path}: {record}: image is {image.size[0]}x{image.size[1]} but "
                f"{sample.get('size_from', 'the annotation')} says {want[0]}x{want[1]}"
            )
        return {**sample, "image": image}


class SampleDataset(Dataset):
    """A list of validated samples; ``load`` adds what the collate needs (the decoded image).

    A sample that fails to load comes back as ``{"sample_id", FAILED: message}``: the collate
    leaves it out of the batch and the DataModule decides (raise, or drop and count).

    ``draws_random``: whether ``load`` draws from the global RNGs (a training clip's frames). Only
    then does the DataModule seed each sample (`SeededSamples`); a load that draws nothing needs no
    seed, and seeding 64 samples costs 2% of a tiny model's training step. tests/test_contracts.py
    checks that every reader that draws says so."""

    def __init__(
        self,
        samples: list[dict[str, Any]],
        load: Callable[[dict[str, Any]], dict[str, Any]],
        draws_random: bool = False,
    ) -> None:
        self.samples = samples
        self.load = load
        self.draws_random = draws_random

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, Any]:
        sample = self.samples[i]
        try:
            return self.load(sample)
        except BadSampleError as e:
            return {"sample_id": sample["sample_id"], FAILED: str(e)}


class CollateLoaded:
    """Wraps a reader's collate: the batch is made of the samples that loaded, and lists the others
    under ``failed`` as (sample id, message); a batch of failures only is ``{"sample_id": []}``."""

    def __init__(self, collate: Callable[[list[dict[str, Any]]], dict[str, Any]]) -> None:
        self.collate = collate

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        good = [s for s in samples if FAILED not in s]
        failed = [(s["sample_id"], s[FAILED]) for s in samples if FAILED in s]
        batch = self.collate(good) if good else {"sample_id": []}
        if failed:
            batch[FAILED] = failed
        return batch
