"""Exact vs grid timing in Brian2: spike-time error against the exact event engine vs dt, and a Jeffress map.

Part 1 (error vs dt). A random two-layer network (40 Poisson inputs -> 30 LIF
-> 20 LIF, heterogeneous time constants, all three delay kinds, mixed-sign
weights) is simulated by the exact event engine and by Brian2 in ``grid`` mode
(plain Brian2: delays and spike times on the step grid) and in ``precise`` mode
(exact sub-step timing in plain Brian2 code) for several steps dt. For each
layer: median, 90th percentile and maximum of |t_Brian2 - t_exact| over the
spikes of neurons whose spike counts agree, the fraction within 1 us, and the
number of (trial, neuron) pairs whose counts differ.

Part 2 (Jeffress model, :func:`neurodelay.analysis.coincidence.jeffress`).
Coincidence detectors k = 0..N-1 receive one spike
from each ear through graded axonal delays: the left ear's axon reaches
detector k after a + k delta, the right ear's after a + (N-1-k) delta, so
detector k prefers the interaural time difference ITD_k = (2k - N + 1) delta
(right ear later by ITD_k). Each axon branch is one source neuron with its
own axonal delay. For every true ITD the detectors' first spike times are
read and the ITD is estimated from the detector that fires first, refined by a
parabola through its neighbours' first spike times (several tied on the time
grid: their mean preferred ITD). Simulated exactly (event
engine) and in Brian2 grid and precise mode at dt = 0.1 ms (= 2 delta): the
grid map is a staircase, the exact and precise maps are straight lines.

Brian2 runs on the runtime device (its compiled code does not depend on dt, so
one compilation serves every step size; cached in build/cache/cython).

Result: analyses/results/timing_vs_dt.nc (read by paper_figures/fig_timing.py).
Usage: python analyses/timing_vs_dt.py [--out PATH] [--quick] [--seed N] [--device D]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

from neurodelay.analysis import coincidence
from neurodelay.analysis.common import poisson_trains
from neurodelay.brian import BrianSimulator
from neurodelay.delays import Delays
from neurodelay import simulate
from neurodelay.io import parameters_to_json, write_netcdf
from neurodelay.network import LIF, Network, SpikeSource
from neurodelay.record import spike_time_errors
from neurodelay.spikes import SpikeTrains

RESULT = "timing_vs_dt.nc"
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / RESULT

SEED = 11
MODES = ("grid", "precise")
LAYERS = {"hidden": "hid", "output": "out"}
HISTORY = {"inp": 8, "hid": 8, "out": 8}   # same K as the tests: shared compiled code
FULL = {"dts": [0.01e-3, 0.02e-3, 0.05e-3, 0.1e-3, 0.2e-3], "duration": 0.3, "trials": 3, "n_itd": 81}
QUICK = {"dts": [0.025e-3, 0.1e-3], "duration": 0.15, "trials": 2, "n_itd": 25}

# Jeffress array
N_DETECTORS = 21
DELTA = 0.05e-3        # s, delay step along the array
AXON_BASE = 0.5e-3     # s, shortest axonal delay
ITD_RANGE = 0.4e-3     # s, true ITDs in [-ITD_RANGE, ITD_RANGE]
EAR_SPIKE = 2e-3       # s, time of the left ear's spike
JEFFRESS_DT = 0.1e-3   # s
JEFFRESS_DURATION = 10e-3
DETECTOR = dict(tau_m=1e-3, tau_s=0.25e-3, theta=1.0)
EAR_WEIGHT = 4.5       # one input alone peaks at 0.71 theta: a detector needs both ears
JEFFRESS_HISTORY = 8   # K of the axons and detectors in precise mode


def two_layer_network(seed: int) -> Network:
    """The random two-layer test network of part 1 (see the module docstring)."""
    rng = np.random.default_rng(seed)
    n_in, n_h, n_o = 40, 30, 20
    net = Network().add(
        SpikeSource("inp", n_in),
        LIF("hid", n_h, tau_m=rng.uniform(5e-3, 20e-3, n_h), tau_s=rng.uniform(2e-3, 4e-3, n_h),
            reset=rng.uniform(-0.3, 0.1, n_h), refractory=2e-3),
        LIF("out", n_o, tau_m=rng.uniform(5e-3, 20e-3, n_o), tau_s=rng.uniform(2e-3, 4e-3, n_o),
            theta=rng.uniform(0.8, 1.2, n_o), refractory=2e-3))

    def delays(n_pre, n_post):
        return Delays(axonal=rng.uniform(0.1e-3, 3e-3, n_pre), dendritic=rng.uniform(0.1e-3, 3e-3, n_post),
                      synaptic=rng.uniform(0.0, 4e-3, n_pre * n_post))

    net = net.connect("inp", "hid", rng.normal(0.35, 0.5, n_in * n_h), delays=delays(n_in, n_h))
    return net.connect("hid", "out", rng.normal(0.45, 0.6, n_h * n_o), delays=delays(n_h, n_o))


def poisson_inputs(seed: int, n: int, trials: int, duration: float, rate: float = 25.0) -> SpikeTrains:
    """Independent Poisson trains (rate Hz, off-grid times in s)."""
    return poisson_trains(n, rate, duration, n_trials=trials, seed=np.random.SeedSequence([seed, 7]))


def timing_errors(net, inputs, duration, dts, device: str) -> dict:
    """Error statistics (mode, dt, layer) of Brian2 runs against the event engine."""
    exact = simulate(net, inputs, duration)
    shape = (len(MODES), len(dts), len(LAYERS))
    out = {name: np.zeros(shape) for name in ("median_error", "p90_error", "max_error", "within_1us")}
    out["mismatched"] = np.zeros(shape, np.int64)
    out["exact_spikes"] = np.array([len(exact.spikes(p)) for p in LAYERS.values()], np.int64)
    for m, mode in enumerate(MODES):
        for d, dt in enumerate(dts):
            rec = BrianSimulator(net, duration, mode=mode, dt=dt, device=device,
                                 history=HISTORY if mode == "precise" else None).run(inputs)
            for k, pop in enumerate(LAYERS.values()):
                err, mismatched = spike_time_errors(exact, rec, pop)
                out["median_error"][m, d, k] = np.median(err)
                out["p90_error"][m, d, k] = np.quantile(err, 0.9)
                out["max_error"][m, d, k] = err.max()
                out["within_1us"][m, d, k] = np.mean(err < 1e-6)
                out["mismatched"][m, d, k] = mismatched
            print(f"  {mode:8s} dt = {dt * 1e3:g} ms: median error hidden "
                  f"{out['median_error'][m, d, 0]:.3g} s, output {out['median_error'][m, d, 1]:.3g} s; "
                  f"within 1 us {out['within_1us'][m, d, 0]:.3f} / {out['within_1us'][m, d, 1]:.3f}",
                  flush=True)
    return out


# ---- Jeffress model (neurodelay.analysis.coincidence.jeffress) --------------------------------------

def jeffress(n_itd: int, device: str) -> xr.Dataset:
    """The Jeffress map (timing, itd) for exact, precise and grid timing at JEFFRESS_DT."""
    return coincidence.jeffress(np.linspace(-ITD_RANGE, ITD_RANGE, n_itd), n_detectors=N_DETECTORS,
                                delay_step=DELTA, axon_base=AXON_BASE, weight=EAR_WEIGHT, ear_spike=EAR_SPIKE,
                                duration=JEFFRESS_DURATION, timings=("exact",) + MODES, dt=JEFFRESS_DT,
                                device=device, history=JEFFRESS_HISTORY, **DETECTOR)


def run(seed: int, quick: bool, device: str) -> xr.Dataset:
    cfg = QUICK if quick else FULL
    net = two_layer_network(seed)
    inputs = poisson_inputs(seed, net["inp"].n, cfg["trials"], cfg["duration"])
    print(f"part 1: error vs dt ({len(cfg['dts'])} steps, {cfg['trials']} trials of {cfg['duration']} s)")
    errors = timing_errors(net, inputs, cfg["duration"], cfg["dts"], device)
    print(f"part 2: Jeffress array ({N_DETECTORS} detectors, {cfg['n_itd']} ITDs, dt = {JEFFRESS_DT * 1e3} ms)")
    jeff = jeffress(cfg["n_itd"], device)
    dims = ("mode", "dt", "layer")
    ds = xr.Dataset(
        {name: (dims, errors[name], {"units": "s"} if name.endswith("error") else {})
         for name in ("median_error", "p90_error", "max_error")},
        coords={"mode": list(MODES), "dt": ("dt", np.array(cfg["dts"]), {"units": "s"}),
                "layer": list(LAYERS), "timing": jeff["timing"].values,
                "itd": ("itd", jeff["itd"].values, {"units": "s", "description": "true ITD (right ear later)"}),
                "detector": np.arange(N_DETECTORS)})
    ds["within_1us"] = (dims, errors["within_1us"], {"description": "fraction of matched spikes within 1 us"})
    ds["mismatched"] = (dims, errors["mismatched"],
                        {"description": "(trial, neuron) pairs whose spike counts differ from the exact ones"})
    ds["exact_spikes"] = ("layer", errors["exact_spikes"])
    ds["estimated_itd"] = (("timing", "itd"), jeff["estimated_itd"].values, {"units": "s"})
    ds["first_spike"] = (("timing", "itd", "detector"), jeff["first_spike"].values, {"units": "s"})
    ds["preferred_itd"] = ("detector", jeff["preferred_itd"].values, {"units": "s"})
    parameters = {"seed": seed, "quick": quick, "device": device, **cfg, "history": HISTORY,
                  "n_detectors": N_DETECTORS, "delta": DELTA, "axon_base": AXON_BASE, "ear_weight": EAR_WEIGHT,
                  "jeffress_dt": JEFFRESS_DT, "detector": DETECTOR}
    ds.attrs.update(analysis="timing_vs_dt", parameters=parameters_to_json(parameters), seed=seed,
                    time_unit="s", engine="neurodelay.brian vs neurodelay.events")
    return ds


def main(argv=None) -> int:
    """Run both parts and write the NetCDF result (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="result file")
    parser.add_argument("--quick", action="store_true", help="2 step sizes, shorter runs, 25 ITDs")
    parser.add_argument("--seed", type=int, default=SEED, help=f"network and input seed (default {SEED})")
    parser.add_argument("--device", default="runtime", choices=("runtime", "cpp_standalone"),
                        help="Brian2 device (default runtime)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    ds = run(args.seed, args.quick, args.device)
    write_netcdf(ds, args.out)
    print(f"wrote {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
