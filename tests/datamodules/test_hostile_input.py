"""Corrupt and hostile copies of every reader's synthetic files (issue 14): each case ends in an
error naming the file and the record, or (``data.on_bad_sample=skip``) a counted skip, and no
reader opens a path outside its data folder whatever the data says."""

from __future__ import annotations

import builtins
import functools
import json
import math
import pickle
import shutil
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from vltasks.datamodules import READERS, BadSampleError
from vltasks.datamodules.media import ImageLoader, SampleDataset
from vltasks.datamodules.synthetic import WRITERS

from vltasks.batch import FAILED
from vltasks.config import load_run

SURROGATE = "what is \ud800 here?"
DEMO = {
    "vqav2": "vqa_demo",
    "refcoco": "refcoco_demo",
    "snli_ve": "snli_ve_demo",
    "vcr": "vcr_demo",
    "visual7w": "visual7w_demo",
    "karpathy": "retrieval_demo",
}


@functools.cache
def _spec(fmt: str):
    return next(t for t in load_run(DEMO[fmt]).tasks.values()).data


@pytest.fixture(scope="module")
def worlds(tmp_path_factory) -> dict[str, Path]:
    out = {}
    for fmt in DEMO:
        d = _spec(fmt)
        root = tmp_path_factory.mktemp(fmt)
        WRITERS.get(fmt)(root, {d.split("train"): 4, d.split("val"): 3}, seed=2)
        out[fmt] = root
    return out


