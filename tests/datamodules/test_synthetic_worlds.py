"""ensure_world: a synthetic world is reused only when its meta records the same request, written
again otherwise (the caption and retrieval demos share one Karpathy root with other sizes), written
once when several processes ask at once, and never left looking current after a write cut short."""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from vltasks.datamodules.synthetic import META_FILE, WRITERS, ensure_world, read_meta
from vltasks.datamodules.synthetic import writers as writers_module
from vltasks.datamodules.synthetic.karpathy import annotation_path
from vltasks.datamodules.synthetic.visual7w import DATASET_FILE, DEFAULT_SPLITS, write_visual7w
from vltasks.datamodules.synthetic.writers import LOCK_FILE

SPLITS = {"train": 3, "val": 2}
V7W = WRITERS.get("visual7w")


@pytest.fixture
def writes(monkeypatch, tmp_path) -> Callable[[], int]:
    """Count visual7w's writes in a file, so that forked processes count too. In a forked process
    a write lingers 0.5 s first, so that the other process arrives while this one is writing."""
    marker = tmp_path / "writes.txt"
    original, test_process = V7W.write_files, os.getpid()

    def counting(world: Any, **options: Any) -> dict[str, Any]:
        with marker.open("a") as f:
            f.write(f"{os.getpid()}\n")
        if os.getpid() != test_process:
            time.sleep(0.5)
        return original(world, **options)

    monkeypatch.setattr(V7W, "write_files", counting)
    return lambda: len(marker.read_text().splitlines()) if marker.exists() else 0


def _dataset(root: Path) -> bytes:
    return (root / DATASET_FILE).read_bytes()


def _files(root: Path) -> dict[str, bytes]:
    """The world's files (images, annotations), not its meta or lock."""
    skip = {META_FILE, LOCK_FILE}
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.name not in skip
    }


def test_an_identical_request_reuses_the_world(tmp_path, writes, capsys):
    root = tmp_path / "world"
    first = ensure_world("visual7w", root, SPLITS, test_splits={"test": 1}, seed=1)
    assert writes() == 1 and f"{root}: no {META_FILE}" in capsys.readouterr().out
    stamp = (root / META_FILE).stat().st_mtime_ns, (root / DATASET_FILE).stat().st_mtime_ns
    again = ensure_world("visual7w", str(root), dict(SPLITS), test_splits={"test": 1}, seed=1, image_size=64)
    assert again == first == read_meta(root)
    assert writes() == 1 and capsys.readouterr().out == ""
    assert ((root / META_FILE).stat().st_mtime_ns, (root / DATASET_FILE).stat().st_mtime_ns) == stamp
    assert first["written_with"] == {
        "format": "visual7w",
        "layout": 1,
        "splits": SPLITS,
        "test_splits": {"test": 1},
        "seed": 1,
        "image_size": 64,
        "options": {},
    }
    assert first["layout"] == 1 and first["splits"]["train"]["images"] == 3 and "baselines" in first


def test_a_world_written_by_the_writer_itself_is_reused(tmp_path, writes, capsys):
    """The CLI and the tests call writers directly: their meta carries the same record."""
    write_visual7w(tmp_path, SPLITS, seed=2)
    ensure_world("visual7w", tmp_path, SPLITS, seed=2)
    assert writes() == 1 and capsys.readouterr().out == ""
    assert V7W.spec(tmp_path, None, 0, 64, None).splits == DEFAULT_SPLITS  # None: the format's defaults


def test_the_caption_and_retrieval_demos_do_not_share_a_world_of_other_sizes(tmp_path, capsys):
    """retrieval_demo (1000/100) then caption_demo (2000/200) on data/synthetic_karpathy."""
    root = tmp_path / "synthetic_karpathy"
    ensure_world("karpathy", root, {"train": 1000, "val": 100})
    capsys.readouterr()
    meta = ensure_world("karpathy_caption", root, {"train": 2000, "val": 200})
    assert capsys.readouterr().out == (
        f"{root}: written with train=1000 val=100, now train=2000 val=200: writing it again\n"
    )
    images = json.loads(annotation_path(root).read_text())["images"]
    assert sum(im["split"] == "train" for im in images) == 2000
    assert sum(im["split"] == "val" for im in images) == 200
    assert meta["splits"]["train"]["images"] == 2000 and meta["written_with"]["splits"] == {
        "train": 2000,
        "val": 200,
    }
    # karpathy and karpathy_caption are one writer: the same request under either name is reused
    assert ensure_world("karpathy", root, {"train": 2000, "val": 200}) == meta
    assert capsys.readouterr().out == ""


