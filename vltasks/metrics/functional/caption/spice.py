"""SPICE as the COCO caption evaluation runs it: spice-1.0.jar from pycocoevalcap.

The jar needs Stanford CoreNLP 3.6.0 (two jars that pycocoevalcap downloads on first use, so it cannot run
offline) and fails on Java 16+ (reported on 16, 17 and 20; works on 8 and 11). We check all of that first
and raise one error that lists exactly what is missing, instead of a Java stack trace.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from vltasks.metrics.functional.caption._java import (
    JavaUnavailableError,
    find_java,
    java_major_version,
    pycocoevalcap_dir,
    run_java,
)
from vltasks.metrics.functional.caption._ngrams import check_caption_inputs

CORENLP_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")
CORENLP_URL = "http://nlp.stanford.edu/software/stanford-corenlp-full-2015-12-09.zip"
MAX_JAVA = 11
JAVA_ENV = "VLTASKS_SPICE_JAVA"


def spice_requirements(java: str | None = None) -> tuple[Path, str]:
    """The SPICE jar and a suitable Java executable, or an error naming every missing piece."""
    java = java or os.environ.get(JAVA_ENV, "java")
    problems: list[str] = []
    jar: Path | None = None
    try:
        jar = pycocoevalcap_dir() / "spice" / "spice-1.0.jar"
        if not jar.exists():
            problems.append(f"{jar} is missing (pip install pycocoevalcap==1.2)")
        missing = [name for name in CORENLP_JARS if not (jar.parent / "lib" / name).exists()]
        if missing:
            problems.append(
                f"Stanford CoreNLP 3.6.0 jars {', '.join(missing)} are missing from {jar.parent / 'lib'} "
                f"(pycocoevalcap downloads them on first use, which needs internet: get them from "
                f"{CORENLP_URL} and copy them there)"
            )
    except JavaUnavailableError as err:
        problems.append(str(err))
    exe = ""
    try:
        exe = find_java(java, "SPICE")
        version = java_major_version(exe)
        if version > MAX_JAVA:
            problems.append(
                f"SPICE needs Java <= {MAX_JAVA} (it fails on Java 16+), but {exe} is Java {version}: "
                f"pass java=/path/to/java or set {JAVA_ENV} to a Java 8 or 11 executable"
            )
    except JavaUnavailableError as err:
        problems.append(str(err))
    if problems:
        raise JavaUnavailableError("SPICE cannot run: " + "; ".join(problems))
    assert jar is not None
    return jar, exe


def spice_score(
    preds: Sequence[str], refs: Sequence[Sequence[str]], java: str | None = None, max_memory: str = "8G"
) -> tuple[float, list[float]]:
    """(mean SPICE F-score, per-image F-scores; NaN where SPICE gives none) of tokenized captions."""
    check_caption_inputs(preds, refs)
    jar, exe = spice_requirements(java)
    if len(preds) == 0:
        return 0.0, []
    data = [
        {"image_id": i, "test": p, "refs": list(rs)}
        for i, (p, rs) in enumerate(zip(preds, refs, strict=True))
    ]
    with tempfile.TemporaryDirectory() as tmp:
        in_file, out_file = Path(tmp) / "in.json", Path(tmp) / "out.json"
        in_file.write_text(json.dumps(data), encoding="utf-8")
        run_java(
            [
                "-jar",
                f"-Xmx{max_memory}",
                str(jar),
                str(in_file),
                "-out",
                str(out_file),
                "-subset",
                "-silent",
            ],
            exe,
            cwd=jar.parent,
        )
        results = json.loads(out_file.read_text(encoding="utf-8"))
    by_id = {item["image_id"]: item["scores"]["All"]["f"] for item in results}

    def as_float(value: object) -> float:
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return math.nan

    per_image = [as_float(by_id.get(i)) for i in range(len(preds))]
    return sum(per_image) / len(per_image), per_image
