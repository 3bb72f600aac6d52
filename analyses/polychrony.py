"""Polychronous groups in the Izhikevich (2006) network: group counts against model time, with controls.

The network (800 excitatory / 200 inhibitory Izhikevich neurons, delays
1..20 ms, STDP) is simulated in Brian2 (cpp_standalone) in checkpointed
chunks, once with the published random delays and once with all excitatory
delays equal (the mean, 10 ms). The weights are kept at snapshot times and
the polychronous groups are searched in each snapshot:

* ``real``: the trained network;
* ``shuffled``: its excitatory-to-excitatory weights permuted (delays kept);
* ``equal_delays``: the network trained with equal delays (it fires at about 80 Hz: most
  triplets start runaway cascades, cut at ``--max-spikes`` and counted apart);
* ``delays_equalised``: the trained network (its weights) with every excitatory delay set to
  the mean (10 ms): the same strong synapses without their delays.

The strong synapses are replaced within a few hundred seconds of model time (``strong_overlap``; full scale, seed 1: of
the E->E synapses strong at t, about 78 % are still strong 100 s later, 63 % after 500 s, and ~51 %
(chance: the 37 % of E->E synapses that are strong) from 1000 s on), so the count at one snapshot is
one draw from a broad distribution. The end estimate (attributes ``end_*``) therefore averages the
per-mother counts over every time searched in the last ``--end-window`` seconds, with 95 % intervals
that resample times and mothers; ``ratio_end`` is the ratio at the last time alone.

A group is counted when its re-simulation stays under ``--max-spikes`` spikes;
longer cascades are runaway population activity, not a sparse time-locked
pattern, and are reported as ``groups_truncated``. The intervals are 95 %
bootstrap intervals over the searched mothers (groups cluster by mother).
Finished searches are cached in build/polychrony/<scale>/search/, so an
interrupted run repeats only the searches it had not finished.

The search covers a fixed random subset of ``--mothers`` excitatory
neurons (all with ``--mothers 800``) and the count is scaled to all of them
(the number of groups is a sum over mothers, so this is an unbiased
estimate; the attribute ``mothers_searched`` says how many). Also written:
one example group of the real network (spikes, layers,
links with delays) and the size, layer count and time span of every group at
the end.

Scales: default (reduced) 1,800 s of model time; ``--full`` the published
18,000 s; ``--quick`` a 100 + 25 neuron network for 4 s (tests). The
simulations resume from their checkpoints in build/polychrony/<scale>/seed<N>/.

Result: analyses/results/polychrony.nc (read by paper_figures/fig_polychrony.py).
Weights are kept every chunk (100 s) for the weight statistics and the persistence of strong synapses.

Usage: python analyses/polychrony.py [--out PATH] [--quick | --full] [--seed N] [--mothers N] [--threads N]
       [--times T1,T2,...] [--shuffles N] [--end-window S]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

from neurodelay.analysis import polychrony as P
from neurodelay.analysis.common import with_provenance
from neurodelay.io import read_netcdf, write_netcdf

RESULT = "polychrony.nc"
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "analyses" / "results" / RESULT

SCALES = {
    # quick: too short for weights to reach 0.95 w_max, so strong means > 0.62 w_max and 3 layers suffice
    "quick": dict(network=dict(n_exc=100, n_inh=25, n_syn=20), duration=4.0, chunk=1.0, snapshot_every=1,
                  min_layers=3, strong_fraction=0.62),
    "reduced": dict(network={}, duration=1800.0, chunk=100.0, snapshot_every=1, min_layers=7, strong_fraction=0.95),
    "full": dict(network={}, duration=18000.0, chunk=100.0, snapshot_every=1, min_layers=7, strong_fraction=0.95),
}
CONDITIONS = ("real", "shuffled", "equal_delays", "delays_equalised")
SEARCH_VERSION = 1  #: bump when the search changes, so cached searches are redone


def train(scale: str, delays: str, seed: int, duration: float | None = None) -> xr.Dataset:
    """The network trained with random ('random') or equal ('equal') delays, resumed from its checkpoint."""
    cfg = SCALES[scale]
    conn = P.izhikevich_connectivity(seed=seed, **cfg["network"])
    if delays == "equal":
        conn = P.equal_delays(conn)
    folder = ROOT / "build" / "polychrony" / scale / f"seed{seed}" / ("real" if delays == "random" else "equal")
    return P.simulate_izhikevich(cfg["duration"] if duration is None else duration, seed=seed, connectivity=conn,
                                 chunk=cfg["chunk"], checkpoint=folder, snapshot_every=cfg["snapshot_every"],
                                 progress=True)


def at_snapshot(trained: xr.Dataset, k: int) -> xr.Dataset:
    """The connectivity with the weights of snapshot k."""
    conn = trained[["pre", "post", "weight", "delay"]].copy()
    conn["weight"] = ("synapse", trained["weight_history"].values[k].astype(float))
    return conn


def count(conn: xr.Dataset, mothers, cfg: dict, threads: int, max_spikes: int, cache: Path | None = None
          ) -> tuple[xr.Dataset, float]:
    """(the groups found in `mothers`, search wall time in s), reusing a finished search from `cache`.

    The cache file is named by a hash of everything the search depends on (weights, delays, mothers, criteria),
    so a rerun of the script repeats only the searches it has not finished.
    """
    h = hashlib.sha256(json.dumps([cfg["min_layers"], cfg["strong_fraction"], int(max_spikes), SEARCH_VERSION,
                                   np.asarray(mothers).tolist()]).encode())
    for name in ("pre", "post", "weight", "delay"):
        h.update(np.ascontiguousarray(conn[name].values).tobytes())
    path = None if cache is None else cache / f"groups_{h.hexdigest()[:20]}.nc"
    if path is not None and path.exists():
        groups = read_netcdf(path)
        return groups, float(groups.attrs["search_seconds"])
    start = time.perf_counter()
    groups = P.find_polychronous_groups(conn, mothers=mothers, min_layers=cfg["min_layers"],
                                        strong_fraction=cfg["strong_fraction"], max_spikes=max_spikes,
                                        n_threads=threads)
    if path is not None:
        write_netcdf(groups, path)
    return groups, time.perf_counter() - start


def per_mother_counts(groups, mothers: np.ndarray) -> np.ndarray:
    """Whole (not truncated) groups of each mother; `groups` is one search or a list of searches of the same
    mothers (e.g. several shuffles), whose per-mother counts are averaged."""
    searches = groups if isinstance(groups, (list, tuple)) else [groups]
    per_mother = np.zeros(len(mothers))
    for g in searches:
        whole = ~g["truncated"].values
        per_mother += np.array([((g["mother"].values == m) & whole).sum() for m in mothers], float)
    return per_mother / len(searches)


def bootstrap_count(groups, mothers: np.ndarray, n_exc: int, seed: int, n_boot: int = 2000
                    ) -> tuple[float, float, float]:
    """Groups scaled to all excitatory mothers and its 95 % bootstrap interval over the searched mothers.

    Groups cut at the cascade cap (``truncated``: runaway activity, not a sparse time-locked pattern) are not
    counted; they are reported separately. `groups` is one search or a list of searches of the same mothers
    (e.g. several shuffles), whose per-mother counts are averaged. Groups cluster by mother (a mother with n
    strong inputs tries n(n-1)(n-2)/6 triplets), so the interval resamples mothers, not groups.
    """
    per_mother = per_mother_counts(groups, mothers)
    if per_mother.size == 0:
        return np.nan, np.nan, np.nan
    rng = np.random.default_rng([seed, 7])
    boot = per_mother[rng.integers(0, per_mother.size, (n_boot, per_mother.size))].mean(axis=1) * n_exc
    return per_mother.mean() * n_exc, float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def window_estimate(real: np.ndarray, shuffled: np.ndarray, n_exc: int, seed: int, n_boot: int = 4000
                    ) -> dict[str, float]:
    """Counts averaged over several snapshot times and their ratio, with crossed bootstrap intervals.

    `real` and `shuffled` are per-mother counts (time, mother) of the same mothers at the same times (the
    shuffled ones averaged over the shuffles). The strong synapses are replaced within a few hundred seconds
    (see :func:`strong_overlap`), so the count at one instant is one draw; averaging over times estimates the
    network's typical count. The 95 % intervals resample times and mothers independently (both are samples:
    of the network's states and of its neurons), the same indices for both conditions, so the ratio
    interval keeps their pairing. Returns real, shuffled (scaled to all n_exc mothers), ratio, each with
    ``_low`` / ``_high``.
    """
    real, shuffled = np.atleast_2d(np.asarray(real, float)), np.atleast_2d(np.asarray(shuffled, float))
    if real.shape != shuffled.shape or real.size == 0:
        raise ValueError(f"real and shuffled must have the same non-empty (time, mother) shape, got "
                         f"{real.shape} and {shuffled.shape}")
    n_t, n_m = real.shape
    rng = np.random.default_rng([seed, 11])
    r_boot, s_boot = np.empty(n_boot), np.empty(n_boot)
    for b in range(n_boot):
        ti, mi = rng.integers(0, n_t, n_t), rng.integers(0, n_m, n_m)
        r_boot[b] = real[np.ix_(ti, mi)].mean()
        s_boot[b] = shuffled[np.ix_(ti, mi)].mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio_boot = r_boot / s_boot                       # 0 / 0 (no group in either): nan, left out
        ratio = real.mean() / shuffled.mean() if real.mean() > 0 or shuffled.mean() > 0 else np.nan
    out = {"real": real.mean() * n_exc, "shuffled": shuffled.mean() * n_exc, "ratio": float(ratio)}
    for key, boot in (("real", r_boot * n_exc), ("shuffled", s_boot * n_exc), ("ratio", ratio_boot)):
        boot = boot[~np.isnan(boot)]
        out[f"{key}_low"], out[f"{key}_high"] = ((float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5)))
                                                 if boot.size else (np.nan, np.nan))
    return out


def strong_overlap(trained: xr.Dataset, w_max: float, strong_fraction: float, skip: float = 1000.0
                   ) -> tuple[np.ndarray, np.ndarray, float]:
    """How long a strong E->E synapse stays strong: (lag in s, overlap, chance).

    overlap[k] = mean over snapshot pairs (t, t + lag_k) of |S(t) & S(t + lag_k)| / |S(t)|, S(t) the E->E
    synapses above ``strong_fraction * w_max`` at snapshot t (snapshots after `skip` s, equally spaced);
    chance is the mean fraction of E->E synapses that are strong (the overlap of two independent draws).
    """
    n_exc = int(trained.attrs["n_exc"])
    pre, post = trained["pre"].values, trained["post"].values
    ee = (pre < n_exc) & (post < n_exc)
    t = trained["snapshot_time"].values
    keep = t > skip
    t = t[keep]
    if t.size < 2:
        return np.zeros(0), np.zeros(0), np.nan
    step = np.diff(t)
    if np.ptp(step) > 1e-9:
        raise ValueError("strong_overlap needs equally spaced snapshots")
    strong = trained["weight_history"].values[keep][:, ee] > strong_fraction * w_max
    n = strong.sum(axis=1).astype(float)
    lags = np.arange(1, t.size)
    overlap = np.array([np.mean((strong[:-k] & strong[k:]).sum(axis=1) / n[:-k]) for k in lags])
    return lags * step[0], overlap, float(strong.mean())


def weight_statistics(trained: xr.Dataset, w_max: float, strong_fraction: float) -> dict[str, np.ndarray]:
    """Per snapshot, over excitatory-to-excitatory synapses: fraction strong (> strong_fraction w_max),
    fraction near zero (< 0.05 w_max), mean weight, and the anchor triplets of all mothers."""
    n_exc = int(trained.attrs["n_exc"])
    pre, post = trained["pre"].values, trained["post"].values
    ee = (pre < n_exc) & (post < n_exc)
    w = trained["weight_history"].values[:, ee].astype(float)
    strong = w > strong_fraction * w_max
    n_in = np.array([np.bincount(post[ee][row], minlength=n_exc) for row in strong])
    return dict(strong=strong.mean(axis=1), weak=(w < 0.05 * w_max).mean(axis=1), mean=w.mean(axis=1),
                triplets=(n_in * (n_in - 1) * (n_in - 2) // 6).sum(axis=1))


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
    parser.add_argument("--equalised-mothers", type=int, default=None,
                        help="mothers searched in the trained network with its delays set equal (default --mothers)")
    parser.add_argument("--snapshots", type=int, default=None,
                        help="search this many snapshot times (evenly chosen, the last included); default all")
    parser.add_argument("--times", type=str, default=None,
                        help="comma-separated snapshot times (s) to search, instead of --snapshots")
    parser.add_argument("--equal-duration", type=float, default=None,
                        help="model time (s) of the equal-delay training, if shorter than the main one")
    parser.add_argument("--max-spikes", type=int, default=1000,
                        help="group spikes simulated at most per triplet (the cascade cap); groups cut there are "
                             "counted as truncated")
    parser.add_argument("--shuffles", type=int, default=1,
                        help="shuffled controls per time (their counts are averaged)")
    parser.add_argument("--end-window", type=float, default=3600.0,
                        help="model time (s) before the last time searched over which the end estimate averages")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.shuffles < 1:
        raise ValueError(f"--shuffles must be >= 1, got {args.shuffles}")
    name = "quick" if args.quick else "full" if args.full else "reduced"
    cfg = SCALES[name]
    start = time.perf_counter()
    trained = {"random": train(name, "random", args.seed),
               "equal": train(name, "equal", args.seed, args.equal_duration)}
    sim_seconds = {k: float(v.attrs["wall_seconds"]) for k, v in trained.items()}
    real = trained["random"]
    n_exc = int(real.attrs["n_exc"])
    w_max = float(real.attrs["w_max"])
    all_times = real["snapshot_time"].values
    equal_times = list(trained["equal"]["snapshot_time"].values)
    if args.times is not None:
        wanted = np.array([float(x) for x in args.times.split(",")])
        missing = wanted[~np.isin(wanted, all_times)]
        if missing.size:
            raise ValueError(f"--times: no snapshot at {missing.tolist()} s (snapshots every "
                             f"{all_times[0]:.0f} s up to {all_times[-1]:.0f} s)")
        pick = np.flatnonzero(np.isin(all_times, wanted))
    else:
        pick = np.arange(len(all_times))
        if args.snapshots is not None and args.snapshots < len(all_times):
            pick = np.unique(np.rint(np.linspace(0, len(all_times) - 1, args.snapshots)).astype(int))
        pick = np.union1d(pick, np.flatnonzero(np.isin(all_times, equal_times)))   # where all three compare
    times = all_times[pick]
    order = np.random.default_rng([args.seed, 99]).permutation(n_exc)
    n_mothers = {c: min(args.mothers, n_exc) for c in CONDITIONS}
    if args.equal_mothers is not None:     # 0: train it but do not search it
        n_mothers["equal_delays"] = min(max(args.equal_mothers, 0), n_exc)
    if args.equalised_mothers is not None:
        n_mothers["delays_equalised"] = min(max(args.equalised_mothers, 0), n_exc)
    mothers = {c: np.sort(order[:m]) for c, m in n_mothers.items()}   # nested subsets of one random order
    shape = (len(CONDITIONS), len(times))
    counts, low, high = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    found, truncated, triplets, search_seconds = np.zeros(shape), np.zeros(shape), np.zeros(shape), np.zeros(shape)
    per_mother = {c: np.full((len(times), n_mothers[c]), np.nan) for c in ("real", "shuffled")}
    cache = ROOT / "build" / "polychrony" / name / "search"
    final = {}
    for k, (j, t) in enumerate(zip(pick, times)):
        conns = {"real": at_snapshot(real, j),
                 "shuffled": [P.shuffle_weights(at_snapshot(real, j), seed=args.seed + 1000 * int(j) + 100_000 * r)
                              for r in range(args.shuffles)]}
        if t in equal_times and n_mothers["equal_delays"] > 0:
            conns["equal_delays"] = at_snapshot(trained["equal"], equal_times.index(t))
        if n_mothers["delays_equalised"] > 0:
            conns["delays_equalised"] = P.equal_delays(conns["real"])
        for c, cond in enumerate(CONDITIONS):
            if cond not in conns:
                continue
            searches = [count(conn, mothers[cond], cfg, args.threads, args.max_spikes, cache)
                        for conn in (conns[cond] if isinstance(conns[cond], list) else [conns[cond]])]
            search_seconds[c, k] = sum(sec for _, sec in searches)
            counts[c, k], low[c, k], high[c, k] = bootstrap_count([g for g, _ in searches], mothers[cond], n_exc,
                                                                  args.seed)
            groups = searches[0][0]
            if cond in per_mother:
                per_mother[cond][k] = per_mother_counts([g for g, _ in searches], mothers[cond])
            # per search (the shuffled controls: mean over the shuffles)
            truncated[c, k] = np.mean([int(g["truncated"].values.sum()) for g, _ in searches])
            found[c, k] = np.mean([g.attrs["n_groups"] for g, _ in searches]) - truncated[c, k]
            triplets[c, k] = np.mean([g.attrs["n_triplets"] for g, _ in searches])
            print(f"t = {t:7.0f} s  {cond:>12}: {counts[c, k]:8.0f} groups [{low[c, k]:.0f}, {high[c, k]:.0f}] "
                  f"({found[c, k]:.1f} in {n_mothers[cond]} mothers, {truncated[c, k]:.1f} truncated, "
                  f"{triplets[c, k]:.0f} triplets per search, {search_seconds[c, k]:.0f} s)", flush=True)
            final[cond] = groups
    ds = xr.Dataset(
        {"group_count": (("condition", "time"), counts,
                         {"long_name": "polychronous groups (scaled to all excitatory mothers)"}),
         "group_count_low": (("condition", "time"), low,
                             {"long_name": "2.5 % bootstrap quantile over the searched mothers"}),
         "group_count_high": (("condition", "time"), high,
                              {"long_name": "97.5 % bootstrap quantile over the searched mothers"}),
         "groups_found": (("condition", "time"), found,
                          {"long_name": "groups in the searched mothers (not truncated; per search, the "
                                        "shuffled controls averaged over the shuffles)"}),
         "groups_truncated": (("condition", "time"), truncated,
                              {"long_name": "groups found that were cut at the cascade cap (max_spikes), "
                                            "per search"}),
         "triplets": (("condition", "time"), triplets,
                      {"long_name": "anchor triplets tried per search (searched mothers)"}),
         "search_seconds": (("condition", "time"), search_seconds, {"units": "s"}),
         "spikes_exc": ("chunk", real["spikes_exc"].values),
         "spikes_inh": ("chunk", real["spikes_inh"].values),
         "chunk_end": ("chunk", real["chunk_end"].values, {"units": "s"}),
         "equal_spikes_exc": ("equal_chunk", trained["equal"]["spikes_exc"].values),
         "equal_chunk_end": ("equal_chunk", trained["equal"]["chunk_end"].values, {"units": "s"})},
        coords={"condition": list(CONDITIONS), "time": ("time", times, {"units": "s"})})
    ds["mothers_searched"] = ("condition", [n_mothers[c] for c in CONDITIONS])
    # the weights at every snapshot (not only the searched ones): is anything drifting?
    for key, tr in (("", real), ("equal_", trained["equal"])):
        stats = weight_statistics(tr, w_max, cfg["strong_fraction"])
        dim = f"{key}snapshot"
        ds[f"{key}snapshot_time"] = (dim, tr["snapshot_time"].values, {"units": "s"})
        ds[f"{key}strong_fraction"] = (dim, stats["strong"], {"long_name": "E->E synapses above the strong "
                                                                          "threshold (fraction)"})
        ds[f"{key}weak_fraction"] = (dim, stats["weak"], {"long_name": "E->E synapses below 0.05 w_max (fraction)"})
        ds[f"{key}mean_weight"] = (dim, stats["mean"], {"units": "mV", "long_name": "mean E->E weight"})
        ds[f"{key}all_triplets"] = (dim, stats["triplets"], {"long_name": "anchor triplets of all mothers"})
    # how long strong synapses stay strong (why the count at one instant is a single draw)
    lag, overlap, chance = strong_overlap(real, w_max, cfg["strong_fraction"],
                                          skip=min(1000.0, 0.25 * float(real.attrs["model_time"])))
    ds["strong_overlap"] = ("lag", overlap, {"long_name": "fraction of the strong E->E synapses at t still "
                                                          "strong at t + lag (mean over t)"})
    ds["lag"] = ("lag", lag, {"units": "s"})
    ds.attrs["strong_overlap_chance"] = chance
    # every group at the last time searched: size, layers, time span
    for cond in (c for c in CONDITIONS if c in final):
        g = final[cond]
        whole = ~g["truncated"].values
        for var in ("n_spikes", "n_layers", "time_span"):
            ds[f"{cond}_{var}"] = (f"{cond}_group", g[var].values[whole], g[var].attrs)
    # one example group of the real network: the one with most layers (then most spikes)
    g = final["real"]
    if g.attrs["n_groups"] and not g["truncated"].values.all():
        best = int(np.lexsort((g["n_spikes"].values, g["n_layers"].values, ~g["truncated"].values))[-1])
        neuron, t, layer = P.group_spikes(g, best)
        lk = g["link_group"].values == best
        ds["example_neuron"] = ("example_spike", neuron)
        ds["example_time"] = ("example_spike", t, {"units": "s"})
        ds["example_layer"] = ("example_spike", layer)
        for var in ("pre", "post", "delay", "layer"):
            ds[f"example_link_{var}"] = ("example_link", g[f"link_{var}"].values[lk], g[f"link_{var}"].attrs)
        ds.attrs["example_mother"] = int(g["mother"].values[best])
    # the real / shuffled ratio at the last time, and averaged over the times searched in the end window
    # (the count at one instant is one draw: see strong_overlap), with crossed bootstrap intervals
    r, s_ = counts[CONDITIONS.index("real")], counts[CONDITIONS.index("shuffled")]
    window = times >= times[-1] - args.end_window + 1e-9
    end = window_estimate(per_mother["real"][window], per_mother["shuffled"][window], n_exc, args.seed)
    ds["end_window_time"] = ("end_time", times[window], {"units": "s"})
    for key in ("real", "shuffled", "ratio"):
        for suffix in ("", "_low", "_high"):
            ds.attrs[f"end_{key}{suffix}"] = end[f"{key}{suffix}"]
    ds.attrs.update(end_window=float(args.end_window),
                    ratio_end=float(r[-1] / s_[-1]) if s_[-1] > 0 else (np.inf if r[-1] > 0 else np.nan),
                    ratio_last_hour=end["ratio"],
                    ratio_all_times=float(np.nanmean(r) / np.nanmean(s_)) if np.nanmean(s_) > 0 else np.inf)
    ds.attrs.update(scale=name, n_exc=n_exc, n_inh=int(real.attrs["n_inh"]), model_time=float(times[-1]),
                    simulation_wall_seconds_random=sim_seconds["random"],
                    simulation_wall_seconds_equal=sim_seconds["equal"], min_layers=cfg["min_layers"],
                    strong_fraction=cfg["strong_fraction"], max_spikes=args.max_spikes, shuffles=args.shuffles,
                    equal_model_time=float(trained["equal"].attrs["model_time"]),
                    equal_delay=float(P.equal_delays(P.izhikevich_connectivity(seed=args.seed, **cfg["network"]))
                                      ["delay"].values[0]),
                    total_wall_seconds=time.perf_counter() - start)
    with_provenance(ds, "polychrony", dict(scale=name, mothers=args.mothers, snapshots=args.snapshots,
                                           times=args.times, max_spikes=args.max_spikes, shuffles=args.shuffles,
                                           end_window=args.end_window,
                                           **{k: v for k, v in cfg.items() if k != "network"}),
                    args.seed, engine="brian2-cpp_standalone+izhikevich-1ms")
    write_netcdf(ds, args.out)
    print(f"real / shuffled: {ds.attrs['ratio_end']:.2f} at {times[-1]:.0f} s; averaged over the "
          f"{window.sum()} times in the last {args.end_window:.0f} s: {end['real']:.0f} "
          f"[{end['real_low']:.0f}, {end['real_high']:.0f}] vs {end['shuffled']:.0f} "
          f"[{end['shuffled_low']:.0f}, {end['shuffled_high']:.0f}], ratio {end['ratio']:.2f} "
          f"[{end['ratio_low']:.2f}, {end['ratio_high']:.2f}]; {ds.attrs['ratio_all_times']:.2f} over all times")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
