"""Gradient check: exact adjoint gradients against finite differences, and their cost vs the maximum delay.

1. Agreement. On the small random networks of :mod:`neurodelay.gradcheck`
   (5 inputs -> 6 LIF hidden with a refractory period, several spikes per
   hidden neuron -> 3 readouts and 3 LIF time-to-first-spike outputs), one
   feedforward and one with recurrent hidden synapses, and two losses that read
   both outputs, the adjoint gradient (:func:`neurodelay.gradients.loss_and_grad`)
   of every parameter kind (weights; synaptic, axonal and dendritic delays;
   tau_m, tau_s, theta per neuron; tau_m shared by a population) is compared
   with the central finite difference of the exact forward engine
   (:func:`neurodelay.gradcheck.finite_differences`) coordinate by coordinate.
   Coordinates where a step changes a spike count (or moves a readout's
   maximum to another local maximum) are stored as skipped.
2. Cost. Forward (simulate) and backward (loss + adjoint for all weights and
   synaptic delays) time per trial, wall and process CPU, of the gradient
   benchmark's network (``bench/gradient.py``, reduced to fewer hidden
   neurons) against the maximum synaptic delay, feedforward and recurrent.

Result: analyses/results/gradient_check.nc (read by paper_figures/fig_gradients.py).
Usage: python analyses/gradient_check.py [--out PATH] [--quick] [--seed N]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

from neurodelay import losses
from neurodelay.delays import DELAY_KINDS
from neurodelay import simulate
from neurodelay.events.forward import default_threads
from neurodelay.gradcheck import FD_STEP, finite_differences, parameter_keys, random_network
from neurodelay.gradients import get_param, loss_and_grad
from neurodelay.io import write_netcdf

RESULT = "gradient_check.nc"
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "analyses" / "results" / RESULT
BENCH_SCRIPT = ROOT / "bench" / "gradient.py"

SEED = 0                     # coordinate sampling (the networks have their own fixed seeds)
DURATION = 0.05              # s, the finite-difference trials
# (seed, recurrent) of the networks; the same draws as tests/gradient_cases.py, whose guard (in
# tests/conformance/test_conformance_gradients.py) checks several spikes per hidden neuron and both
# firing and silent TTFS outputs
NETWORKS = {"feedforward": (3, False), "recurrent": (1, True)}
LOSSES = {
    "TTFS cross-entropy + voltage integral": lambda: (losses.FirstSpikeCrossEntropy("ttfs", xi=3e-3)
                                                      + 0.5 * losses.WeightedIntegralCrossEntropy(
                                                          "out", tau_weight=10e-3)),
    "TTFS MSE + max-voltage": lambda: (losses.FirstSpikeMSE("ttfs", margin=2e-3)
                                       + losses.MaxVoltageCrossEntropy("out")),
}
GRADIENT_UNITS = {"weight": "1/weight", "theta": "1/theta", **{k: "1/s" for k in DELAY_KINDS},
                  "tau_m": "1/s", "tau_s": "1/s"}
PARAMETER_UNITS = {"weight": "weight (jump of I)", "theta": "theta (V units)", **{k: "s" for k in DELAY_KINDS},
                   "tau_m": "s", "tau_s": "s"}

# cost sweep: the benchmark's SHD-like network with fewer hidden neurons
COST = {"full": dict(max_delays=(0.025, 0.05, 0.1, 0.15, 0.3, 0.5), n_hid=128, batch=4, repeats=2,
                     input_spikes=8000),
        "quick": dict(max_delays=(0.025, 0.15, 0.5), n_hid=32, batch=2, repeats=1, input_spikes=8000)}


def load_benchmark():
    """bench/gradient.py as a module (its network builder and timing are reused, not copied)."""
    bench = str(BENCH_SCRIPT.parent)
    if bench not in sys.path:
        sys.path.append(bench)          # for its `from _common import ...`
    spec = importlib.util.spec_from_file_location("_bench_gradient", BENCH_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _relative_errors(adjoint: np.ndarray, fd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per coordinate: |adjoint - fd| / max(|adjoint|, |fd|) (NaN where both are exactly 0 or fd is
    skipped), and |adjoint - fd| / max over the key's coordinates of |fd| (the tests' measure)."""
    diff = np.abs(adjoint - fd)
    size = np.maximum(np.abs(adjoint), np.abs(fd))
    relative = np.divide(diff, size, out=np.full_like(diff, np.nan), where=size > 0)
    scale = np.nanmax(np.abs(fd), initial=0.0) if np.isfinite(fd).any() else 0.0
    scaled = diff / scale if scale > 0 else np.full_like(diff, np.nan)
    return relative, scaled


