"""The wheel holds every module of every package.

pyproject.toml finds the packages under src/ (`packages.find`); a folder without its
``__init__.py`` would still be left out of an installed ordersync while every test of the
editable checkout passes. This builds the wheel from a copy of the sources (setuptools'
build API, offline, no isolation) and compares.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = {"src/ordersync": "ordersync", "src/ordersync_adapters": "ordersync_adapters"}
"""Source folder -> where its files go in the wheel."""
BUILD = "import sys; from setuptools import build_meta; build_meta.build_wheel(sys.argv[1])"


def modules() -> set[str]:
    """Every .py file of the sources, named as the wheel must hold it."""
    return {f"{prefix}/{path.relative_to(ROOT / folder).as_posix()}"
            for folder, prefix in SOURCES.items() for path in (ROOT / folder).rglob("*.py")
            if "__pycache__" not in path.parts}


def test_the_wheel_holds_every_module_of_every_package(tmp_path):
    tree = tmp_path / "tree"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for folder in SOURCES:
        shutil.copytree(ROOT / folder, tree / folder, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    built = subprocess.run([sys.executable, "-c", BUILD, str(tmp_path / "dist")], cwd=tree,
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("ordersync-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        held = set(archive.namelist())
    expected = modules()
    assert "ordersync_adapters/pwinty/simulator/server.py" in expected   # the walk finds them
    missing = sorted(expected - held)
    assert not missing, f"not in the wheel (a folder without __init__.py?): {missing}"
