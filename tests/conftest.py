"""Fixtures shared by the tests of the analyses and figure scripts (scripts are imported by path)."""

from __future__ import annotations

import gc
import importlib.util
import sys
from pathlib import Path

import pytest

from neurodelay.io import read_netcdf

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def pytest_collection_finish(session):
    """Brian2 calls gc.collect() at every Network.run (once per trial in neurodelay.brian), which
    scans every object of this process: 0.15-0.4 s a call once the test modules are imported. What
    exists after collection (modules, classes, constants) is moved out of the collector's reach
    (gc.freeze), so that those calls scan only what the tests create (test_brian.py and the brian
    conformance cases: 143 s -> 114 s on a loaded 2-core machine, warm caches)."""
    gc.collect()
    gc.freeze()


def _load_script(path):
    """Import a script by path (relative to the repository root, or absolute) under a private module name."""
    path = ROOT / path
    spec = importlib.util.spec_from_file_location(f"_test_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_script():
    """A function: script path (relative to the repository root) -> the imported module."""
    return _load_script


@pytest.fixture(scope="session")
def quick_analysis(tmp_path_factory):
    """A function: analysis name -> (module, dataset, results folder), from ``analyses/<name>.py --quick``.

    Each analysis runs at most once per session, into its own temporary folder.
    """
    done = {}

    def run(name: str):
        if name not in done:
            module = _load_script(f"analyses/{name}.py")
            results = tmp_path_factory.mktemp(f"results_{name}")
            assert module.main(["--quick", "--out", str(results / module.RESULT)]) == 0
            done[name] = module, read_netcdf(results / module.RESULT), results
        return done[name]
    return run


@pytest.fixture
def draw_offline(tmp_path, monkeypatch):
    """A function: (figure script name, results folder, image name, minimum PNG bytes) -> output folder.

    Runs ``paper_figures/<script>`` with the event engine's simulate() disabled and
    checks that it wrote exactly ``<name>.png`` (at least that many bytes) and ``<name>.pdf``.
    """
    import neurodelay.events

    def no_simulation(*args, **kwargs):
        raise AssertionError("a figure script must read NetCDF results, never simulate")

    monkeypatch.setattr(neurodelay.events, "simulate", no_simulation)
    monkeypatch.setattr(neurodelay.events.forward, "simulate", no_simulation)
    monkeypatch.setattr(neurodelay.events.forward, "simulate_events", no_simulation)

    def draw(script: str, results: Path, name: str, min_png_bytes: int) -> Path:
        figure = _load_script(f"paper_figures/{script}")
        assert figure.main(["--results", str(results), "--out", str(tmp_path)]) == 0
        png = tmp_path / f"{name}.png"
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > min_png_bytes
        assert (tmp_path / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"
        assert sorted(p.name for p in tmp_path.iterdir()) == [f"{name}.pdf", f"{name}.png"]
        return tmp_path
    return draw
