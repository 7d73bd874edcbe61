"""The built wheel holds heads, datamodules and configs under vltasks, and works from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parents[1]
ROOTS = {
    "vltasks": "vltasks",
    "vltasks.heads": "heads",
    "vltasks.datamodules": "datamodules",
    "vltasks.configs": "configs",
}


def test_every_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for pkg, folder in ROOTS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            found.add(".".join([pkg, *rel.parts]) if rel.parts else pkg)
    assert found - listed == set(), "add these packages to [tool.setuptools] packages in pyproject.toml"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    return next(out.glob("vltasks-*.whl"))


def test_wheel_contains_heads_datamodules_configs(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for must in (
        "vltasks/heads/vqa.py",
        "vltasks/datamodules/vqav2.py",
        "vltasks/datamodules/synthetic/world.py",
        "vltasks/configs/vqa.yaml",
        "vltasks/configs/vqa_demo.yaml",
        "vltasks/metrics/vqa.py",
    ):
        assert must in names, must
    assert not any(n.startswith(("heads/", "datamodules/", "configs/", "tests/")) for n in names)


def test_installed_wheel_finds_builtin_configs_from_any_directory(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = "import vltasks.cli, sys; print(vltasks.cli.__file__); sys.exit(vltasks.cli.main(['configs']))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    assert str(target) in out.stdout and "vqa_demo" in out.stdout