def check_gradients(n_trials: int, per_key: int | None, seed: int) -> tuple[dict, dict]:
    """Adjoint vs finite differences for every (network, loss, key, sampled coordinate).

    per_key: coordinates sampled per key (None: all). Returns coordinate-wise columns and
    per-network activity (spikes per hidden neuron and trial, TTFS outputs that fire).
    """
    rng = np.random.default_rng(seed)
    columns = {name: [] for name in ("network", "loss", "key", "kind", "shared", "index", "value", "step",
                                     "adjoint", "finite_difference", "relative_error", "scaled_error")}
    activity = {}
    for net_name, (net_seed, recurrent) in NETWORKS.items():
        net, inputs, labels = random_network(net_seed, recurrent, n_trials=n_trials)
        record = simulate(net, inputs, DURATION)
        activity[net_name] = (record.spikes("hid").counts(), record.spikes("ttfs").counts())
        keys = parameter_keys(net)
        for loss_name, make_loss in LOSSES.items():
            loss = make_loss()
            grads = loss_and_grad(net, inputs, DURATION, loss, labels, keys).grads
            for key in keys:
                value = get_param(net, key).reshape(-1)
                chosen = np.arange(value.size)
                if per_key is not None and value.size > per_key:
                    chosen = np.sort(rng.choice(value.size, per_key, replace=False))
                fd = finite_differences(net, inputs, DURATION, loss, labels, key, coordinates=chosen)
                adj = np.asarray(grads[key]).reshape(-1)[chosen]
                relative, scaled = _relative_errors(adj, fd)
                n = len(chosen)
                columns["network"] += [net_name] * n
                columns["loss"] += [loss_name] * n
                columns["key"] += [".".join(key)] * n
                columns["kind"] += [key[1]] * n
                columns["shared"] += [len(key) == 3] * n
                columns["index"] += list(chosen)
                columns["value"] += list(value[chosen])
                columns["step"] += [FD_STEP[key[1]]] * n
                columns["adjoint"] += list(adj)
                columns["finite_difference"] += list(fd)
                columns["relative_error"] += list(relative)
                columns["scaled_error"] += list(scaled)
    return columns, activity


def measure_cost(bench, max_delays, n_hid: int, batch: int, repeats: int, input_spikes: int,
                 threads: int) -> dict:
    """Per-trial forward/backward cost (wall and CPU ms) of the benchmark network vs the maximum delay,
    for the feedforward and the recurrent case (bench.measure: fastest / least of `repeats`)."""
    # warm-up: compile (or load from numba's cache) the kernels outside the timings
    small = bench.build_network(0.15, True, n_in=50, n_hid=16, n_out=4)
    warm_inputs, warm_labels = bench.random_inputs(2, 200, seed=99, n_in=50, n_classes=4)
    loss_and_grad(small, warm_inputs, 0.3, losses.WeightedIntegralCrossEntropy("out", tau_weight=0.5),
                  warm_labels, bench.param_keys(small), n_threads=1)
    inputs, labels = bench.random_inputs(batch, input_spikes, seed=3)
    fields = ("forward_ms_per_trial", "backward_ms_per_trial", "forward_cpu_ms_per_trial",
              "backward_cpu_ms_per_trial", "hidden_spikes_per_trial", "input_spikes_per_trial",
              "events_in_trial_0")
    out = {f: np.zeros((2, len(max_delays))) for f in fields}
    for c, recurrent in enumerate((False, True)):
        for m, d in enumerate(max_delays):
            net = bench.build_network(d, recurrent, n_hid=n_hid)
            row = bench.measure(net, inputs, labels, bench.INPUT_WINDOW + d, threads, repeats)
            for f in fields:
                out[f][c, m] = row[f]
    return out


