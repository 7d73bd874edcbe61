"""The synthetic RefCOCO writer: refer's exact layout, deterministic, every sentence has one referent."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import pytest
from vltasks.datamodules.synthetic import COLORS, SHAPES, WRITERS, Obj, Scene
from vltasks.datamodules.synthetic.refcoco import referring_expressions, write_refcoco

SIZE_WORDS = {"small": "small", "big": "large"}
SIDES = {
    "left": lambda o: o.center[0],
    "right": lambda o: -o.center[0],
    "top": lambda o: o.center[1],
    "bottom": lambda o: -o.center[1],
}


def resolve(sentence: str, objects: list[Obj]) -> list[Obj]:
    """An independent reading of a sentence: filter by the words, then pick the extreme one."""
    words = sentence.split()
    keep = [
        o
        for o in objects
        if all(w == o.color for w in words if w in COLORS)
        and all(w == o.shape for w in words if w in SHAPES)
        and all(SIZE_WORDS[w] == o.size_name for w in words if w in SIZE_WORDS)
    ]
    side = next((s for s in SIDES for w in words if w in (s, f"{s}most")), None)
    if side is None:
        return keep
    keep = sorted(keep, key=SIDES[side])
    return keep[:1] if len(keep) == 1 or SIDES[side](keep[1]) - SIDES[side](keep[0]) > 4 else keep


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("synthetic_refcoco")
    return root, WRITERS.get("refcoco")(root, {"train": 12, "val": 7}, seed=1, test_splits={"testB": 3})


def test_refer_layout_and_schema(written):
    root, summary = written
    assert (root / "refcoco/refs(unc).p").is_file() and (root / "refcoco/instances.json").is_file()
    with (root / "refcoco/refs(unc).p").open("rb") as f:
        refs = pickle.load(f)
    inst = json.loads((root / "refcoco/instances.json").read_text())
    assert set(inst) >= {"images", "annotations", "categories"}
    assert {r["split"] for r in refs} == {"train", "val", "testB"}
    images = {i["id"]: i for i in inst["images"]}
    anns = {a["id"]: a for a in inst["annotations"]}
    for r in refs:
        assert set(r) == {
            "sent_ids",
            "file_name",
            "ann_id",
            "ref_id",
            "image_id",
            "split",
            "sentences",
            "category_id",
        }
        assert r["sent_ids"] == [s["sent_id"] for s in r["sentences"]]
        assert all(
            set(s) == {"tokens", "raw", "sent_id", "sent"} and s["tokens"] == s["sent"].split()
            for s in r["sentences"]
        )
        assert (
            anns[r["ann_id"]]["image_id"] == r["image_id"]
            and anns[r["ann_id"]]["category_id"] == r["category_id"]
        )
        name = images[r["image_id"]]["file_name"]
        assert (
            name == f"COCO_train2014_{r['image_id']:012d}.jpg"
            and (root / "images/mscoco/images/train2014" / name).is_file()
        )
    assert summary["splits"]["val"]["images"] == 7
    assert summary["splits"]["train"]["sentences"] == sum(
        len(r["sentences"]) for r in refs if r["split"] == "train"
    )
    meta = json.loads((root / "synthetic_meta.json").read_text())
    assert (
        0.2 < meta["chance"]["val"]["random_object"] <= 0.5 and 0 <= meta["chance"]["val"]["centre_box"] < 0.2
    )


def test_every_sentence_singles_out_its_referent(written):
    root, _ = written
    with (root / "refcoco/refs(unc).p").open("rb") as f:
        refs = pickle.load(f)
    inst = json.loads((root / "refcoco/instances.json").read_text())
    by_image: dict[int, list[dict]] = {}
    for a in inst["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    n = 0
    for r in refs:
        objs = []
        for a in by_image[r["image_id"]]:
            x, y, w, h = a["bbox"]
            objs.append(
                (
                    a["id"],
                    Obj(SHAPES[a["category_id"] - 1], "?", "?", (x, y, x + w, y + h), (x + w / 2, y + h / 2)),
                )
            )
        for s in r["sentences"]:
            n += 1
            # colour and size are not in instances.json: check position/shape words against the boxes
            words = [w for w in s["sent"].split() if w not in COLORS and w not in SIZE_WORDS]
            found = resolve(" ".join(words), [o for _, o in objs])
            assert r["ann_id"] in [i for i, o in objs if o in found], s["sent"]
    assert n > 20


def test_expressions_on_a_known_scene():
    def obj(shape, color, size, x, y):
        side = 16 if size == "small" else 22
        return Obj(shape, color, size, (x, y, x + side, y + side), (x + side / 2, y + side / 2))

    a, b, c = (
        obj("circle", "red", "small", 2, 2),
        obj("circle", "red", "large", 40, 2),
        obj("square", "blue", "small", 20, 40),
    )
    scene = Scene(1, 64, 64, [a, b, c])
    assert referring_expressions(scene, c) == [
        "the blue square",
        "the blue object",
        "the square",
        "the small square",
        "the bottommost object",
    ]
    exprs = referring_expressions(scene, a)
    assert (
        "the small circle" in exprs
        and "the red circle on the left" in exprs
        and "the red circle" not in exprs
    )
    for target in (a, b, c):
        for sentence in referring_expressions(scene, target):
            assert resolve(sentence, scene.objects) == [target], sentence


def test_deterministic_from_the_seed(tmp_path):
    write_refcoco(tmp_path / "a", {"train": 5, "val": 3}, seed=4)
    write_refcoco(tmp_path / "b", {"train": 5, "val": 3}, seed=4)
    write_refcoco(tmp_path / "c", {"train": 5, "val": 3}, seed=5)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")
