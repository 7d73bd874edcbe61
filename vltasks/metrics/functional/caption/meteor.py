"""METEOR 1.5 as the COCO caption evaluation runs it: meteor-1.5.jar `-stdio -l en -norm`.

Protocol (from pycocoevalcap): one `SCORE ||| ref1 ||| ... ||| hyp` line per image answers a line of
sufficient statistics; one `EVAL ||| stats1 ||| stats2 ...` line answers one score per image and then the
corpus score, computed from the pooled statistics (not the mean of the per-image scores).
"""

from __future__ import annotations

import atexit
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from vltasks.metrics.functional.caption._java import find_java, pycocoevalcap_file
from vltasks.metrics.functional.caption._ngrams import check_caption_inputs


def _clean(text: str) -> str:
    """'|||' separates fields and a newline ends a request: neither may appear inside a caption."""
    return " ".join(text.replace("|||", "").split())


def _score_lines(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> list[str]:
    return [
        " ||| ".join(["SCORE", *(_clean(r) for r in rs), _clean(p)])
        for p, rs in zip(preds, refs, strict=True)
    ]


class _MeteorProcess:
    """One running jar, reused across calls (its paraphrase table takes seconds to load), as pycocoevalcap."""

    def __init__(self, exe: str, jar: Path, max_memory: str) -> None:
        cmd = [exe, "-jar", f"-Xmx{max_memory}", str(jar), "-", "-", "-stdio", "-l", "en", "-norm"]
        self.errors = tempfile.TemporaryFile()  # a file, not a pipe: a chatty stderr cannot block the jar
        self.proc = subprocess.Popen(
            cmd, cwd=jar.parent, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors
        )
        self.lock = threading.Lock()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def score(self, lines: list[str]) -> tuple[float, list[float]]:
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None

        def write_requests() -> None:  # a writer thread, so neither pipe can fill up and block
            try:
                for line in lines:
                    stdin.write((line + "\n").encode("utf-8"))
                stdin.flush()
            except BrokenPipeError:  # the jar died: reported below
                pass

        with self.lock:
            writer = threading.Thread(target=write_requests, daemon=True)
            writer.start()
            stats = [stdout.readline().decode("utf-8").strip() for _ in lines]
            writer.join()
            if not all(stats):
                self.errors.seek(0)
                err = self.errors.read().decode("utf-8", "replace")[-2000:]
                self.close()
                raise RuntimeError(f"METEOR stopped answering: {err}")
            stdin.write(("EVAL ||| " + " ||| ".join(stats) + "\n").encode("utf-8"))
            stdin.flush()
            per_image = [float(stdout.readline().strip()) for _ in lines]
            return float(stdout.readline().strip()), per_image

    def close(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self.proc.kill()
        self.proc.wait()
        self.errors.close()


_PROCESSES: dict[tuple[str, str], _MeteorProcess] = {}


@atexit.register
def _close_all() -> None:
    for process in _PROCESSES.values():
        process.close()
    _PROCESSES.clear()


def meteor_score(
    preds: Sequence[str], refs: Sequence[Sequence[str]], java: str = "java", max_memory: str = "2G"
) -> tuple[float, list[float]]:
    """(corpus METEOR, per-image METEOR) of tokenized captions, from the official jar."""
    check_caption_inputs(preds, refs)
    if len(preds) == 0:
        return 0.0, []
    jar = pycocoevalcap_file("meteor", "meteor-1.5.jar")
    pycocoevalcap_file("meteor", "data", "paraphrase-en.gz")
    exe = find_java(java, "METEOR")
    key = (exe, max_memory)
    if key not in _PROCESSES or not _PROCESSES[key].alive():
        _PROCESSES[key] = _MeteorProcess(exe, jar, max_memory)
    return _PROCESSES[key].score(_score_lines(preds, refs))


def meteor_per_sentence(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> list[float]:
    """Per-caption METEOR of tokenized captions (the jar stays running between calls)."""
    return meteor_score(preds, refs)[1]