def run(quick: bool = False, seed: int = SEED, threads: int | None = None) -> xr.Dataset:
    """Both parts of the analysis as one Dataset (see the module docstring)."""
    n_trials, per_key = (2, 4) if quick else (4, None)
    columns, activity = check_gradients(n_trials, per_key, seed)
    fd = np.array(columns["finite_difference"])
    coords = {"coordinate": np.arange(len(fd))}
    kinds = np.array(columns["kind"])
    data = {
        "network": ("coordinate", np.array(columns["network"], dtype=str)),
        "loss": ("coordinate", np.array(columns["loss"], dtype=str)),
        "key": ("coordinate", np.array(columns["key"], dtype=str), {"description": "target.kind[.shared]"}),
        "kind": ("coordinate", kinds.astype(str)),
        "shared": ("coordinate", np.array(columns["shared"], dtype=bool),
                   {"description": "one value shared by the population (gradient: sum over its neurons)"}),
        "index": ("coordinate", np.array(columns["index"], dtype=np.int64),
                  {"description": "flat index into the parameter array"}),
        "value": ("coordinate", np.array(columns["value"]),
                  {"units": "parameter units (see parameter_units)"}),
        "parameter_units": ("coordinate", np.array([PARAMETER_UNITS[k] for k in kinds], dtype=str)),
        "step": ("coordinate", np.array(columns["step"]), {"units": "parameter units",
                                                           "description": "finite-difference step h"}),
        "adjoint": ("coordinate", np.array(columns["adjoint"]),
                    {"units": "see gradient_units", "description": "dL/dparam by the adjoint (EventProp)"}),
        "finite_difference": ("coordinate", fd, {
            "units": "see gradient_units",
            "description": "(L(p+h) - L(p-h)) / 2h of the exact forward; NaN: skipped (a step changed a "
                           "spike count or a readout's maximum)"}),
        "gradient_units": ("coordinate", np.array([GRADIENT_UNITS[k] for k in kinds], dtype=str)),
        "skipped": ("coordinate", np.isnan(fd)),
        "relative_error": ("coordinate", np.array(columns["relative_error"]), {
            "units": "1", "description": "|adjoint - fd| / max(|adjoint|, |fd|); NaN: skipped or both 0"}),
        "scaled_error": ("coordinate", np.array(columns["scaled_error"]), {
            "units": "1", "description": "|adjoint - fd| / max |fd| over the coordinates of the same "
                                         "(network, loss, key) (the measure of tests/test_gradients.py)"}),
    }
    names = list(NETWORKS)
    n_hidden = len(activity[names[0]][0][0])
    data["hidden_spike_count"] = (("network_name", "trial", "hidden_neuron"),
                                  np.stack([activity[n][0] for n in names]),
                                  {"units": "spikes", "description": f"spikes of each hidden neuron in "
                                                                     f"[0, {DURATION}] s"})
    data["ttfs_spike_count"] = (("network_name", "trial", "ttfs_neuron"),
                                np.stack([activity[n][1] for n in names]), {"units": "spikes"})
    coords.update(network_name=("network_name", np.array(names, dtype=str)), trial=np.arange(n_trials),
                  hidden_neuron=np.arange(n_hidden))

    cost_settings = COST["quick" if quick else "full"]
    threads = threads or default_threads()
    bench = load_benchmark()
    load_before = os.getloadavg()[0]
    cost = measure_cost(bench, threads=threads, **cost_settings)
    load_after = os.getloadavg()[0]
    coords.update(case=("case", np.array(["feedforward", "recurrent"], dtype=str)),
                  max_delay=("max_delay", np.array(cost_settings["max_delays"]),
                             {"units": "s", "description": "synaptic delays uniform on [0, max_delay]"}))
    described = {
        "forward_ms_per_trial": ("ms", "simulate, wall time per trial (fastest of the repeats)"),
        "backward_ms_per_trial": ("ms", "loss + adjoint for all weights and synaptic delays, wall per trial"),
        "forward_cpu_ms_per_trial": ("ms", "simulate, process CPU time (all threads) per trial"),
        "backward_cpu_ms_per_trial": ("ms", "loss + adjoint, process CPU time (all threads) per trial"),
        "hidden_spikes_per_trial": ("spikes", "hidden spikes per trial"),
        "input_spikes_per_trial": ("spikes", "input spikes per trial"),
        "events_in_trial_0": ("events", "reverse-pass events in trial 0 (arrivals, spikes, ends of refractoriness)"),
    }
    for name, (units, description) in described.items():
        data[name] = (("case", "max_delay"), cost[name], {"units": units, "description": description})

    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update(
        analysis="gradient_check", seed=seed, quick=int(quick), duration_s=DURATION, n_trials=n_trials,
        coordinates_per_key="all" if per_key is None else per_key,
        network_seeds=str({k: v[0] for k, v in NETWORKS.items()}),
        losses=str({k: repr(v()) for k, v in LOSSES.items()}),
        cost_network=(f"bench/gradient.py build_network: {bench.N_IN} inputs, {cost_settings['n_hid']} hidden LIF, "
                      f"{bench.N_OUT} readouts; about {cost_settings['input_spikes']} input spikes in "
                      f"{bench.INPUT_WINDOW} s per trial; trial length 1 s + max_delay"),
        cost_batch=cost_settings["batch"], cost_repeats=cost_settings["repeats"], cost_threads=threads,
        cost_loss="WeightedIntegralCrossEntropy(tau_weight=0.5 s)",
        load_average_before=load_before, load_average_after=load_after, cpu_count=os.cpu_count())
    return ds


