"""Locate Java and the jars shipped inside the `pycocoevalcap` wheel, and say exactly what is missing.

The official tokenizer, METEOR and SPICE are Java programs distributed with pycocoevalcap; we run the same
jars rather than re-implementing them, so their numbers stay the official ones. pycocoevalcap is only
needed for its files: nothing is imported from it.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

PYCOCOEVALCAP_HINT = "pip install pycocoevalcap==1.2"


class JavaUnavailableError(RuntimeError):
    """Java, or a jar it needs, is missing; the message names what and how to get it."""


def pycocoevalcap_dir() -> Path:
    """Folder of the installed pycocoevalcap package (a namespace package: no __init__.py)."""
    spec = importlib.util.find_spec("pycocoevalcap")
    if spec is None or not spec.submodule_search_locations:
        raise JavaUnavailableError(
            "the Python package 'pycocoevalcap' is not installed; it ships the jars used here "
            f"({PYCOCOEVALCAP_HINT})"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def pycocoevalcap_file(*parts: str) -> Path:
    """A file inside pycocoevalcap, e.g. ("meteor", "meteor-1.5.jar"); error if absent."""
    path = pycocoevalcap_dir().joinpath(*parts)
    if not path.exists():
        raise JavaUnavailableError(
            f"{path} is missing from the pycocoevalcap installation ({PYCOCOEVALCAP_HINT})"
        )
    return path


def find_java(java: str = "java", purpose: str = "this metric") -> str:
    """Absolute path of the Java executable, or an error saying that Java is needed and for what."""
    path = shutil.which(java)
    if path is None:
        raise JavaUnavailableError(
            f"Java was not found ({java!r} is not on PATH); {purpose} runs a jar from pycocoevalcap. "
            "Install a Java runtime (e.g. `apt-get install default-jre-headless`)"
        )
    return path


@functools.lru_cache(maxsize=8)
def java_major_version(java: str) -> int:
    """Major version of a Java executable: 8 for "1.8.0_392", 17 for "17.0.15"."""
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if match is None:
        raise JavaUnavailableError(f"could not read the version of {java}: {out.stderr.strip()!r}")
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def run_java(args: list[str], java: str, cwd: Path | None = None, stdin: bytes | None = None) -> bytes:
    """Run Java to completion and return its stdout; stderr goes into the error if it fails."""
    proc = subprocess.run([java, *args], input=stdin, capture_output=True, cwd=cwd, check=False)
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()[-2000:]
        raise RuntimeError(f"java {' '.join(args[:4])} ... failed (exit {proc.returncode}): {err}")
    return proc.stdout
