"""Expressivity of one neuron with delays: shattering table and tempotron capacity curves.

Two measurements (see :mod:`neurodelay.analysis.expressivity`):

* shattering: the largest set of binary input patterns (plus a bias input)
  shattered with weights only (exact LP), delays only (weights fixed, exact on
  a delay grid) and both (MILP on the grid, checked exactly), for n = 1 ..
  n_max inputs; also weights only without the bias input;
* capacity: the tempotron task (P = alpha N patterns, one spike per afferent
  uniform in T, random labels), one neuron trained by the tempotron rule on
  its exact voltage maximum (``--method adam``: Adam on exact gradients of a
  max-voltage hinge), for learn modes weights / delays / both, several
  loads and seeds; alpha_c from :func:`critical_load`; Cover's curve beside it.

Scales: ``--quick`` (tests, < 1 min), default (reduced: N = 50, a few
minutes to tens of minutes on 2 cores), ``--full`` (the published scale,
N = 500, T = 500 ms: hours to days on 2 cores). Every capacity point is written to
its own NetCDF file in ``<out>.parts/`` by :func:`neurodelay.sweep.run_sweep`
and skipped when it exists, so an interrupted run resumes where it stopped.

Result: analyses/results/expressivity.nc (read by paper_figures/fig_expressivity.py).
Usage: python analyses/expressivity.py [--out PATH] [--quick | --full] [--n-afferents N] [--seeds K]
       [--loads A,B,..] [--epochs E] [--n-max N] [--budget S]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

from neurodelay.analysis import expressivity as ex
from neurodelay.analysis.common import with_provenance
from neurodelay.io import write_netcdf

RESULT = "expressivity.nc"
# wall seconds on 2 (shared) cores; full: 63 runs of up to 2000 epochs at ~1-5 s per epoch (P = 500-2500, N = 500)
EXPECTED_SECONDS = {"quick": 60, "default": 1800, "full": 600000}
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / RESULT

SCALES = {
    "quick": dict(n_afferents=20, loads=[0.5, 1.5], seeds=2, epochs=60, duration=0.2, method="tempotron",
                  batch_size=None,
                  n_max={"weights": 3, "delays": 3, "both": 2}, budget=60.0),
    "reduced": dict(n_afferents=50, loads=[0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5], seeds=3, epochs=1000, duration=0.5,
                    method="tempotron", batch_size=None,
                    n_max={"weights": 5, "delays": 4, "both": 3}, budget=120.0),
    "full": dict(n_afferents=500, loads=[1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0], seeds=3, epochs=2000, duration=0.5,
                 method="tempotron", batch_size=None,
                 n_max={"weights": 6, "delays": 5, "both": 4}, budget=1800.0),
}


def shattering_table(n_max: dict, budget: float, seed: int = 0) -> xr.Dataset:
    """Largest shattered set for each mode and n (bias input), and for weights without the bias."""
    rows = [(mode, True) for mode in ex.SHATTER_MODES] + [("weights", False)]
    names = [f"{m}{'' if b else '_nobias'}" for m, b in rows]
    n_top = max(n_max.values())
    largest = np.full((len(rows), n_top), -1, np.int64)
    complete = np.zeros((len(rows), n_top), np.int64)
    wall = np.full((len(rows), n_top), np.nan)
    timeouts = np.zeros((len(rows), n_top), np.int64)
    search = np.full((len(rows), n_top), "", dtype=object)
    for r, (mode, bias) in enumerate(rows):
        for n in range(1, n_max[mode] + 1):
            ds = ex.shattering(n, mode, bias=bias, time_budget=budget, seed=seed)
            largest[r, n - 1] = int(ds["largest"])
            complete[r, n - 1] = ds.attrs["complete"]
            wall[r, n - 1] = ds.attrs["wall_time_s"]
            search[r, n - 1] = ds.attrs["search"]
            timeouts[r, n - 1] = ds.attrs["solver_timeouts"]
            print(f"shattering {names[r]:>15} n={n}: {largest[r, n - 1]} ({ds.attrs['search']}, "
                  f"complete={ds.attrs['complete']}, {ds.attrs['solver_timeouts']} MILP time-outs, "
                  f"{wall[r, n - 1]:.1f} s)", flush=True)
    dims = ("shatter_mode", "n_inputs")
    return xr.Dataset(
        {"shatter_largest": (dims, largest, {"units": "1", "long_name": "largest shattered set (patterns); -1: not run"}),
         "shatter_complete": (dims, complete, {"units": "1", "long_name": "1: proven largest on the grid"}),
         "shatter_search": (dims, search.astype(str), {"long_name": "search: exhaustive or greedy"}),
         "shatter_solver_timeouts": (dims, timeouts, {"units": "1", "long_name": "MILPs stopped by the time limit"}),
         "shatter_wall_time": (dims, wall, {"units": "s", "long_name": "wall-clock time of the search"})},
        coords={"shatter_mode": names, "n_inputs": np.arange(1, n_top + 1)})


def capacity_runs(scale: dict, folder: Path, executor: str = "local", progress: bool = True) -> xr.Dataset:
    """Every (load, learn mode, seed) point through :func:`neurodelay.sweep.run_sweep` (resumable in `folder`)."""
    from neurodelay.sweep import run_sweep
    return run_sweep(ex.capacity_point, grid={"load": [float(a) for a in scale["loads"]],
                                              "learn": list(scale.get("learn", ex.LEARN_MODES))},
                     seeds=scale["seeds"], folder=folder, root_seed=0, executor=executor, retries=1,
                     progress=progress, fixed=dict(n_afferents=scale["n_afferents"], duration=scale["duration"],
                                                   epochs=scale["epochs"], method=scale["method"],
                                                   **({"batch_size": scale["batch_size"]}
                                                      if scale["method"] == "adam" else {})))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="result file")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="tiny version (tests)")
    group.add_argument("--full", action="store_true", help="the published scale (N = 500; very long on 2 cores)")
    parser.add_argument("--n-afferents", type=int, help="N of the capacity runs")
    parser.add_argument("--seeds", type=int, help="number of seeds")
    parser.add_argument("--loads", type=str, help="comma-separated loads alpha = P / N")
    parser.add_argument("--learn", type=str, help="comma-separated learn modes (default: weights,delays,both)")
    parser.add_argument("--epochs", type=int, help="largest number of passes over the patterns per run")
    parser.add_argument("--method", choices=("tempotron", "adam"),
                        help="capacity training: the tempotron rule (default) or Adam on the hinge")
    parser.add_argument("--batch-size", type=int, help="--method adam: patterns per Adam step (0: the full batch)")
    parser.add_argument("--reuse-shattering", action="store_true",
                        help="take the shattering table from the existing --out file instead of recomputing it")
    parser.add_argument("--n-max", type=int, help="largest n of the shattering table (all modes)")
    parser.add_argument("--budget", type=float, help="time budget of each shattering search, s")
    parser.add_argument("--parts", type=Path, help="sweep folder of the per-point files (default <out>.parts)")
    parser.add_argument("--executor", default=None,
                        help="sweep executor: local (Dask, default), serial (default with --quick) or an address")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    name = "quick" if args.quick else "full" if args.full else "reduced"
    scale = dict(SCALES[name])
    for key in ("n_afferents", "seeds", "epochs", "budget", "batch_size", "method"):
        if getattr(args, key) is not None:
            scale[key] = getattr(args, key)
    scale["batch_size"] = scale["batch_size"] or None
    if args.loads:
        scale["loads"] = [float(a) for a in args.loads.split(",")]
    if args.learn:
        scale["learn"] = args.learn.split(",")
        bad = set(scale["learn"]) - set(ex.LEARN_MODES)
        if bad:
            print(f"error: --learn: unknown mode(s) {sorted(bad)}; choose from {list(ex.LEARN_MODES)}", file=sys.stderr)
            return 2
    if args.n_max is not None:
        scale["n_max"] = {m: args.n_max for m in scale["n_max"]}
    start = time.time()
    if args.reuse_shattering:
        if not args.out.exists():
            print(f"error: --reuse-shattering: {args.out} does not exist", file=sys.stderr)
            return 2
        with xr.open_dataset(args.out, engine="h5netcdf") as old:
            table = old[[v for v in old.data_vars if v.startswith("shatter_")]].load()
        if not table.data_vars:
            print(f"error: --reuse-shattering: {args.out} has no shattering table", file=sys.stderr)
            return 2
    else:
        table = shattering_table(scale["n_max"], scale["budget"])
    parts = args.parts or args.out.with_name(args.out.name + ".parts")
    executor = args.executor or ("serial" if args.quick else "local")
    cap = capacity_runs(scale, parts, executor, progress=not args.no_progress)
    if not np.all(cap["status"].values == "ok"):
        bad = {str(v) for v in np.unique(cap["status"].values)} - {"ok"}
        print(f"warning: some capacity points are not finished ({sorted(bad)}); re-run to resume", flush=True)
    crit = ex.critical_load(cap)
    n = scale["n_afferents"]
    alpha_fine = np.linspace(0.05, max(scale["loads"]) * 1.1, 200)
    p_fine = np.unique(np.maximum(1, np.round(alpha_fine * n)).astype(int))
    cover = ex.cover_fraction(p_fine, n)
    cover_ds = xr.Dataset({"cover_fraction": ("cover_alpha", cover.values, dict(cover.attrs))},
                          coords={"cover_alpha": ("cover_alpha", p_fine / n, {"units": "1", "long_name": "P / N"})})
    for k in list(cover_ds["cover_fraction"].attrs):
        if k not in ("units", "long_name"):
            del cover_ds["cover_fraction"].attrs[k]
    ds = xr.merge([table, cap,
                   crit, cover_ds], combine_attrs="override")
    ds.attrs.clear()
    ds.attrs.update(scale=name, n_afferents=n, duration=scale["duration"], epochs=scale["epochs"],
                    batch_size=scale["batch_size"] or 0, method=scale["method"],
                    tau_m=15e-3, tau_s=3.75e-3, max_delay=scale["duration"] / 10,
                    wall_time_s=time.time() - start)
    with_provenance(ds, "expressivity", {k: v for k, v in scale.items()}, list(range(scale["seeds"])))
    write_netcdf(ds, args.out)
    print(f"wrote {args.out} in {time.time() - start:.0f} s")
    for mode in crit["learn"].values:
        c = crit.sel(learn=mode)
        print(f"alpha_c {mode:>8}: {float(c.alpha_c):.3g} (per seed {float(c.alpha_c_mean):.3g} "
              f"+- {float(c.alpha_c_std):.2g})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