# -- editing the official files ------------------------------------------------------------------
def _json(path: Path, edit: Callable[[Any], Any]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    data = edit(data) or data
    path.write_text(json.dumps(data), encoding="utf-8")  # NaN and surrogates are written as JSON has them


def _jsonl(path: Path, edit: Callable[[dict], Any]) -> None:
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    edit(lines[0])
    path.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")


def _refs(root: Path, edit: Callable[[list], Any]) -> None:
    path = root / "refcoco" / "refs(unc).p"
    refs = pickle.loads(path.read_bytes())  # our own synthetic file: trusted here
    edit(refs)
    path.write_bytes(pickle.dumps(refs, protocol=2))


def _first_train_ref(refs: list) -> dict:
    return next(r for r in refs if r["split"] == "train")


def _instances_of_first_train_ref(root: Path, edit: Callable[[dict, dict], None]) -> None:
    refs = pickle.loads((root / "refcoco" / "refs(unc).p").read_bytes())
    ref = _first_train_ref(refs)

    def apply(d: dict) -> None:
        ann = next(a for a in d["annotations"] if a["id"] == ref["ann_id"])
        image = next(i for i in d["images"] if i["id"] == ref["image_id"])
        edit(ann, image)

    _json(root / "refcoco" / "instances.json", apply)


def _vcr_meta(root: Path, edit: Callable[[dict], None]) -> None:
    line = json.loads((root / "train.jsonl").read_text().splitlines()[0])
    _json(root / "vcr1images" / line["metadata_fn"], edit)


def _first_qa(d: dict) -> dict:
    return next(im for im in d["images"] if im["split"] == "train")["qa_pairs"][0]


def _first_train_image(d: dict) -> dict:
    return next(im for im in d["images"] if im["split"] == "train")


V7W, KARPATHY, VQA_Q = (
    "dataset_v7w_telling.json",
    "dataset_coco.json",
    "v2_OpenEnded_mscoco_train2014_questions.json",
)
VQA_A = "v2_mscoco_train2014_annotations.json"

# (format, what the data says, edit(root), the file the error names, what it says)
CASES: list[tuple[str, str, Callable[[Path], None], str, str]] = [
    # -- paths taken from the data must stay inside the data folder ------------------------------
    *[
        (
            "refcoco",
            f"file_name {name}",
            lambda r, n=name: _instances_of_first_train_ref(r, lambda a, i: i.update(file_name=n)),
            "instances.json",
            why,
        )
        for name, why in (("../../../../etc/passwd", "leaves"), ("/etc/passwd", "is absolute"))
    ],
    *[
        (
            "snli_ve",
            f"Flickr30K_ID {name}",
            lambda r, n=name: _jsonl(r / "snli_ve_train.jsonl", lambda x: x.update(Flickr30K_ID=n)),
            "snli_ve_train.jsonl",
            why,
        )
        for name, why in (("../../../etc/passwd", "leaves"), ("/etc/passwd", "is absolute"))
    ],
    *[
        (
            "vcr",
            f"{key} {name}",
            lambda r, k=key, n=name: _jsonl(r / "train.jsonl", lambda x: x.update({k: n})),
            "train.jsonl",
            why,
        )
        for key in ("img_fn", "metadata_fn")
        for name, why in (("../../../etc/passwd", "leaves"), ("/etc/passwd", "is absolute"))
    ],
    *[
        (
            "visual7w",
            f"filename {name}",
            lambda r, n=name: _json(r / V7W, lambda d: _first_train_image(d).update(filename=n)),
            V7W,
            why,
        )
        for name, why in (("../../etc/passwd", "leaves"), ("/etc/passwd", "is absolute"))
    ],
    (
        "karpathy",
        "filepath ../../../../etc + filename passwd",
        lambda r: _json(
            r / KARPATHY,
            lambda d: _first_train_image(d).update(filepath="../../../../etc", filename="passwd"),
        ),
        KARPATHY,
        "leaves",
    ),
    (
        "karpathy",
        "filename /etc/passwd",
        lambda r: _json(r / KARPATHY, lambda d: _first_train_image(d).update(filename="/etc/passwd")),
        KARPATHY,
        "is absolute",
    ),
    # -- numbers that are not finite ---------------------------------------------------------------
    *[
        (
            "refcoco",
            f"bbox {box}",
            lambda r, b=box: _instances_of_first_train_ref(r, lambda a, i: a.update(bbox=b)),
            "instances.json",
            "NaN or infinite",
        )
        for box in ([math.nan, 1.0, 10.0, 10.0], [1.0, 1.0, math.nan, math.nan], [1.0, 1.0, math.inf, 5.0])
    ],
    *[
        (
            "vcr",
            f"metadata box {box}",
            lambda r, b=box: _vcr_meta(r, lambda m: m["boxes"].__setitem__(0, b)),
            ".json",
            "NaN or infinite",
        )
        for box in ([math.nan, 1.0, 10.0, 10.0, 0.9], [1.0, 1.0, math.inf, 10.0, 0.9])
    ],
    # -- text no tokenizer can take (a lone surrogate, JSON's "\ud800") ------------------------------
    (
        "vqav2",
        "question with a lone surrogate",
        lambda r: _json(r / VQA_Q, lambda d: d["questions"][0].update(question=SURROGATE)),
        VQA_Q,
        "UTF-8 cannot encode",
    ),
    (
        "vqav2",
        "answer with a lone surrogate",
        lambda r: _json(r / VQA_A, lambda d: d["annotations"][0]["answers"][0].update(answer=SURROGATE)),
        VQA_A,
        "UTF-8 cannot encode",
    ),
    (
        "refcoco",
        "expression with a lone surrogate",
        lambda r: _refs(r, lambda refs: _first_train_ref(refs)["sentences"][0].update(sent=SURROGATE)),
        "refs(unc).p",
        "UTF-8 cannot encode",
    ),
    (
        "snli_ve",
        "hypothesis with a lone surrogate",
        lambda r: _jsonl(r / "snli_ve_train.jsonl", lambda x: x.update(sentence2=SURROGATE)),
        "snli_ve_train.jsonl",
        "UTF-8 cannot encode",
    ),
    (
        "vcr",
        "question token with a lone surrogate",
        lambda r: _jsonl(r / "train.jsonl", lambda x: x["question"].__setitem__(0, "\ud800")),
        "train.jsonl",
        "UTF-8 cannot encode",
    ),
    (
        "visual7w",
        "question with a lone surrogate",
        lambda r: _json(r / V7W, lambda d: _first_qa(d).update(question=SURROGATE)),
        V7W,
        "UTF-8 cannot encode",
    ),
    (
        "karpathy",
        "caption with a lone surrogate",
        lambda r: _json(r / KARPATHY, lambda d: _first_train_image(d)["sentences"][0].update(raw=SURROGATE)),
        KARPATHY,
        "UTF-8 cannot encode",
    ),
    # -- duplicates and contradictions -----------------------------------------------------------
    (
        "vqav2",
        "two annotations for one question",
        lambda r: _json(r / VQA_A, lambda d: d["annotations"].append(dict(d["annotations"][0]))),
        VQA_A,
        "a second annotation for this question_id",
    ),
    (
        "visual7w",
        "a wrong choice equal to the answer",
        lambda r: _json(
            r / V7W, lambda d: _first_qa(d)["multiple_choices"].__setitem__(1, _first_qa(d)["answer"])
        ),
        V7W,
        "a wrong choice equals the answer",
    ),
]


def _reader(fmt: str, root: Path, policy: str):
    d = _spec(fmt)
    return READERS.get(fmt)(str(root), d.splits, policy, **d.options)


@pytest.fixture()
def opened_outside(monkeypatch, tmp_path):
    """Paths a reader touches outside the temporary folders (os.stat, as is_file uses, and open)."""
    import os

    seen: list[str] = []
    base = str(tmp_path.parent.parent)

    def spy(fn):
        def wrapped(path, *args, **kwargs):
            if isinstance(path, (str, Path)) and not os.path.realpath(path).startswith(base):
                seen.append(str(path))
            return fn(path, *args, **kwargs)

        return wrapped

    for fmt in DEMO:
        _spec(fmt)  # configs are read before the spy starts
    monkeypatch.setattr(os, "stat", spy(os.stat))
    monkeypatch.setattr(builtins, "open", spy(builtins.open))
    return seen


@pytest.mark.parametrize(
    ("fmt", "what", "edit", "file", "says"), CASES, ids=[f"{c[0]}: {c[1]}" for c in CASES]
)
def test_each_corruption_is_named_or_counted(fmt, what, edit, file, says, worlds, tmp_path, opened_outside):
    root = tmp_path / fmt
    shutil.copytree(worlds[fmt], root)
    edit(root)
    with pytest.raises(BadSampleError) as err:
        _reader(fmt, root, "error").samples("train")
    message = str(err.value)
    assert file in message and says in message, message
    message.encode("utf-8")  # the report itself prints (a surrogate in it is escaped)
    skipping = _reader(fmt, root, "skip")
    kept = skipping.samples("train")
    clean = _reader(fmt, worlds[fmt], "error").samples("train")
    assert skipping.skipped[_spec(fmt).split("train")] >= 1 and len(kept) < len(clean)
    assert opened_outside == [], f"{what}: opened {opened_outside}"


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height pixels and holds none (PIL reads the header lazily)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = lambda kind, data: (  # noqa: E731
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    )
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "unreadable image"),
        (_png_header(14000, 14000), "image is 14000x14000 = 196,000,000 pixels, above the limit"),
        ("truncated", "unreadable image"),
    ],
    ids=["zero bytes", "decompression bomb", "truncated"],
)
def test_images_that_cannot_be_decoded_are_named_with_their_record(content, says, worlds, tmp_path):
    root = tmp_path / "vqav2"
    shutil.copytree(worlds["vqav2"], root)
    samples = _reader("vqav2", root, "error").samples("train")
    image = Path(samples[0]["image_path"])
    image.write_bytes(image.read_bytes()[:200] if content == "truncated" else content)
    item = SampleDataset(samples, ImageLoader())[0]
    assert str(image) in item[FAILED] and f"question_id={samples[0]['question_id']}" in item[FAILED]
    assert says in item[FAILED]
    assert FAILED not in SampleDataset(samples, ImageLoader(max_pixels=None))[len(samples) - 1]


