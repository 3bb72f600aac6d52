"""Small helpers shared by the benchmark scripts: timing, versions, a text table, atomic JSON, runs in
worker processes."""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = ["REPO_ROOT", "default_json_path", "writable_path", "stopwatch", "package_versions", "print_table",
           "write_json_atomic", "run_each"]

REPO_ROOT = Path(__file__).resolve().parents[1]


def default_json_path(name: str) -> Path:
    """build/bench/<name>.json inside the repository (git-ignored)."""
    return REPO_ROOT / "build" / "bench" / f"{name}.json"


def writable_path(value: str) -> Path:
    """argparse ``type`` of an output file: its folder exists or can be made, and can be written to. Checked
    when the arguments are read, so that a bad ``--json`` ends the script (exit 2, one line) before it
    computes anything, not with a traceback after."""
    path = Path(value)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{value} is a folder; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot create the folder {path.parent}: {exc.strerror}") from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write to the folder {path.parent}")
    return path


@contextmanager
def stopwatch():
    """``with stopwatch() as t: ...`` then ``t()`` is the elapsed wall time in seconds."""
    start = time.perf_counter()
    end = None

    def elapsed():
        return (end if end is not None else time.perf_counter()) - start

    try:
        yield elapsed
    finally:
        end = time.perf_counter()


def package_versions(*distributions: str) -> dict:
    """Installed versions of the named distributions (None where missing), plus Python and the machine."""
    out = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()}
    for name in distributions:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def print_table(rows: list[dict], columns: list[str] | None = None, floatfmt: str = ".4g") -> None:
    """Print dict rows as an aligned text table (columns default to the keys of the first row)."""
    if not rows:
        return
    columns = columns or list(rows[0])

    def cell(value):
        if isinstance(value, float):
            return format(value, floatfmt)
        return "" if value is None else str(value)

    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[k]) for row in cells)) for k, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths)))


def write_json_atomic(path, data: dict) -> Path:
    """Write `data` as JSON to `path` atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp creates it private
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def run_each(fn, args: list[tuple], jobs: int) -> list:
    """``fn(*a)`` for each tuple ``a`` of `args`, results in order: in `jobs` worker processes when
    jobs > 1, else one after the other here. Each run gets one engine thread unless NEURODELAY_THREADS
    is set (the runs are the parallel unit)."""
    os.environ.setdefault("NEURODELAY_THREADS", "1")
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            return list(pool.map(fn, *zip(*args)))
    return [fn(*a) for a in args]
