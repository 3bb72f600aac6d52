"""Polychronous groups in the Izhikevich (2006) network: group counts against model time, with controls.

The network (800 excitatory / 200 inhibitory Izhikevich neurons, delays
1..20 ms, STDP) is simulated in Brian2 (cpp_standalone) in checkpointed
chunks, once with the published random delays and once with all excitatory
delays equal (the mean, 10 ms). The weights are kept at snapshot times and
the polychronous groups are searched in each snapshot:

* ``real``: the trained network;
* ``shuffled``: its excitatory-to-excitatory weights permuted (delays kept);
* ``equal_delays``: the network trained with equal delays.

The search covers a fixed random subset of ``--mothers`` excitatory
neurons (all with ``--mothers 800``) and the count is scaled to all of them
(the number of groups is a sum over mothers, so this is an unbiased
estimate; the attribute ``mothers_searched`` says how many). Also written:
one example group of the real network (spikes, layers,
links with delays) and the size, layer count and time span of every group at
the end.

Scales: default (reduced) 1,800 s of model time; ``--full`` the published
18,000 s; ``--quick`` a 100 + 25 neuron network for 4 s (tests). The
simulations resume from their checkpoints in build/polychrony/<scale>/.

Result: analyses/results/polychrony.nc (read by paper_figures/fig_polychrony.py).
Usage: python analyses/polychrony.py [--out PATH] [--quick | --full] [--seed N] [--mothers N] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

from neurodelay.analysis import polychrony as P
from neurodelay.analysis.common import with_provenance
from neurodelay.io import write_netcdf

RESULT = "polychrony.nc"
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "analyses" / "results" / RESULT

SCALES = {
    # quick: too short for weights to reach 0.95 w_max, so strong means > 0.62 w_max and 3 layers suffice
    "quick": dict(network=dict(n_exc=100, n_inh=25, n_syn=20), duration=4.0, chunk=1.0, snapshot_every=1,
                  min_layers=3, strong_fraction=0.62),
    "reduced": dict(network={}, duration=1800.0, chunk=100.0, snapshot_every=3, min_layers=7, strong_fraction=0.95),
    "full": dict(network={}, duration=18000.0, chunk=100.0, snapshot_every=5, min_layers=7, strong_fraction=0.95),
}
CONDITIONS = ("real", "shuffled", "equal_delays")


def train(scale: str, delays: str, seed: int, duration: float | None = None) -> xr.Dataset:
    """The network trained with random ('random') or equal ('equal') delays, resumed from its checkpoint."""
    cfg = SCALES[scale]
    conn = P.izhikevich_connectivity(seed=seed, **cfg["network"])
    if delays == "equal":
        conn = P.equal_delays(conn)
    folder = ROOT / "build" / "polychrony" / scale / ("real" if delays == "random" else "equal")
    return P.simulate_izhikevich(cfg["duration"] if duration is None else duration, seed=seed, connectivity=conn,
                                 chunk=cfg["chunk"], checkpoint=folder, snapshot_every=cfg["snapshot_every"],
                                 progress=True)


def at_snapshot(trained: xr.Dataset, k: int) -> xr.Dataset:
    """The connectivity with the weights of snapshot k."""
    conn = trained[["pre", "post", "weight", "delay"]].copy()
    conn["weight"] = ("synapse", trained["weight_history"].values[k].astype(float))
    return conn


def count(conn: xr.Dataset, mothers, cfg: dict, threads: int) -> tuple[float, xr.Dataset, float]:
    """(groups scaled to all excitatory mothers, the groups found, search wall time in s)."""
    n_exc = int(conn.attrs["n_exc"])
    start = time.perf_counter()
    groups = P.find_polychronous_groups(conn, mothers=mothers, min_layers=cfg["min_layers"],
                                        strong_fraction=cfg["strong_fraction"], n_threads=threads)
    return groups.attrs["n_groups"] * n_exc / len(mothers), groups, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument("--quick", action="store_true", help="a small network for 4 s (tests)")
    scale.add_argument("--full", action="store_true", help="the published scale: 18,000 s of model time")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mothers", type=int, default=100,
                        help="excitatory mothers searched (a fixed random subset; counts scaled to all)")
    parser.add_argument("--equal-mothers", type=int, default=None,
                        help="mothers searched in the equal-delay network (default --mothers; its groups are long)")
    parser.add_argument("--equal-last-only", action="store_true",
                        help="search the equal-delay network at its last snapshot only (its searches are slow)")
    parser.add_argument("--snapshots", type=int, default=None,
                        help="search this many snapshot times (evenly chosen, the last included); default all")
    parser.add_argument("--equal-duration", type=float, default=None,
                        help="model time (s) of the equal-delay training, if shorter than the main one")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    name = "quick" if args.quick else "full" if args.full else "reduced"
    cfg = SCALES[name]
    start = time.perf_counter()
    trained = {"random": train(name, "random", args.seed),
               "equal": train(name, "equal", args.seed, args.equal_duration)}
    sim_seconds = {k: float(v.attrs["wall_seconds"]) for k, v in trained.items()}
    real = trained["random"]
    n_exc = int(real.attrs["n_exc"])
    all_times = real["snapshot_time"].values
    pick = np.arange(len(all_times))
    if args.snapshots is not None and args.snapshots < len(all_times):
        pick = np.unique(np.rint(np.linspace(0, len(all_times) - 1, args.snapshots)).astype(int))
    equal_times = list(trained["equal"]["snapshot_time"].values)
    if args.equal_last_only:
        equal_times = [np.nan] * (len(equal_times) - 1) + equal_times[-1:]
    pick = np.union1d(pick, np.flatnonzero(np.isin(all_times, equal_times)))   # where all three can be compared
    times = all_times[pick]
    order = np.random.default_rng([args.seed, 99]).permutation(n_exc)
    n_mothers = {c: min(args.mothers, n_exc) for c in CONDITIONS}
    if args.equal_mothers is not None:     # 0: train it but do not search it
        n_mothers["equal_delays"] = min(max(args.equal_mothers, 0), n_exc)
    mothers = {c: np.sort(order[:m]) for c, m in n_mothers.items()}   # nested subsets of one random order
    counts = np.full((len(CONDITIONS), len(times)), np.nan)
    found = np.zeros((len(CONDITIONS), len(times)), np.int64)
    triplets = np.zeros((len(CONDITIONS), len(times)), np.int64)
    search_seconds = np.zeros((len(CONDITIONS), len(times)))
    final = {}
    for k, (j, t) in enumerate(zip(pick, times)):
        conns = {"real": at_snapshot(real, j),
                 "shuffled": P.shuffle_weights(at_snapshot(real, j), seed=args.seed + 1000 * int(j))}
        if t in equal_times and n_mothers["equal_delays"] > 0:
            conns["equal_delays"] = at_snapshot(trained["equal"], equal_times.index(t))
        for c, cond in enumerate(CONDITIONS):
            if cond not in conns:
                continue
            counts[c, k], groups, search_seconds[c, k] = count(conns[cond], mothers[cond], cfg, args.threads)
            found[c, k], triplets[c, k] = groups.attrs["n_groups"], groups.attrs["n_triplets"]
            print(f"t = {t:7.0f} s  {cond:>12}: {counts[c, k]:8.0f} groups "
                  f"({found[c, k]} in {n_mothers[cond]} mothers, {triplets[c, k]} triplets, "
                  f"{search_seconds[c, k]:.0f} s)", flush=True)
            final[cond] = groups
    ds = xr.Dataset(
        {"group_count": (("condition", "time"), counts,
                         {"long_name": "polychronous groups (scaled to all excitatory mothers)"}),
         "groups_found": (("condition", "time"), found, {"long_name": "groups in the searched mothers"}),
         "triplets": (("condition", "time"), triplets, {"long_name": "anchor triplets tried"}),
         "search_seconds": (("condition", "time"), search_seconds, {"units": "s"}),
         "spikes_exc": ("chunk", real["spikes_exc"].values),
         "spikes_inh": ("chunk", real["spikes_inh"].values),
         "chunk_end": ("chunk", real["chunk_end"].values, {"units": "s"})},
        coords={"condition": list(CONDITIONS), "time": ("time", times, {"units": "s"})})
    ds["mothers_searched"] = ("condition", [n_mothers[c] for c in CONDITIONS])
    # every group at the last time searched: size, layers, time span
    for cond in (c for c in CONDITIONS if c in final):
        g = final[cond]
        for var in ("n_spikes", "n_layers", "time_span"):
            ds[f"{cond}_{var}"] = (f"{cond}_group", g[var].values, g[var].attrs)
    # one example group of the real network: the one with most layers (then most spikes)
    g = final["real"]
    if g.attrs["n_groups"]:
        best = int(np.lexsort((g["n_spikes"].values, g["n_layers"].values))[-1])
        neuron, t, layer = P.group_spikes(g, best)
        lk = g["link_group"].values == best
        ds["example_neuron"] = ("example_spike", neuron)
        ds["example_time"] = ("example_spike", t, {"units": "s"})
        ds["example_layer"] = ("example_spike", layer)
        for var in ("pre", "post", "delay", "layer"):
            ds[f"example_link_{var}"] = ("example_link", g[f"link_{var}"].values[lk], g[f"link_{var}"].attrs)
        ds.attrs["example_mother"] = int(g["mother"].values[best])
    ds.attrs.update(scale=name, n_exc=n_exc, n_inh=int(real.attrs["n_inh"]), model_time=float(times[-1]),
                    simulation_wall_seconds_random=sim_seconds["random"],
                    simulation_wall_seconds_equal=sim_seconds["equal"], min_layers=cfg["min_layers"],
                    strong_fraction=cfg["strong_fraction"],
                    equal_model_time=float(trained["equal"].attrs["model_time"]),
                    equal_delay=float(P.equal_delays(P.izhikevich_connectivity(seed=args.seed, **cfg["network"]))
                                      ["delay"].values[0]),
                    total_wall_seconds=time.perf_counter() - start)
    with_provenance(ds, "polychrony", dict(scale=name, mothers=args.mothers, snapshots=args.snapshots,
                                           **{k: v for k, v in cfg.items() if k != "network"}),
                    args.seed, engine="brian2-cpp_standalone+izhikevich-1ms")
    write_netcdf(ds, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
