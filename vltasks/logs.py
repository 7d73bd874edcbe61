"""Logs a person wants to read: each line once, no advertisements, and a model summary by part.

Lightning puts its own console handler on the ``lightning`` logger *and* lets records propagate to
the root logger, so with any root handler (``logging.basicConfig``) every INFO line printed twice.
`setup_logging` keeps one handler (on the root) and drops, by logger and message, the few records
and warnings that carry nothing for the person running a fit. Each entry names what it matches and
why; nothing is silenced by category or by logger alone.
"""

from __future__ import annotations

import logging
import re
import sys
import warnings

import lightning as L
from lightning.pytorch.callbacks import ModelSummary
from torch import nn

# (logger, message pattern, why): records from Lightning that say nothing about the user's run
QUIET_RECORDS: tuple[tuple[str, str, str], ...] = (
    (
        "lightning.pytorch.utilities.rank_zero",
        r"^💡 Tip: .*\[lit(logger|models)\]",
        "advertisements for Lightning's services",
    ),
    (
        "lightning.pytorch.utilities.rank_zero",
        r"Trainer already configured with model summary callbacks",
        "our PartsSummary replaces Lightning's summary on purpose",
    ),
    (
        "lightning.pytorch.utilities.rank_zero",
        r"Loading `train_dataloader` to estimate number of stepping batches",
        "the learning-rate schedule asks for the step count; the line describes Lightning's internals",
    ),
)
# (message pattern, category, module pattern, why): warnings raised inside our dependencies' code
QUIET_WARNINGS: tuple[tuple[str, type[Warning], str, str], ...] = (
    (
        r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        FutureWarning,
        r"lightning\.pytorch\.utilities\._pytree",
        "torch deprecates a class Lightning's own code still builds; nothing a user can change",
    ),
)


class _QuietFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(
            record.name == name and re.search(pattern, message) for name, pattern, _ in QUIET_RECORDS
        )


class _Format(logging.Formatter):
    """INFO lines as the message alone (what Lightning prints); warnings and errors name the logger."""

    def format(self, record: logging.LogRecord) -> str:
        if record.levelno == logging.INFO:
            return record.getMessage()
        return f"{record.levelname} {record.name}: {record.getMessage()}"


class _ConsoleHandler(logging.Handler):
    """INFO to the current ``sys.stdout``, beside the run's printed summaries; warnings and errors to
    the current ``sys.stderr`` (looked up at each line: pytest and notebooks replace both)."""

    _vltasks = True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stdout if record.levelno < logging.WARNING else sys.stderr
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001 - logging must never take the run down
            self.handleError(record)


def quiet_warnings() -> None:
    """Ignore the warnings of `QUIET_WARNINGS`, each matched by message, category and module."""
    for message, category, module, _ in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)


def setup_logging(level: int = logging.INFO) -> None:
    """One handler on the root logger; Lightning's loggers propagate to it instead of printing
    themselves. Idempotent: calling it again (every in-process CLI run) adds nothing."""
    root = logging.getLogger()
    if not any(getattr(h, "_vltasks", False) for h in root.handlers):
        handler = _ConsoleHandler()
        handler.setFormatter(_Format())
        handler.addFilter(_QuietFilter())
        root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)
    for name in (
        "lightning",
        "lightning.pytorch",
        "lightning.fabric",
        "lightning_fabric",
        "pytorch_lightning",
    ):
        lib = logging.getLogger(name)
        for h in list(lib.handlers):
            if type(h) is logging.StreamHandler:  # the console handlers Lightning installs on import
                lib.removeHandler(h)
        lib.propagate = True
    logging.getLogger("lightning.pytorch").setLevel(level)
    logging.getLogger("vltasks").setLevel(level)
    quiet_warnings()


def _count(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return str(n)


def parts(module: nn.Module) -> list[tuple[str, str, int, int]]:
    """(part, type, parameters, trainable) for the backbone, each of its parts when it has more than
    one holding parameters (CLIP's encoders and fusion block), and each head."""
    rows: list[tuple[str, str, int, int]] = []

    def row(name: str, m: nn.Module) -> None:
        params = list(m.parameters())
        inner = getattr(m, "model", None)
        kind = type(m).__name__ + (f" ({type(inner).__name__})" if isinstance(inner, nn.Module) else "")
        rows.append(
            (name, kind, sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad))
        )

    backbone = getattr(module, "backbone", None)
    if isinstance(backbone, nn.Module):
        row("backbone", backbone)
        children = [(n, c) for n, c in backbone.named_children() if any(True for _ in c.parameters())]
        if len(children) > 1:
            for n, c in children:
                row(f"  backbone.{n}", c)
    heads = getattr(module, "heads", None)
    if isinstance(heads, nn.ModuleDict):
        for n, h in heads.items():
            row(f"heads.{n}", h)
    return rows


class PartsSummary(ModelSummary):
    """The model summary by part (backbone, each head), trainable and frozen, instead of Lightning's
    table of top-level attributes (whose FLOPs column reads 0 without an example input)."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        print(summary_table(pl_module))


def summary_table(module: nn.Module) -> str:
    rows = parts(module)
    total = sum(p.numel() for p in module.parameters())
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    width = max([len(r[0]) for r in rows] + [4])
    kinds = max([len(r[1]) for r in rows] + [4])
    frozen = total - trainable
    lines = [
        f"model: {_count(total)} parameters ({_count(trainable)} trainable, {_count(frozen)} frozen)",
        f"  {'part':<{width}}  {'type':<{kinds}}  {'params':>8}  {'trainable':>9}  {'frozen':>8}",
    ]
    for name, kind, n, t in rows:
        lines.append(
            f"  {name:<{width}}  {kind:<{kinds}}  {_count(n):>8}  {_count(t):>9}  {_count(n - t):>8}"
        )
    return "\n".join(lines)
