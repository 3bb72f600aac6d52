"""The documentation: the API list covers every public module, and the site builds with warnings as
errors, every gallery example running (at a reduced scale) and drawing its figures."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

pytest.importorskip("sphinx_gallery", reason="the docs extra is not installed (pip install -e .[docs])")


def _api_list() -> list[str]:
    """The module names of the autosummary list in docs/api.rst."""
    text = (DOCS / "api.rst").read_text()
    block = text.split(".. autosummary::", 1)[1]
    return re.findall(r"^\s+(neurodelay[\w.]*)\s*$", block, flags=re.M)


def test_api_reference_lists_every_public_top_level_module():
    listed = set(_api_list())
    package = ROOT / "neurodelay"
    public = {f"neurodelay.{p.stem}" for p in package.glob("*.py") if not p.name.startswith("_")}
    public |= {f"neurodelay.{p.parent.name}" for p in package.glob("*/__init__.py")
               if not p.parent.name.startswith("_")}
    assert public - listed == set(), f"add these modules to the autosummary list in docs/api.rst: {public - listed}"
    assert listed - public == set(), f"docs/api.rst lists modules that do not exist: {listed - public}"


def test_every_example_is_a_gallery_script():
    examples = sorted((DOCS / "examples").rglob("*.py"))
    assert examples
    for path in examples:
        assert path.name.startswith("plot_"), f"{path.name}: gallery examples are named plot_*.py"
        assert path.read_text().startswith('"""'), f"{path.name}: an example starts with its title docstring"


@pytest.mark.slow
def test_docs_build_without_warnings_and_every_example_draws(tmp_path):
    """``make docs`` in a copy of docs/ (the checkout stays clean), reduced-scale gallery."""
    src = tmp_path / "docs"
    shutil.copytree(DOCS, src, ignore=shutil.ignore_patterns("generated", "auto_examples", "sg_execution_times.rst"))
    out = tmp_path / "html"
    env = {**os.environ, "NEURODELAY_GALLERY_QUICK": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
                           str(src), str(out), "-d", str(tmp_path / "doctrees")],
                          env=env, capture_output=True, text=True, cwd=tmp_path, timeout=1200)
    assert proc.returncode == 0, f"sphinx failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    for example in (DOCS / "examples").rglob("plot_*.py"):
        images = list((out / "_images").glob(f"sphx_glr_{example.stem}_0*.png"))
        assert images, f"{example.name} drew no figure"
        assert all(p.stat().st_size > 5000 for p in images), f"{example.name}: a figure is (nearly) empty"
    for module in _api_list():
        assert (out / "generated" / f"{module}.html").is_file(), f"no API page for {module}"
    assert (out / "generated" / "neurodelay.events.forward.html").is_file()   # submodules come by themselves