def summary(ds: xr.Dataset) -> str:
    """One line per parameter kind: compared / skipped coordinates, median and max relative error."""
    lines = []
    for kind in dict.fromkeys(ds["kind"].values):
        sel = ds["kind"].values == kind
        rel = ds["relative_error"].values[sel]
        scaled = ds["scaled_error"].values[sel]
        lines.append(f"  {kind:<10} {sel.sum():4d} coords, {ds['skipped'].values[sel].sum():3d} skipped, "
                     f"relative error median {np.nanmedian(rel):.1e} max {np.nanmax(rel):.1e}, "
                     f"scaled max {np.nanmax(scaled):.1e}")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Run the gradient check and the cost sweep and write the NetCDF result (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"result file (default {RESULT} in analyses/results/)")
    parser.add_argument("--quick", action="store_true",
                        help="2 trials, 4 sampled coordinates per key, a small cost sweep (a few seconds)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"coordinate sampling seed (default {SEED})")
    parser.add_argument("--threads", type=int, help="worker threads for the cost sweep (default: all cores)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    ds = run(quick=args.quick, seed=args.seed, threads=args.threads)
    write_netcdf(ds, args.out)
    total = ds["forward_ms_per_trial"] + ds["backward_ms_per_trial"]
    print(f"gradient_check: {ds.sizes['coordinate']} coordinates, {int(ds['skipped'].sum())} skipped")
    print(summary(ds))
    for case in ds["case"].values:
        row = ", ".join(f"{d * 1e3:.0f} ms: {v:.0f}" for d, v in zip(ds["max_delay"].values,
                                                                     total.sel(case=case).values))
        print(f"  {case} forward+backward ms/trial by max delay: {row}")
    print(f"  -> {args.out} ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
