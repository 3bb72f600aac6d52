"""Coincidence detection: window vs tau_m, firing probability vs interval and jitter, Rossant gain, Jeffress map.

A thin driver of :mod:`neurodelay.analysis.coincidence`:

1. window: the coincidence window of the project's neuron (largest interval
   between two equal input spikes that still fires it) against tau_m, at
   tau_s = 2 ms, for single PSPs peaking at several fractions of theta, with
   König et al.'s instant-rise formula tau_m ln(a / (theta - a)) beside it;
2. curve: P(output spike) against the interval and the Gaussian jitter of
   each spike, exact simulation (event engine) and the analytic law;
3. gain (Rossant et al. 2011): output rate of a neuron under 4000 excitatory
   + 1000 inhibitory Poisson inputs at 1 Hz (tau_m = 5 ms, one shared
   tau_s = 3 ms, excitatory PSP 0.5 mV, threshold 10 mV above rest,
   refractory 5 ms) against the number of excitatory inputs that fire
   together at 40 Hz events, exact timing vs Brian2 grid timing (same inputs);
4. jeffress: estimated vs true ITD, exact, Brian2 precise and Brian2 grid
   (--quick: exact and grid only).

Result: analyses/results/coincidence.nc (read by paper_figures/fig_coincidence.py).
Reduced scale by default; --full for the published scale (Rossant: 10 s
trials; more trials, intervals and ITDs); --quick for tests.
Usage: python analyses/coincidence.py [--out PATH] [--quick | --full] [--seed N] [--device D]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

from neurodelay.analysis import coincidence as C
from neurodelay.io import provenance, write_netcdf

RESULT = "coincidence.nc"
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / RESULT
SEED = 2011

WINDOW = dict(tau_m=np.geomspace(3e-3, 50e-3, 40), tau_s=2e-3, peaks=[0.55, 0.6, 0.75, 0.9], theta=1.0)
CURVE = dict(tau_m=10e-3, tau_s=2.5e-3, peak=0.6, jitter=[0.0, 0.5e-3, 1e-3, 2e-3, 4e-3])
BRIAN_DT = 0.1e-3  # s, Brian2 step of the grid (and precise) runs
SCALES = {
    "quick": {"delta_t": np.linspace(0, 12e-3, 13), "curve_trials": 100,
              "n_sync": [0, 10, 20], "gain_duration": 0.5, "gain_trials": 2, "n_itd": 17,
              "jeffress_timings": ("exact", "grid")},
    "reduced": {"delta_t": np.linspace(0, 12e-3, 25), "curve_trials": 1000,
                "n_sync": [0, 5, 10, 15, 20, 25, 30, 40], "gain_duration": 4.0, "gain_trials": 5, "n_itd": 41,
                "jeffress_timings": ("exact", "precise", "grid")},
    "full": {"delta_t": np.linspace(0, 12e-3, 49), "curve_trials": 4000,
             "n_sync": [0, 5, 10, 15, 20, 25, 30, 35, 40], "gain_duration": 10.0, "gain_trials": 10,
             "n_itd": 81, "jeffress_timings": ("exact", "precise", "grid")},
}


def windows() -> xr.Dataset:
    """Window (s) over (peak, tau_m) at the fixed tau_s; König's instant-rise window beside it."""
    tau_m, tau_s, theta = WINDOW["tau_m"], WINDOW["tau_s"], WINDOW["theta"]
    peaks = np.array(WINDOW["peaks"])
    out = np.array([[float(C.coincidence_window(tm, tau_s, C.weight_for_psp_peak(a * theta, tm, tau_s), theta))
                     for tm in tau_m] for a in peaks])
    koenig = tau_m[None, :] * np.log(peaks[:, None] / (theta - peaks[:, None]))
    return xr.Dataset(
        {"window": (("peak", "tau_m"), out, {"units": "s", "long_name": "coincidence window"}),
         "window_instant_rise": (("peak", "tau_m"), koenig,
                                 {"units": "s", "long_name": "tau_m ln(a / (theta - a)) (tau_s -> 0)"})},
        coords={"tau_m": ("tau_m", tau_m, {"units": "s"}),
                "peak": ("peak", peaks, {"units": "1", "long_name": "single PSP peak / theta"})},
        attrs={"window_tau_s": tau_s, "window_theta": theta})


