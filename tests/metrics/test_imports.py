"""`import vltasks.metrics` must work with torch and torchmetrics alone (DESIGN.md: metrics room)."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

BLOCKED = ("lightning", "pytorch_lightning", "lightning_fabric", "transformers", "torchvision", "scipy")
# The sources are also checked: only torch, torchmetrics, the stdlib and vltasks itself.
ALLOWED = {"torch", "torchmetrics", "vltasks"}
ROOT = Path(__file__).resolve().parents[2] / "vltasks" / "metrics"
OTHER_HELPER = ("caption",)  # captioning is checked by its own tests


def test_metrics_import_without_heavy_dependencies() -> None:
    script = textwrap.dedent(
        f"""
        import importlib.metadata as md
        import sys

        blocked = {BLOCKED!r}

        def hide(fn):  # torchmetrics asks the package metadata before it imports optional packages
            def wrapper(name, *args, **kwargs):
                if name.replace("-", "_").split(".")[0] in blocked:
                    raise md.PackageNotFoundError(name)
                return fn(name, *args, **kwargs)
            return wrapper

        md.version, md.distribution = hide(md.version), hide(md.distribution)

        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in blocked:
                    raise ModuleNotFoundError(f"blocked for the test: {{name}}", name=name)
                return None

        sys.meta_path.insert(0, Blocker())
        import vltasks.metrics
        import vltasks.metrics.functional
        from vltasks.metrics import VQAAccuracy

        VQAAccuracy().update(["yes"], [["yes"] * 10])
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in blocked)
        assert not leaked, leaked
        print("ok")
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("ok")


def test_metric_sources_import_only_torch_torchmetrics_stdlib() -> None:
    bad = []
    for path in ROOT.rglob("*.py"):
        if OTHER_HELPER[0] in path.relative_to(ROOT).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                if top not in ALLOWED and top not in sys.stdlib_module_names:
                    bad.append(f"{path.relative_to(ROOT)}: {name}")
    assert not bad, bad
