"""Run the analyses whose results are missing, then draw every figure (`make figures`).

Convention (follow it when adding an analysis or a figure):

* every ``analyses/*.py`` whose name does not start with ``_`` is an analysis.
  It defines ``RESULT = "name.nc"`` (a plain string at module level: the file
  it writes in ``analyses/results/``) and ``main(argv)``, which accepts
  ``--out PATH`` (where to write the result) and ``--quick`` (a small, fast
  version) and returns 0 (or None) on success. It may declare
  ``EXPECTED_SECONDS = {"quick": s, "default": s, "full": s}`` (a plain dict
  literal: wall seconds on 2 cores at each scale); a ``"full"`` entry means the
  script accepts ``--full`` (its default is then a reduced scale), otherwise its
  default is already the published scale;
* every ``paper_figures/fig_*.py`` is a figure. It defines ``main(argv)``,
  which accepts ``--results DIR`` (folder of the NetCDF results) and
  ``--out DIR`` (folder for the images), reads only NetCDF results and never
  simulates.

Each script runs in its own process with this interpreter (so one failing or
crashing step cannot take the others down); its ``main`` is called with the
arguments above. An analysis runs when its result file is missing (``--force``:
always). One line per step is printed with its time, then a summary; the exit
status is 1 if any step failed, 0 otherwise.

Three ways to use it:

* ``make_all.py`` (``make figures``): draw every figure from the committed
  results in ``analyses/results/`` (seconds), running only missing analyses;
* ``make_all.py --rerun``: recompute every result at the reduced scale
  (``--quick``, minutes) into ``build/rerun/results`` and draw the figures
  into ``build/rerun/figures`` (the committed results are left alone);
* ``make_all.py --full``: recompute every result at the published scale into
  ``analyses/results/`` (hours: the expected time is printed first; analyses
  resume what an interrupted run had finished).

While an analysis runs, a progress bar shows its elapsed time against its
expected time (when it declares one).

Usage: python paper_figures/make_all.py [--rerun | --full | --force [--quick]]
                                        [--only SUBSTRING] [--results DIR] [--out DIR]
(``--analyses DIR`` and ``--figures DIR`` take the scripts from other folders.)
"""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ANALYSES = ROOT / "analyses"
FIGURES = ROOT / "paper_figures"

# Runs one script's main(argv) in a fresh interpreter: argv[1] is the script, the rest its arguments.
_LAUNCHER = """
import importlib.util, sys
path, argv = sys.argv[1], sys.argv[2:]
spec = importlib.util.spec_from_file_location("_make_all_step", path)
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
status = module.main(argv)
sys.exit(0 if status is None else status)
"""


@dataclass
class Step:
    """One thing to run (or skip) and, afterwards, how it went."""

    kind: str              # "analysis" or "figure"
    script: Path
    args: list
    expect: Path | None = None   # file the step must leave behind
    expected_seconds: float | None = None   # how long it should take (progress bar), if declared
    status: str = "pending"      # ok / skipped / FAILED
    seconds: float = 0.0
    note: str = ""

    @property
    def name(self) -> str:
        return f"{self.kind} {self.script.name}"


def declared_result(script: Path) -> str:
    """The RESULT string an analysis script declares (read without importing it).

    Raises ValueError naming the script when it is missing, not a plain string,
    or not a bare file name, or when the script defines no main().
    """
    tree = ast.parse(script.read_text(), filename=str(script))
    result, has_main = None, False
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "main":
            has_main = True
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) and node.value is not None else [])
        if any(isinstance(t, ast.Name) and t.id == "RESULT" for t in targets):
            value = node.value
            if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
                raise ValueError(f"{script.name}: RESULT must be a plain string such as \"name.nc\"")
            result = value.value
    if result is None:
        raise ValueError(f"{script.name}: defines no RESULT = \"name.nc\" (see paper_figures/make_all.py)")
    if Path(result).name != result or not result:
        raise ValueError(f"{script.name}: RESULT must be a bare file name, got {result!r}")
    if not has_main:
        raise ValueError(f"{script.name}: defines no main(argv)")
    return result


def declared_expected_seconds(script: Path) -> dict:
    """The EXPECTED_SECONDS dict literal an analysis script declares ({} when it declares none)."""
    tree = ast.parse(script.read_text(), filename=str(script))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "EXPECTED_SECONDS"
                                                for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                raise ValueError(f"{script.name}: EXPECTED_SECONDS must be a plain dict literal") from None
            if not isinstance(value, dict) or not set(value) <= {"quick", "default", "full"}:
                raise ValueError(f"{script.name}: EXPECTED_SECONDS must map 'quick'/'default'/'full' to seconds")
            return {k: float(v) for k, v in value.items()}
    return {}


def analysis_scripts(folder: Path = ANALYSES) -> list[Path]:
    """The analysis scripts, sorted by name (files starting with '_' are helpers)."""
    return sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))


def figure_scripts(folder: Path = FIGURES) -> list[Path]:
    """The figure scripts (fig_*.py), sorted by name."""
    return sorted(folder.glob("fig_*.py"))


