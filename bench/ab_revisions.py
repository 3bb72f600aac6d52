"""Interleaved timing of two revisions of neurodelay on one case, for before/after comparisons on a shared host.

Each revision is loaded once by its own worker process (``--base REV`` exported with ``git archive`` to a
temporary folder; ``--head`` the same, or by default this checkout with its uncommitted changes), each with
its own numba cache. The parent then asks the two workers for one timed run at a time, alternating (A B,
B A, A B, ...), so that a host whose speed drifts by 1.5x within minutes slows both alike: comparisons in
separate processes, one after the other, were useless on such a host (the same code 232-372 ms per trial
within minutes). Interleaved, the median of the per-round ratios repeated within about 5 % on one
thread and 2 trials, and within about 7 % on 2 threads (the same two revisions: 1.067 in 8 rounds, 0.953
in 16): take 16 rounds or more, and trust a difference of 10 % or more. Prints a table (fastest and
median run of each, the median of the per-round ratios) and writes JSON.

Cases (bench/gradient.py's SHD-size networks, 700 inputs, 8000 input spikes per trial):

* ``recurrent-forward``: ``neurodelay.layered.recurrent.simulate`` of the recurrent network;
* ``recurrent-adjoint``: its loss sources and ``neurodelay.layered.recurrent.adjoint`` (on the record of a
  forward pass made once);
* ``feedforward``: ``neurodelay.layered.fused_loss_and_grad`` of the feedforward network.

Each worker also reports its spike count and the largest weight gradient of its first run, so that a
change meant to keep the results shows that it did (equal counts, gradients equal to rounding).

Usage::

    python bench/ab_revisions.py --base HEAD~1 --case recurrent-adjoint [--head REV] [--trials 8]
           [--rounds 16] [--threads 1] [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from _common import REPO_ROOT, default_json_path, package_versions, print_table, write_json_atomic, writable_path

CASES = ("recurrent-forward", "recurrent-adjoint", "feedforward")

# the worker: imports the revision's package (its folder first on sys.path) and this checkout's
# bench/gradient.py for the networks and inputs (the same for both revisions), prepares the case, then
# answers one line per request: "run" -> the seconds of one timed run; "quit" ends it
_WORKER = r"""
import json, os, sys, time
root, bench, case, n, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
sys.path[:0] = [root, bench]
import numpy as np
import gradient as G
from neurodelay import layered
from neurodelay.layered import recurrent
from neurodelay.losses import WeightedIntegralCrossEntropy
assert os.path.realpath(layered.__file__).startswith(os.path.realpath(root)), layered.__file__
net = G.build_network(0.15, case != "feedforward")
inputs, labels = G.random_inputs(n, 8000, seed=3)
duration = 1.0 + 0.15
loss = WeightedIntegralCrossEntropy("out", tau_weight=0.5)
if case == "feedforward":
    def run():
        return layered.fused_loss_and_grad(net, inputs, duration, loss, labels, n_threads=threads)[1:]
elif case == "recurrent-forward":
    def run():
        rec = recurrent.simulate(net, inputs, duration, n_threads=threads)
        return None, rec
else:
    record = recurrent.simulate(net, inputs, duration, n_threads=threads)
    def run():
        _, sources = loss.value_and_sources(record, labels)
        return recurrent.adjoint(record, sources, n_threads=threads), record
result, rec = run()                          # compiles (or loads the cache) and checks
print(json.dumps({"spikes": int(len(rec.time)),
                  "largest_weight_gradient": None if result is None else float(np.abs(result.weight).max())}),
      flush=True)
for line in sys.stdin:
    if line.strip() != "run":
        break
    t0 = time.perf_counter()
    run()
    print(time.perf_counter() - t0, flush=True)
