"""First-call benchmark: what a user waits for in a fresh Python process, with a cold and a warm cache.

Each measurement runs in a fresh subprocess with its own cache folder
(``NEURODELAY_CACHE``, numba's cache inside it):

* ``cold``: the cache folder is empty, so every numba kernel the calls need is
  compiled;
* ``warm``: a second process on the folder the cold one filled, so the kernels
  are loaded from disk.

In each process, in order: ``import neurodelay``; importing the public modules
the README's first example uses (numba comes in here); building the README's
20 -> 10 -> 2 network with 8 trials; the first ``simulate``; the first
``loss_and_grad`` (weights, synaptic and dendritic delays, tau_m) right after
it. Whether brian2 was imported by then is reported too (nothing here needs it).
Each step is timed in wall-clock seconds and in CPU seconds of the process
(all threads): on a shared, loaded machine the CPU times are the steadier
comparison (numba compiles on one thread).

``--baseline REF`` measures the ``neurodelay`` package of git revision REF
(extracted into a temporary folder and put first on ``PYTHONPATH``) in the same
run, interleaved with this checkout's, so the before/after numbers share the
machine's load. Both get ``NUMBA_CACHE_DIR`` set explicitly, as older
revisions need it.

usage: python bench/first_call.py [--repeats N] [--baseline REF] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import (REPO_ROOT, default_json_path, package_versions, print_table, write_json_atomic,
                     writable_path)

_CHILD = r"""
import json, sys, time
clock = lambda: (time.perf_counter(), time.process_time())
t0 = clock()
import neurodelay
t1 = clock()
import numpy as np
from neurodelay.delays import Delays
from neurodelay import simulate
from neurodelay.gradients import loss_and_grad
from neurodelay.losses import WeightedIntegralCrossEntropy
from neurodelay.network import LIF, Network, Readout, SpikeSource
from neurodelay.spikes import SpikeTrains
t2 = clock()
rng = np.random.default_rng(0)
net = Network().add(SpikeSource("inp", 20), LIF("hid", 10, tau_m=10e-3, tau_s=5e-3, theta=1.0, refractory=1e-3),
                    Readout("out", 2, tau_m=20e-3, tau_s=5e-3))
net = net.connect("inp", "hid", weight=rng.normal(0.6, 0.3, 200),
                  delays=Delays(axonal=rng.uniform(0, 5e-3, 20), synaptic=rng.uniform(0, 5e-3, 200)))
net = net.connect("hid", "out", weight=0.5, delays=Delays(dendritic=[1e-3, 3e-3]))
inputs = SpikeTrains.from_lists([[np.sort(rng.uniform(0, 0.1, 5)) for _ in range(20)] for _ in range(8)],
                                n_neurons=20)
t3 = clock()
rec = simulate(net, inputs, 0.1, record=["out"], sample_times=np.linspace(0, 0.1, 11))
t4 = clock()
loss = WeightedIntegralCrossEntropy("out", tau_weight=50e-3)
params = [("inp->hid", "weight"), ("inp->hid", "synaptic"), ("hid->out", "dendritic"), ("hid", "tau_m")]
value, grads, _ = loss_and_grad(net, inputs, 0.1, loss, rng.integers(0, 2, 8), params)
t5 = clock()
out = {"n_spikes": int(len(rec.time)), "loss": float(value), "brian2_imported": "brian2" in sys.modules,
       "package": neurodelay.__file__}
for name, a, b in [("import", t0, t1), ("modules", t1, t2), ("build", t2, t3), ("simulate", t3, t4),
                   ("loss_and_grad", t4, t5), ("total", t0, t5)]:
    out[name + "_s"], out[name + "_cpu_s"] = b[0] - a[0], b[1] - a[1]
print(json.dumps(out))
"""

TIMES = ["import_s", "modules_s", "build_s", "simulate_s", "loss_and_grad_s", "total_s"]
CPU_TIMES = [name.replace("_s", "_cpu_s") for name in TIMES]


def _extract(ref: str, into: Path) -> Path:
    """Write the ``neurodelay`` package of git revision `ref` into `into`; returns `into`."""
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", "--format=tar", ref, "neurodelay"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def _child(code_dir: Path, cache: Path) -> dict:
    """Run the measured calls in a fresh interpreter importing neurodelay from `code_dir`."""
    env = {**os.environ, "NEURODELAY_CACHE": str(cache), "NUMBA_CACHE_DIR": str(cache / "numba"),
           "PYTHONPATH": os.pathsep.join([str(code_dir), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    out = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True,
                         cwd=cache.parent)
    if out.returncode:
        raise RuntimeError(f"the measuring process failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    expected = (code_dir / "neurodelay" / "__init__.py").resolve()
    if Path(result["package"]).resolve() != expected:
        raise RuntimeError(f"the child imported {result['package']}, not {expected}")
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=1, help="cold + warm pairs per code version (default 1)")
    ap.add_argument("--baseline", metavar="REF", help="also measure the package of this git revision")
    ap.add_argument("--json", type=writable_path, default=default_json_path("first_call"),
                    help="where to write results")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {args.repeats}")

    with tempfile.TemporaryDirectory(prefix="neurodelay-first-call-") as tmp:
        tmp = Path(tmp)
        versions = {"this checkout": REPO_ROOT}
        if args.baseline:
            (tmp / "baseline").mkdir()
            versions[f"baseline {args.baseline}"] = _extract(args.baseline, (tmp / "baseline").resolve())
        runs = []
        for rep in range(args.repeats):
            for label, code_dir in versions.items():   # interleaved: both versions see the same load
                cache = tmp / f"cache-{len(runs)}"
                cache.mkdir()
                for state in ("cold", "warm"):
                    result = _child(code_dir, cache)
                    runs.append({"code": label, "cache": state, "repeat": rep,
                                 **{k: v for k, v in result.items() if k != "package"}})
                    print(f"{label:>24} {state}: " + "  ".join(f"{k} {result[k]:.2f}" for k in TIMES)
                          + "  (cpu: " + "  ".join(f"{result[k]:.2f}" for k in CPU_TIMES) + ")", flush=True)

    rows = []
    for label in versions:
        for state in ("cold", "warm"):
            sel = [r for r in runs if r["code"] == label and r["cache"] == state]
            rows.append({"code": label, "cache": state, "n": len(sel),
                         **{k: statistics.median(r[k] for r in sel) for k in TIMES + CPU_TIMES},
                         "brian2_imported": any(r["brian2_imported"] for r in sel)})
    print("\nmedian wall-clock seconds per fresh process")
    print_table(rows, ["code", "cache", "n"] + TIMES + ["brian2_imported"], floatfmt=".2f")
    print("\nmedian CPU seconds of the process (all threads; less sensitive to a loaded machine)")
    print_table(rows, ["code", "cache", "n"] + CPU_TIMES, floatfmt=".2f")
    path = write_json_atomic(args.json, {"benchmark": "first_call", "summary": rows, "runs": runs,
                                         "load_average": os.getloadavg(),
                                         "versions": package_versions("numba", "numpy", "brian2")})
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
