"""Polychronous groups in several independently built Izhikevich (2006) networks: end counts and ratios.

One network is one draw (its connectivity, delays and input are set by its seed), and the trained / shuffled
ratio of a single network swings with the turnover of its strong synapses (see analyses/polychrony.py). This
analysis runs analyses/polychrony.py once per seed with the same protocol (10 snapshot times, 6 of them in
the last hour; 200 sampled mothers; one shuffle per time; groups of at most 100 spikes; the trained network
with its delays set equal searched in 20 mothers) and keeps, per network, the end estimate (counts averaged
over the times of the last hour, 95 % intervals resampling times and mothers) and the ratio at the last time;
then pools them: the ratio of the mean counts over networks, and the mean and spread of the per-network
ratios (with a few networks the spread is the honest uncertainty; no interval is claimed for it).

Each network's result is kept in build/polychrony/<scale>/networks/seed<N>.nc and reused when its parameters
match, so an interrupted run repeats only the networks it had not finished (and polychrony.py resumes their
simulations and searches).

Scales: ``--quick`` (2 seeds of polychrony.py's small 4 s network, for the tests), default (1800 s of model
time per network), ``--full`` (the published 18,000 s; about 15-20 min per network on 2 busy cores).

Result: analyses/results/polychrony_networks.nc (the README's table of networks).
Usage: python analyses/polychrony_networks.py [--quick | --full] [--seeds 1,2,3,4,5] [--out PATH]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

from neurodelay.analysis.common import with_provenance
from neurodelay.io import read_netcdf, write_netcdf

RESULT = "polychrony_networks.nc"
EXPECTED_SECONDS = {"quick": 120, "default": 900, "full": 3600}   # wall time on 2 cores (estimates)
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "analyses" / "results" / RESULT
#: polychrony.py's arguments per scale (the protocol every network gets)
PROTOCOL = {
    "quick": ["--quick", "--mothers", "100"],
    "default": ["--mothers", "200", "--max-spikes", "100", "--times", "300,600,900,1200,1500,1800",
                "--equal-mothers", "0", "--equalised-mothers", "20"],
    "full": ["--full", "--mothers", "200", "--max-spikes", "100", "--shuffles", "1",
             "--times", "1500,6000,12000,14400,15000,15600,16200,16800,17400,18000",
             "--equal-duration", "1800", "--equal-mothers", "0", "--equalised-mothers", "20"],
}
#: per network: the end-estimate attributes of polychrony.py's result that are kept
END_KEYS = ("end_real", "end_real_low", "end_real_high", "end_shuffled", "end_shuffled_low", "end_shuffled_high",
            "end_ratio", "end_ratio_low", "end_ratio_high", "ratio_end")


def _polychrony_script():
    spec = importlib.util.spec_from_file_location("polychrony_script", Path(__file__).with_name("polychrony.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def network_result(scale: str, seed: int, folder: Path) -> xr.Dataset:
    """polychrony.py's result for one seed under this scale's protocol, reused from `folder` when it matches
    (same seed, same protocol: the ``protocol`` attribute this function adds)."""
    path = folder / f"seed{seed}.nc"
    protocol = " ".join(PROTOCOL[scale])
    if path.exists():
        ds = read_netcdf(path)
        if int(ds.attrs.get("seed", -1)) == seed and ds.attrs.get("protocol") == protocol:
            return ds
    argv = PROTOCOL[scale] + ["--seed", str(seed), "--out", str(path)]
    if _polychrony_script().main(argv) not in (0, None):
        raise RuntimeError(f"analyses/polychrony.py {' '.join(argv)} failed")
    ds = read_netcdf(path)
    ds.attrs["protocol"] = protocol
    write_netcdf(ds, path)
    return ds


def pool_networks(results: dict[int, xr.Dataset]) -> xr.Dataset:
    """Per-network end estimates (``network`` = seed) and their pooled ratio.

    results: seed -> polychrony.py result. Returns a Dataset over ``network`` with the end counts (groups, all
    mothers) and ratios of each network, and attributes ``pooled_ratio`` (mean trained count over mean
    shuffled count), ``mean_ratio``, ``median_ratio``, ``std_ratio`` (sample std over networks), ``min_ratio``,
    ``max_ratio``.
    """
    if len(results) < 1:
        raise ValueError("pool_networks needs at least one network")
    missing = [s for s, ds in results.items() if any(k not in ds.attrs for k in END_KEYS)]
    if missing:
        raise ValueError(f"results of seed(s) {missing} have no end estimate (written by an older polychrony.py)")
    scales = {ds.attrs.get("scale") for ds in results.values()}
    if len(scales) != 1:
        raise ValueError(f"results of different scales cannot be pooled: {sorted(map(str, scales))}")
    seeds = sorted(results)
    ds = xr.Dataset(coords=dict(network=("network", np.array(seeds), {"long_name": "network seed"})))
    for key in END_KEYS:
        units = "1" if "ratio" in key else "groups"
        ds[key] = ("network", np.array([float(results[s].attrs[key]) for s in seeds]), {"units": units})
    ds["end_window_times"] = ("network", np.array([results[s].sizes.get("end_time", 0) for s in seeds]),
                              {"units": "1", "long_name": "snapshot times averaged in the end window"})
    equalised = [results[s]["group_count"].sel(condition="delays_equalised") for s in seeds]
    ds["delays_equalised_max"] = ("network", np.array([float(np.nanmax(e.values)) if np.any(np.isfinite(e.values))
                                                       else np.nan for e in equalised]),
                                  {"units": "groups", "long_name": "most groups of the trained network with its "
                                                                   "delays set equal, over the times searched"})
    ratios = ds["end_ratio"].values
    finite = ratios[np.isfinite(ratios)]
    mean_real, mean_shuffled = float(ds["end_real"].mean()), float(ds["end_shuffled"].mean())
    ds.attrs.update(pooled_real=mean_real, pooled_shuffled=mean_shuffled,
                    pooled_ratio=mean_real / mean_shuffled if mean_shuffled > 0 else np.nan,
                    mean_ratio=float(finite.mean()) if finite.size else np.nan,
                    median_ratio=float(np.median(finite)) if finite.size else np.nan,
                    std_ratio=float(finite.std(ddof=1)) if finite.size > 1 else np.nan,
                    min_ratio=float(finite.min()) if finite.size else np.nan,
                    max_ratio=float(finite.max()) if finite.size else np.nan,
                    n_networks=len(seeds), scale=str(scales.pop()),
                    model_time=float(results[seeds[0]].attrs["model_time"]))
    return ds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument("--quick", action="store_true", help="2 seeds of the small 4 s network (tests)")
    scale.add_argument("--full", action="store_true", help="the published 18,000 s per network")
    parser.add_argument("--seeds", default=None, help="comma-separated network seeds (default 1,2,3,4,5; quick 1,2)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    name = "quick" if args.quick else "full" if args.full else "default"
    try:
        seeds = [int(s) for s in (args.seeds or ("1,2" if args.quick else "1,2,3,4,5")).split(",") if s.strip()]
    except ValueError:
        parser.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    if not seeds or len(set(seeds)) != len(seeds):
        parser.error(f"--seeds must name distinct seeds, got {args.seeds!r}")
    start = time.perf_counter()
    folder = ROOT / "build" / "polychrony" / {"default": "reduced"}.get(name, name) / "networks"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        results = {s: network_result(name, s, folder) for s in seeds}
        ds = pool_networks(results)
    except (ValueError, RuntimeError) as err:   # inconsistent saved results, a failed network run
        print(f"error: {err}", file=sys.stderr)
        return 2
    ds.attrs.update(protocol=" ".join(PROTOCOL[name]), wall_seconds=time.perf_counter() - start,
                    command="python analyses/polychrony_networks.py" + ("" if name == "default" else f" --{name}"))
    with_provenance(ds, "polychrony_networks", dict(scale=name, seeds=seeds), seeds[0],
                    engine="brian2-cpp_standalone+izhikevich-1ms")
    write_netcdf(ds, args.out)
    for s in seeds:
        r = ds.sel(network=s)
        print(f"seed {s}: trained {float(r.end_real):.0f} [{float(r.end_real_low):.0f}, {float(r.end_real_high):.0f}]"
              f" vs shuffled {float(r.end_shuffled):.0f} [{float(r.end_shuffled_low):.0f}, "
              f"{float(r.end_shuffled_high):.0f}], ratio {float(r.end_ratio):.2f} [{float(r.end_ratio_low):.2f}, "
              f"{float(r.end_ratio_high):.2f}]; {float(r.ratio_end):.2f} at the last time")
    print(f"pooled over {len(seeds)} networks: ratio {ds.attrs['pooled_ratio']:.2f} (per network "
          f"{ds.attrs['mean_ratio']:.2f} +- {ds.attrs['std_ratio']:.2f}, median {ds.attrs['median_ratio']:.2f}, "
          f"{ds.attrs['min_ratio']:.2f} to {ds.attrs['max_ratio']:.2f})")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