def test_a_file_that_is_not_the_expected_object_is_named(worlds, tmp_path):
    root = tmp_path / "vqav2"
    shutil.copytree(worlds["vqav2"], root)
    (root / VQA_Q).write_text("[1, 2, 3]")
    with pytest.raises(BadSampleError, match=rf"{VQA_Q}: expected an object with a 'questions' list"):
        _reader("vqav2", root, "skip").samples("train")


def test_a_non_utf8_text_in_a_refs_pickle_says_so(worlds, tmp_path):
    root = tmp_path / "refcoco"
    shutil.copytree(worlds["refcoco"], root)
    # a Python 2 str (protocol 0 'S' opcode) holding Latin-1 bytes: not UTF-8
    (root / "refcoco" / "refs(unc).p").write_bytes(b"(lp0\n(dp1\nS'sent'\np2\nS'caf\xe9'\np3\nsa.")
    with pytest.raises(BadSampleError, match=r"refs\(unc\)\.p: a text in the pickle is not UTF-8"):
        _reader("refcoco", root, "skip").samples("train")


def test_a_bad_karpathy_train_record_is_counted_by_the_train_split_only(worlds, tmp_path):
    root = tmp_path / "karpathy"
    shutil.copytree(worlds["karpathy"], root)
    _json(root / KARPATHY, lambda d: _first_train_image(d).update(imgid="seven"))
    reader = _reader("karpathy", root, "skip")
    reader.samples("train"), reader.samples("val")
    d = _spec("karpathy")
    assert reader.skipped == {d.split("train"): 1, d.split("val"): 0}
