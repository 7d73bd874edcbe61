"""Synthetic-world writers by data format (used by configs with `synthetic.enabled: true`).

A format module supplies one function, `write(world: WorldSpec, **options) -> summary`, that writes
the format's files under `world.root` and returns what the demos and tests read (counts, baselines).
`@synthetic_writer("<format>", DEFAULT_SPLITS, layout=N)` wraps it in a `SyntheticWriter` and
registers it in `WRITERS`. The wrapper owns what every format shares, so no format repeats it: the
call `(root, splits=None, seed=0, image_size=64, test_splits=None, **options) -> summary`, the
default splits, and `synthetic_meta.json` (the summary plus `layout` and a `written_with` record of
the arguments). It removes the meta before writing and writes it last, atomically, so a world cut
short never looks current.

`ensure_world` reuses a world only when its record matches the request and writes it again
otherwise, under a file lock so that every rank of a DDP job may call it. Bump a format's `layout`
when its files move: a world of another layout is then written again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vltasks.registry import Registry

META_FILE = "synthetic_meta.json"
LOCK_FILE = ".synthetic.lock"  # next to the world it guards; held only while checking and writing
RECORD = "written_with"
Sizes = Mapping[str, int]  # split name -> image count
DICT_FIELDS = {  # record fields that are dicts: (label before the items, text when empty)
    "splits": ("", "no splits"),
    "test_splits": ("test splits ", "no test splits"),
    "options": ("options ", "no options"),
}


@dataclass(frozen=True)
class WorldSpec:
    """What one call asks a format function to write, defaults resolved (no field is None)."""

    root: Path
    splits: dict[str, int]
    test_splits: dict[str, int]
    seed: int
    image_size: int

    @property
    def all_splits(self) -> dict[str, int]:
        """Labelled splits, then test splits, for formats that write both alike."""
        return {**self.splits, **self.test_splits}


class SyntheticWriter:
    """One format's writer behind the call every format shares; writes the files, then the meta."""

    def __init__(
        self,
        name: str,
        write_files: Callable[..., dict[str, Any]],
        default_splits: Sizes,
        layout: int = 1,
    ) -> None:
        self.name = name
        self.write_files = write_files
        self.default_splits = dict(default_splits)
        self.layout = layout
        # the CLI and its tests find a format's module (DEFAULT_SPLITS) and docs through the writer
        self.__module__ = write_files.__module__
        self.__name__ = self.__qualname__ = write_files.__name__
        self.__doc__ = write_files.__doc__

    def __repr__(self) -> str:
        return f"SyntheticWriter({self.name!r}, layout={self.layout})"

    def spec(
        self, root: Path | str, splits: Sizes | None, seed: int, image_size: int, test_splits: Sizes | None
    ) -> WorldSpec:
        """The request with the format's default splits filled in (``splits=None``)."""
        chosen = self.default_splits if splits is None else splits
        return WorldSpec(
            Path(root),
            {str(k): int(n) for k, n in chosen.items()},
            {str(k): int(n) for k, n in (test_splits or {}).items()},
            int(seed),
            int(image_size),
        )

    def record(self, world: WorldSpec, options: Mapping[str, Any]) -> dict[str, Any]:
        """The meta's `written_with`, as JSON gives it back, so a fresh one compares with a stored one."""
        fields = {
            "format": self.name,
            "layout": self.layout,
            "splits": world.splits,
            "test_splits": world.test_splits,
            "seed": world.seed,
            "image_size": world.image_size,
            "options": dict(options),
        }
        return json.loads(json.dumps(fields))

    def write(self, world: WorldSpec, **options: Any) -> dict[str, Any]:
        """Write the world's files, then its meta; return the format's summary and the root."""
        record = self.record(world, options)  # before any file: options that JSON cannot hold fail here
        meta_path = world.root / META_FILE
        meta_path.unlink(missing_ok=True)  # the files are about to change: not current until rewritten
        world.root.mkdir(parents=True, exist_ok=True)
        summary = self.write_files(world, **options)
        _replace_file(meta_path, json.dumps({**summary, "layout": self.layout, RECORD: record}, indent=1))
        return {**summary, "root": str(world.root)}

    def __call__(
        self,
        root: Path | str,
        splits: Sizes | None = None,
        seed: int = 0,
        image_size: int = 64,
        test_splits: Sizes | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Write the world unconditionally (``ensure_world`` reuses a current one instead)."""
        return self.write(self.spec(root, splits, seed, image_size, test_splits), **options)


WRITERS: Registry[SyntheticWriter] = Registry("synthetic writer")


def synthetic_writer(
    name: str, default_splits: Sizes, layout: int = 1
) -> Callable[[Callable[..., dict[str, Any]]], SyntheticWriter]:
    """Decorator: make a format function a registered `SyntheticWriter` (the module name keeps it)."""

    def deco(write_files: Callable[..., dict[str, Any]]) -> SyntheticWriter:
        return WRITERS.register(name)(SyntheticWriter(name, write_files, default_splits, layout))

    return deco


def read_meta(root: Path | str) -> dict[str, Any]:
    """The meta of the world at `root`. It is written last and atomically, so one that exists is whole."""
    path = Path(root) / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path}: no synthetic world here (or one cut short); write it with ensure_world() "
            "or python -m vltasks.datamodules.synthetic"
        ) from None
    except ValueError as e:  # not UTF-8, or not JSON
        raise ValueError(f"{path}: not a JSON meta ({e})") from e
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    return meta


def ensure_world(
    format: str,
    root: Path | str,
    splits: Sizes | None,
    test_splits: Sizes | None = None,
    seed: int = 0,
    image_size: int = 64,
    **options: Any,
) -> dict[str, Any]:
    """Return the meta of the world at `root`, writing the world first unless its meta records the
    same writer, layout, splits (sizes and order), test splits, seed, image size and options.

    Safe to call from several processes at once (the DDP ranks of one node, before any process
    group exists): one holds an exclusive lock next to the world while it checks and writes, the
    others wait for it and then find the meta current. A current world is reused without the lock
    (its meta is written last, so it describes whole files), which also serves read-only roots.
    """
    writer = WRITERS.get(format)
    world = writer.spec(root, splits, seed, image_size, test_splits)
    want = writer.record(world, options)
    meta, why = _check(world.root, want)
    if meta is not None and why is None:
        return meta
    world.root.mkdir(parents=True, exist_ok=True)
    with _exclusive(world.root / LOCK_FILE):
        meta, why = _check(world.root, want)  # another process may have written it while we waited
        if meta is not None and why is None:
            return meta
        action = f"writing the {format} world" if meta is None else "writing it again"
        print(f"{world.root}: {why}: {action}", flush=True)
        writer.write(world, **options)
        return read_meta(world.root)


def _check(root: Path, want: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """The meta at `root` (None: no meta; {}: unreadable) and why it is not the world `want` records
    (None: it is)."""
    try:
        meta = read_meta(root)
    except FileNotFoundError:
        return None, f"no {META_FILE} (no world yet, or one cut short)"
    except ValueError as e:  # bad JSON or encoding: whatever wrote it, it is not a current world
        return {}, f"{META_FILE} unreadable ({e.__cause__ or e})"
    return meta, _staleness(meta, want)


def _staleness(meta: dict[str, Any], want: dict[str, Any]) -> str | None:
    """Why the world `meta` describes is not the one `want` records (None: it is)."""
    layout = meta.get("layout", 1)
    if layout != want["layout"]:  # files moved: the rest of the record says nothing of them
        age = "an older" if isinstance(layout, int) and layout < want["layout"] else "another"
        return f"written by {age} vltasks (layout {layout}, now {want['layout']})"
    have = meta.get(RECORD)
    if not isinstance(have, dict):
        return f"written by an older vltasks (no {RECORD} record)"
    changed = [k for k in want if json.dumps(have.get(k)) != json.dumps(want[k])]  # dict order counts
    if not changed:
        return None
    return f"written with {_describe(have, changed)}, now {_describe(want, changed)}"


def _describe(record: dict[str, Any], keys: list[str]) -> str:
    """'train=1000 val=100', 'seed=1 and test splits test=5': the fields of a record that differ."""
    parts = []
    for key in keys:
        value = record.get(key)
        if key not in DICT_FIELDS:
            parts.append(f"{key}={value}")
            continue
        items = " ".join(f"{k}={v}" for k, v in (value or {}).items())
        label, empty = DICT_FIELDS[key]
        parts.append(f"{label}{items}" if items else empty)
    return " and ".join(parts)


def _replace_file(path: Path, text: str) -> None:
    """Write `text` to a side file and rename it over `path`: readers see the old file or the new."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")  # one per process: no two share it
    with partial.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive `flock` on `lock_path` (created if needed); released on exit or death."""
    import fcntl  # POSIX only: here, so that writing a world directly works everywhere

    with lock_path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
