"""The sorts the engines do on the host: :func:`neurodelay._sorting.grouped_lexsort` against the numpy
sorts it replaced, on inputs of the size they meet at SHD scale.

Cases (random data of the stated shape, seed 0):

* ``input spikes``: 64 trials x ~8000 input spikes on 700 channels, unsorted within trials, by
  (trial, time, channel) (:meth:`neurodelay.spikes.SpikeTrains.sort_order`; numpy: ``np.lexsort``);
* ``GPU record``: 256 trials x 6000 spikes of 276 neurons, each neuron's spikes sorted in time and the
  neurons in order, by (trial, time, neuron) (``neurodelay.layered.gpu._trial_results``; numpy: the two
  stable sorts it used before, a mergesort on time then a radix sort on the 16-bit trial);
* ``synapses``: the 700 -> 256 -> 20 network's 184k synapses by (presynaptic neuron, delay,
  postsynaptic neuron) (:func:`neurodelay.flat.flatten`; numpy: ``np.lexsort``).

Every case checks that both give the same permutation. Printed as a table (fastest of ``--repeats``
calls, ms) and written as JSON.

usage: python bench/sorting.py [--repeats 5] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import default_json_path, package_versions, print_table, write_json_atomic, writable_path  # noqa: E402

from neurodelay._sorting import grouped_lexsort  # noqa: E402


def input_spikes(rng):
    counts = rng.poisson(8000, 64)
    n = counts.sum()
    trial = np.repeat(np.arange(64), counts)
    return (trial, 64, rng.uniform(0, 1.0, n), rng.integers(0, 700, n),
            lambda g, p, s: np.lexsort((s, p, g)))


def gpu_record(rng):
    n_trials, n_neurons = 256, 276
    counts = rng.multinomial(6000, np.ones(n_neurons) / n_neurons, size=n_trials).ravel()
    trial = np.repeat(np.repeat(np.arange(n_trials), n_neurons), counts)
    neuron = np.repeat(np.tile(np.arange(n_neurons), n_trials), counts)
    t = np.concatenate([np.sort(rng.uniform(0, 1.15, c)) for c in counts])
    t[::97] = np.round(t[::97], 3)          # some equal times

    def numpy_sorts(g, p, s):
        o = np.argsort(p, kind="stable")
        return o[np.argsort(g[o].astype(np.uint16), kind="stable")]
    return trial, n_trials, t, neuron, numpy_sorts


def synapses(rng):
    pre = np.concatenate([np.repeat(np.arange(700), 256), 700 + np.repeat(np.arange(256), 20)])
    post = np.concatenate([np.tile(np.arange(256), 700), np.tile(np.arange(20), 256)])
    return pre, 956, rng.uniform(0, 0.15, len(pre)), post, lambda g, p, s: np.lexsort((s, p, g))


CASES = {"input spikes": input_spikes, "GPU record": gpu_record, "synapses": synapses}


def fastest(f, repeats: int) -> float:
    """Fastest wall time (s) of `repeats` calls of f()."""
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per sort, the fastest counts")
    parser.add_argument("--json", type=writable_path, default=default_json_path("sorting"), help="output JSON path")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    rows, out = [], {}
    for name, make in CASES.items():
        group, n_groups, primary, secondary, numpy_sort = make(np.random.default_rng(0))
        ours = grouped_lexsort(group, n_groups, primary, secondary)      # also compiles it
        if not np.array_equal(ours, numpy_sort(group, primary, secondary)):
            raise SystemExit(f"{name}: grouped_lexsort and numpy disagree")
        t_np = fastest(lambda: numpy_sort(group, primary, secondary), args.repeats)
        t_ours = fastest(lambda: grouped_lexsort(group, n_groups, primary, secondary), args.repeats)
        out[name] = {"entries": len(group), "groups": n_groups, "numpy_ms": 1e3 * t_np,
                     "grouped_lexsort_ms": 1e3 * t_ours, "speedup": t_np / t_ours}
        rows.append({"case": name, "entries": len(group), "numpy ms": 1e3 * t_np,
                     "grouped_lexsort ms": 1e3 * t_ours, "speedup": t_np / t_ours})
    print_table(rows)
    result = {"cases": out, "repeats": args.repeats, "load_average": list(os.getloadavg()),
              "package_versions": package_versions("numpy", "numba")}
    write_json_atomic(args.json, result)
    print(f"written {args.json}")
    return result


if __name__ == "__main__":
    main()