CHANGES: dict[str, tuple[dict[str, Any], str]] = {
    "sizes": ({"splits": {"train": 4, "val": 2}}, "written with train=3 val=2, now train=4 val=2"),
    "split order": ({"splits": {"val": 2, "train": 3}}, "written with train=3 val=2, now val=2 train=3"),
    "test splits": ({"test_splits": {"test": 2}}, "written with no test splits, now test splits test=2"),
    "seed": ({"seed": 1}, "written with seed=0, now seed=1"),
    "image size": ({"image_size": 80}, "written with image_size=64, now image_size=80"),
    "options": ({"max_objects": 2}, "written with no options, now options max_objects=2"),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_world_asked_for_with_other_arguments_is_written_again(change, tmp_path, writes, capsys):
    root = tmp_path / "world"
    ensure_world("visual7w", root, SPLITS)
    before = _files(root)
    capsys.readouterr()
    args: dict[str, Any] = {"splits": SPLITS, **CHANGES[change][0]}
    meta = ensure_world("visual7w", root, **args)
    assert writes() == 2
    assert capsys.readouterr().out == f"{root}: {CHANGES[change][1]}: writing it again\n"
    write_visual7w(tmp_path / "fresh", **args)
    fresh, now = _files(tmp_path / "fresh"), _files(root)
    assert {k: now.get(k) for k in fresh} == fresh  # every file a fresh write gives, byte for byte
    assert {k: before.get(k) for k in fresh} != fresh  # (which the old world did not have)
    assert meta == read_meta(root) == read_meta(tmp_path / "fresh")
    ensure_world("visual7w", root, **args)  # and now it is current
    assert writes() == 3 and capsys.readouterr().out == ""  # (the fresh write counted one)


def test_a_world_of_another_layout_is_written_again(tmp_path, writes, monkeypatch, capsys):
    root = tmp_path / "world"
    ensure_world("visual7w", root, SPLITS)
    capsys.readouterr()
    monkeypatch.setattr(V7W, "layout", 2)  # as if the format's files had moved since
    meta = ensure_world("visual7w", root, SPLITS)
    said = capsys.readouterr().out
    assert said == f"{root}: written by an older vltasks (layout 1, now 2): writing it again\n"
    assert writes() == 2 and meta["layout"] == 2 and meta["written_with"]["layout"] == 2


@pytest.mark.parametrize("damage", ["missing", "not JSON", "no record"])
def test_a_world_whose_meta_is_missing_or_unusable_is_written_again(damage, tmp_path, writes, capsys):
    root = tmp_path / "world"
    meta = ensure_world("visual7w", root, SPLITS)
    path = root / META_FILE
    if damage == "missing":
        path.unlink()
    elif damage == "not JSON":
        path.write_text(path.read_text()[:-20])
    else:  # what vltasks wrote before the record
        path.write_text(json.dumps({k: v for k, v in meta.items() if k not in ("written_with", "layout")}))
    capsys.readouterr()
    assert ensure_world("visual7w", root, SPLITS) == meta
    expected = {
        "missing": f"no {META_FILE} (no world yet, or one cut short): writing the visual7w world",
        "not JSON": f"{META_FILE} unreadable (",
        "no record": "written by an older vltasks (no written_with record): writing it again",
    }[damage]
    assert writes() == 2 and capsys.readouterr().out.startswith(f"{root}: {expected}")


def test_a_write_cut_short_leaves_no_current_looking_world(tmp_path, monkeypatch, capsys):
    root = tmp_path / "world"
    ensure_world("visual7w", root, SPLITS)
    original = V7W.write_files

    def crash(world: Any, **options: Any) -> dict[str, Any]:
        (world.root / DATASET_FILE).write_text("{")  # half the files written, then the process dies
        raise RuntimeError("killed")

    monkeypatch.setattr(V7W, "write_files", crash)
    with pytest.raises(RuntimeError, match="killed"):
        ensure_world("visual7w", root, {"train": 4, "val": 2})
    with pytest.raises(FileNotFoundError, match="no synthetic world here"):
        read_meta(root)  # the old meta went before the first file changed
    monkeypatch.setattr(V7W, "write_files", original)
    capsys.readouterr()
    meta = ensure_world("visual7w", root, SPLITS)  # even the old request is not taken as current
    assert "writing the visual7w world" in capsys.readouterr().out
    assert meta["splits"]["train"]["images"] == 3 and json.loads(_dataset(root))["images"]


def _race(root: Path, out: Path) -> None:
    """Two processes, released together, each ask for the same world on an empty root."""
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(2)

    def child(i: int) -> None:
        barrier.wait()
        meta = ensure_world("visual7w", root, SPLITS, seed=3)
        (out / f"meta{i}.json").write_text(json.dumps(meta))

    procs = [ctx.Process(target=child, args=(i,)) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]


def test_two_processes_at_once_write_the_world_once(tmp_path, writes):
    root = tmp_path / "world"  # does not exist yet: both create it
    _race(root, tmp_path)
    assert writes() == 1
    metas = [json.loads((tmp_path / f"meta{i}.json").read_text()) for i in range(2)]
    assert metas[0] == metas[1] == read_meta(root)
    assert metas[0]["written_with"]["seed"] == 3


def test_without_the_lock_the_two_processes_would_both_write(tmp_path, writes, monkeypatch):
    """The control: the race above is real, so the single write there is the lock's doing."""
    monkeypatch.setattr(writers_module, "_exclusive", lambda path: contextlib.nullcontext())
    _race(tmp_path / "world", tmp_path)
    assert writes() == 2


def test_read_meta_names_a_root_without_a_world(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / META_FILE))):
        read_meta(tmp_path)