def run(seed: int, scale: str, device: str) -> xr.Dataset:
    cfg = SCALES[scale]
    start = time.perf_counter()
    ds = windows()
    print(f"window: {ds.sizes['tau_m']} tau_m x {ds.sizes['peak']} peaks ({time.perf_counter() - start:.1f} s)")

    start = time.perf_counter()
    weight = C.weight_for_psp_peak(CURVE["peak"], CURVE["tau_m"], CURVE["tau_s"])
    curve = C.coincidence_curve(cfg["delta_t"], CURVE["jitter"], tau_m=CURVE["tau_m"], tau_s=CURVE["tau_s"],
                                weight=weight, n_trials=cfg["curve_trials"], seed=seed)
    print(f"curve: window {float(curve['window']) * 1e3:.3f} ms, {curve.attrs['n_trials']} trials per point "
          f"({time.perf_counter() - start:.1f} s)", flush=True)

    start = time.perf_counter()
    gain = C.coincidence_gain(cfg["n_sync"], duration=cfg["gain_duration"], n_trials=cfg["gain_trials"],
                              seed=seed + 1, timings=("exact", "grid"), dt=BRIAN_DT, device=device)
    for timing in gain["timing"].values:
        r = gain["rate"].sel(timing=timing).values
        print(f"gain ({timing}): rate " + ", ".join(f"{p}: {x:.2f} Hz" for p, x in zip(cfg["n_sync"], r)))
    print(f"  ({time.perf_counter() - start:.1f} s)", flush=True)

    start = time.perf_counter()
    itd = np.linspace(-0.4e-3, 0.4e-3, cfg["n_itd"])
    jeff = C.jeffress(itd, timings=cfg["jeffress_timings"], dt=BRIAN_DT, device=device)
    print(f"jeffress: {jeff.attrs['n_detectors']} detectors, {cfg['n_itd']} ITDs "
          f"({time.perf_counter() - start:.1f} s)", flush=True)

    curve_vars = curve.rename({v: f"curve_{v}" for v in curve.data_vars})
    gain_vars = gain.rename({v: f"gain_{v}" for v in gain.data_vars}).rename({"trial": "gain_trial"})
    jeff_vars = jeff.rename({"timing": "jeffress_timing", "first_spike": "jeffress_first_spike",
                             "estimated_itd": "jeffress_estimated_itd", "preferred_itd": "jeffress_preferred_itd"})
    for part in (curve_vars, gain_vars, jeff_vars):
        part.attrs = {}
    out = xr.merge([ds, curve_vars, gain_vars, jeff_vars], combine_attrs="drop")
    out.attrs.update(provenance(seed, {"scale": scale, "device": device, "window": WINDOW, "curve": CURVE,
                                       **cfg}, "neurodelay.events vs neurodelay.brian"))
    out.attrs.update(analysis="coincidence", scale=scale, window_tau_s=WINDOW["tau_s"],
                     curve_tau_m=CURVE["tau_m"], curve_tau_s=CURVE["tau_s"], curve_weight=weight,
                     curve_peak=CURVE["peak"],
                     curve_n_trials=curve.attrs["n_trials"], gain_w_exc=gain.attrs["w_exc"],
                     gain_w_inh=gain.attrs["w_inh"], gain_dt=BRIAN_DT,
                     gain_duration=cfg["gain_duration"], gain_parameters=gain.attrs["parameters"],
                     jeffress_n_detectors=jeff.attrs["n_detectors"], jeffress_delay_step=jeff.attrs["delay_step"],
                     jeffress_dt=BRIAN_DT, jeffress_parameters=jeff.attrs["parameters"],
                     curve_parameters=curve.attrs["parameters"])
    return out


def main(argv=None) -> int:
    """Run the four parts and write the NetCDF result (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="result file")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="tiny run for the tests")
    size.add_argument("--full", action="store_true", help="the published scale (slow)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"seed (default {SEED})")
    parser.add_argument("--device", default="runtime", choices=("runtime", "cpp_standalone"),
                        help="Brian2 device (default runtime)")
    args = parser.parse_args(argv)
    scale = "quick" if args.quick else "full" if args.full else "reduced"
    start = time.perf_counter()
    ds = run(args.seed, scale, args.device)
    write_netcdf(ds, args.out)
    print(f"wrote {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