def plan(results: Path, out: Path, *, force: bool = False, quick: bool = False, full: bool = False,
         only: str | None = None, analyses: Path = ANALYSES, figures: Path = FIGURES) -> list[Step]:
    """The steps to run: analyses (skipped when their result exists, unless force), then figures.

    quick: pass ``--quick``; full: pass ``--full`` to the analyses that have a
    reduced default scale (those declaring an ``EXPECTED_SECONDS["full"]``).
    """
    if quick and full:
        raise ValueError("choose --quick or --full, not both")
    steps = []
    for script in analysis_scripts(analyses):
        if only and only not in script.name:
            continue
        try:
            target = results / declared_result(script)
            expected = declared_expected_seconds(script)
        except (ValueError, SyntaxError, OSError) as exc:
            steps.append(Step("analysis", script, [], status="FAILED", note=str(exc)))
            continue
        scale = ["--quick"] if quick else ["--full"] if full and "full" in expected else []
        level = "quick" if quick else "full" if full and "full" in expected else "default"
        step = Step("analysis", script, ["--out", str(target)] + scale, target,
                    expected_seconds=expected.get(level, expected.get("default") if level == "full" else None))
        if target.exists() and not force:
            step.status, step.note = "skipped", f"{target.name} exists (--force re-runs)"
        steps.append(step)
    for script in figure_scripts(figures):
        if only and only not in script.name:
            continue
        steps.append(Step("figure", script, ["--results", str(results), "--out", str(out)]))
    return steps


def child_environment() -> dict:
    """Environment for the steps: headless matplotlib, numba's cache in the build folder."""
    env = dict(os.environ)
    env.setdefault("MPLBACKEND", "Agg")
    cache = Path(env.get("NEURODELAY_CACHE", ROOT / "build" / "cache"))
    env.setdefault("NUMBA_CACHE_DIR", str(cache / "numba"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _progress_bar(step: Step, done: threading.Event) -> threading.Thread | None:
    """A thread drawing elapsed / expected seconds of a running analysis on stderr (None without an estimate)."""
    if step.kind != "analysis" or not step.expected_seconds:
        return None
    from tqdm.auto import tqdm

    def tick():
        total = max(1, int(round(step.expected_seconds)))
        with tqdm(total=total, desc=step.script.stem, unit="s", leave=False,
                  bar_format="{desc}: {bar} {n}/{total} s expected") as bar:
            start = time.perf_counter()
            while not done.wait(1.0):
                bar.n = min(int(time.perf_counter() - start), total)
                bar.refresh()
    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    return thread


def run_step(step: Step, env: dict) -> None:
    """Run one pending step in a subprocess; record status and time."""
    start = time.perf_counter()
    done = threading.Event()
    bar = _progress_bar(step, done)
    try:
        proc = subprocess.run([sys.executable, "-c", _LAUNCHER, str(step.script), *step.args],
                              cwd=ROOT, env=env)
        if proc.returncode != 0:
            step.status, step.note = "FAILED", f"exit status {proc.returncode}"
        elif step.expect is not None and not step.expect.exists():
            step.status, step.note = "FAILED", f"finished but did not write {step.expect}"
        else:
            step.status = "ok"
    except OSError as exc:
        step.status, step.note = "FAILED", f"could not start: {exc}"
    finally:
        done.set()
        if bar is not None:
            bar.join()
    step.seconds = time.perf_counter() - start


def _line(step: Step) -> str:
    note = f"  ({step.note})" if step.note else ""
    return f"[{step.status:>7}] {step.name:<45} {step.seconds:7.1f} s{note}"


def main(argv=None) -> int:
    """Run the pipeline; returns the exit status (1 if any step failed)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--rerun", action="store_true",
                      help="recompute every result at the reduced scale (minutes) into build/rerun/")
    mode.add_argument("--full", action="store_true",
                      help="recompute every result at the published scale (hours) into analyses/results")
    parser.add_argument("--force", action="store_true", help="re-run analyses whose result exists")
    parser.add_argument("--quick", action="store_true", help="pass --quick to the analyses it runs")
    parser.add_argument("--only", metavar="SUBSTRING", help="only scripts whose file name contains this")
    parser.add_argument("--results", type=Path, help="folder of NetCDF results (default analyses/results; "
                        "build/rerun/results with --rerun)")
    parser.add_argument("--out", type=Path, help="folder for the figures (default paper_figures/output; "
                        "build/rerun/figures with --rerun)")
    parser.add_argument("--analyses", type=Path, default=ANALYSES, help="folder of the analysis scripts")
    parser.add_argument("--figures", type=Path, default=FIGURES, help="folder of the fig_*.py scripts")
    args = parser.parse_args(argv)
    if (args.rerun or args.full) and args.quick:
        parser.error("--quick goes with neither --rerun (which is already quick) nor --full")
    rerun_root = ROOT / "build" / "rerun"
    results = args.results or (rerun_root / "results" if args.rerun else ANALYSES / "results")
    out = args.out or (rerun_root / "figures" if args.rerun else FIGURES / "output")
    steps = plan(results.resolve(), out.resolve(), force=args.force or args.rerun or args.full,
                 quick=args.quick or args.rerun, full=args.full, only=args.only,
                 analyses=args.analyses, figures=args.figures)
    expected = [s.expected_seconds for s in steps if s.kind == "analysis" and s.status == "pending"]
    if expected:
        known = [e for e in expected if e]
        print(f"make_all: {len(expected)} analyses to run, expected about {sum(known) / 60:.0f} min on 2 cores"
              + (f" ({len(expected) - len(known)} without an estimate)" if len(known) < len(expected) else ""),
              flush=True)
    env = child_environment()
    total = time.perf_counter()
    for step in steps:
        if step.status == "pending":
            print(f"--- {step.name}", flush=True)
            run_step(step, env)
        print(_line(step), flush=True)
    failed = [s for s in steps if s.status == "FAILED"]
    counts = {s: sum(step.status == s for step in steps) for s in ("ok", "skipped", "FAILED")}
    print(f"make_all: {counts['ok']} ok, {counts['skipped']} skipped, {counts['FAILED']} failed "
          f"in {time.perf_counter() - total:.1f} s")
    for step in failed:
        print(f"  failed: {step.name}: {step.note}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