"""


def _export(rev: str, into: Path) -> Path:
    """The package folder of git revision `rev`, extracted into `into`; returns `into`."""
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", rev, "neurodelay"], capture_output=True,
                             check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


class _Worker:
    """One revision's worker process (see _WORKER)."""

    def __init__(self, root: Path, cache: Path, case: str, trials: int, threads: int):
        env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), NEURODELAY_CACHE=str(cache))
        self.proc = subprocess.Popen([sys.executable, "-c", _WORKER, str(root), str(REPO_ROOT / "bench"), case,
                                      str(trials), str(threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env, cwd=str(root))
        self.check = None

    def ready(self):
        """Wait for the worker's first run (compilation and the check: spike count, largest gradient)."""
        self.check = json.loads(self._line())

    def _line(self) -> str:
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"ab_revisions.py: error: a worker ended (exit {self.proc.wait()}); see its error above")
        return line

    def run(self) -> float:
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        return float(self._line())

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="git revision measured as A")
    parser.add_argument("--head", default=None, help="git revision measured as B (default: this checkout as it is)")
    parser.add_argument("--case", choices=CASES, required=True)
    parser.add_argument("--quick", action="store_true", help="2 trials per run, 4 rounds (a check of the tool)")
    parser.add_argument("--trials", type=int, default=8, help="trials per run (default 8)")
    parser.add_argument("--rounds", type=int, default=16, help="timed runs of each revision (default 16)")
    parser.add_argument("--threads", type=int, default=1, help="worker threads of each run (default 1)")
    parser.add_argument("--json", type=writable_path, default=default_json_path("ab_revisions"))
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.rounds = 2, 4
    if args.trials < 1 or args.rounds < 1 or args.threads < 1:
        parser.error("--trials, --rounds and --threads must be at least 1")
    for rev in (args.base, args.head):
        if rev is not None and subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--verify", "--quiet",
                                               f"{rev}^{{commit}}"], capture_output=True).returncode != 0:
            parser.error(f"{rev!r} is not a revision of this repository")
    with tempfile.TemporaryDirectory(prefix="neurodelay-ab-") as tmp:
        tmp = Path(tmp)
        roots = {}
        for side, rev in (("base", args.base), ("head", args.head)):
            if rev is None:
                roots[side] = REPO_ROOT
            else:
                (tmp / side).mkdir()
                roots[side] = _export(rev, tmp / side)
        workers = {}
        try:
            for side in ("base", "head"):             # both start (and compile) at once
                workers[side] = _Worker(roots[side], tmp / f"cache-{side}", args.case, args.trials, args.threads)
            for w in workers.values():
                w.ready()
            times = {"base": [], "head": []}
            for r in range(args.rounds):
                for side in (("base", "head") if r % 2 == 0 else ("head", "base")):
                    times[side].append(1e3 * workers[side].run() / args.trials)
        finally:
            for w in workers.values():
                w.close()
    a, b = np.array(times["base"]), np.array(times["head"])
    head_name = args.head or "this checkout"
    rows = [{"revision": f"base {args.base}", "fastest_ms_per_trial": a.min(), "median_ms_per_trial": np.median(a),
             **workers["base"].check},
            {"revision": f"head {head_name}", "fastest_ms_per_trial": b.min(), "median_ms_per_trial": np.median(b),
             **workers["head"].check}]
    print_table(rows)
    ratio = float(np.median(b / a))
    print(f"{args.case}, {args.trials} trials, {args.threads} thread(s), {args.rounds} rounds: head / base "
          f"median of the per-round ratios {ratio:.3f}, fastest runs {b.min() / a.min():.3f}")
    write_json_atomic(args.json, {"case": args.case, "base": args.base, "head": head_name, "trials": args.trials,
                                  "threads": args.threads, "rounds": args.rounds,
                                  "ms_per_trial": {"base": a.tolist(), "head": b.tolist()},
                                  "median_ratio_head_over_base": ratio,
                                  "fastest_ratio_head_over_base": float(b.min() / a.min()),
                                  "checks": {"base": workers["base"].check, "head": workers["head"].check},
                                  "versions": package_versions("numpy", "numba")})
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
