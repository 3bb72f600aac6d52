"""Forward benchmark: neurodelay's exact engine (`simulate`, engine "auto": the layered engine, recurrent groups
included) against NEST's precise LIF model (iaf_psc_exp_ps).

A recurrent random network (800 excitatory + 200 inhibitory LIF neurons, fixed
in-degree 80 + 20, delays uniform on 1-20 ms on a 0.1 ms grid) driven by 1000
external Poisson sources (fixed in-degree 50) with off-grid spike times. Both
simulators get the same network and the same input spikes. Throughput is
counted in synaptic events: the sum, over all spikes (input and recurrent), of
the sender's out-degree (arrivals due after the end of the run, a share of
about mean delay / duration, are counted too).

* single trial, 1 thread each: engine `simulate(..., n_threads=1)` vs NEST
  with local_num_threads=1 (NEST's network construction excluded, reported);
* single trial, T threads each: the engine splits the recurrent group into T
  partitions advancing in lock-step windows of the smallest delay between
  partitions (1 ms here; its spikes are checked identical to the 1-thread run)
  vs NEST with local_num_threads=T;
* batch of independent trials (different input seeds), T threads each
  (T = neurodelay's default_threads()): engine with n_threads=T over trials vs
  NEST with local_num_threads=T running the trials one after another.

Each configuration is timed `--repeats` times, engine and NEST interleaved, and
the fastest run counts; the engine's CPU time (all its threads) is reported with
its wall time. The numba compile (or cache load) is excluded and reported
separately.

usage: python bench/forward.py [--quick] [--json PATH] [--duration S] [--trials N]
                               [--threads T] [--repeats R] [--no-nest] [--no-cold-compile]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

_ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(os.environ.get("NEURODELAY_CACHE", _ROOT / "build" / "cache"))
                                             / "numba"))
os.environ.setdefault("PYNEST_QUIET", "1")
# NEST's OpenMP threads meet at a barrier every min-delay step; spinning there (the default
# policy) collapses NEST's multi-threaded speed as soon as the machine is shared. Set
# OMP_WAIT_POLICY=ACTIVE explicitly to measure NEST with spinning threads on a quiet machine, or
# `--omp-wait-policy default` for libgomp's default (spin briefly, then sleep). The policy holds for
# the engine's threads (numba's OpenMP layer, which meets at the end of each window) too.
_POLICY = (sys.argv[sys.argv.index("--omp-wait-policy") + 1] if "--omp-wait-policy" in sys.argv[:-1]
           else os.environ.get("OMP_WAIT_POLICY", "passive")).upper()
if _POLICY == "DEFAULT":
    os.environ.pop("OMP_WAIT_POLICY", None)
else:
    os.environ["OMP_WAIT_POLICY"] = _POLICY

from _common import (default_json_path, package_versions, print_table, stopwatch,  # noqa: E402
                     write_json_atomic, writable_path)

from neurodelay.delays import Delays  # noqa: E402
from neurodelay import simulate  # noqa: E402
from neurodelay.events.forward import default_threads  # noqa: E402
from neurodelay.events.kernel import simulate_trial  # noqa: E402
from neurodelay.nest import simulate_nest  # noqa: E402
from neurodelay.network import LIF, Network, SpikeSource  # noqa: E402
from neurodelay.spikes import SpikeTrains  # noqa: E402

RESOLUTION = 1e-4  # s: NEST's grid; every delay is a whole number of steps


@dataclass(frozen=True)
class Config:
    """The benchmark network (times in s, voltages in units of theta)."""

    n_exc: int = 800
    n_inh: int = 200
    k_exc: int = 80          # excitatory inputs per neuron
    k_inh: int = 20          # inhibitory inputs per neuron
    n_ext: int = 1000        # external Poisson sources
    k_ext: int = 50          # external inputs per neuron
    rate_ext: float = 30.0   # Hz per external source
    w_exc: float = 0.1
    g: float = 5.0           # inhibitory weight = -g * w_exc
    w_ext: float = 0.15
    tau_m: float = 20e-3
    tau_s: float = 5e-3
    theta: float = 1.0
    refractory: float = 2e-3
    delay_min: float = 1e-3
    delay_max: float = 20e-3
    seed: int = 1

    @property
    def n(self) -> int:
        return self.n_exc + self.n_inh


def _grid_delays(rng, size, cfg: Config) -> np.ndarray:
    lo, hi = round(cfg.delay_min / RESOLUTION), round(cfg.delay_max / RESOLUTION)
    return rng.integers(lo, hi + 1, size) * RESOLUTION


def _fixed_in_degree(rng, n_post, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(pre, post): each postsynaptic neuron draws k distinct presynaptic neurons from `candidates`."""
    pre = np.concatenate([rng.choice(candidates[candidates != j], k, replace=False) for j in range(n_post)])
    return pre, np.repeat(np.arange(n_post), k)


def build_network(cfg: Config) -> Network:
    """Sources 'ext' and one LIF population 'lif' (first n_exc excitatory), no autapses."""
    rng = np.random.default_rng(cfg.seed)
    lif = LIF("lif", cfg.n, tau_m=cfg.tau_m, tau_s=cfg.tau_s, theta=cfg.theta, refractory=cfg.refractory)
    net = Network().add(SpikeSource("ext", cfg.n_ext), lif)
    pre_e, post_e = _fixed_in_degree(rng, cfg.n, np.arange(cfg.n_exc), cfg.k_exc)
    pre_i, post_i = _fixed_in_degree(rng, cfg.n, np.arange(cfg.n_exc, cfg.n), cfg.k_inh)
    pre, post = np.concatenate([pre_e, pre_i]), np.concatenate([post_e, post_i])
    weight = np.where(pre < cfg.n_exc, cfg.w_exc, -cfg.g * cfg.w_exc)
    net = net.connect("lif", "lif", weight=weight, connectivity=(pre, post),
                      delays=Delays(synaptic=_grid_delays(rng, len(pre), cfg)))
    pre, post = _fixed_in_degree(rng, cfg.n, np.arange(cfg.n_ext), cfg.k_ext)
    return net.connect("ext", "lif", weight=cfg.w_ext, connectivity=(pre, post),
                       delays=Delays(synaptic=_grid_delays(rng, len(pre), cfg)))


def poisson_inputs(cfg: Config, n_trials: int, duration: float, seed: int) -> SpikeTrains:
    """Independent homogeneous Poisson trains of the external sources, off the grid (s)."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(cfg.rate_ext * duration, (n_trials, cfg.n_ext))
    trial = np.repeat(np.arange(n_trials), counts.sum(1))
    neuron = np.repeat(np.tile(np.arange(cfg.n_ext), n_trials), counts.ravel())
    return SpikeTrains(trial, neuron, rng.uniform(0.0, duration, counts.sum()), n_trials, cfg.n_ext).sorted()


def synaptic_events(net: Network, inputs: SpikeTrains, lif_neuron: np.ndarray) -> int:
    """Sum of the out-degrees of all senders of spikes: input spikes plus LIF spikes (local indices)."""
    out_ext = np.bincount(net.projection("ext", "lif").pre_idx, minlength=net["ext"].n)
    out_lif = np.bincount(net.projection("lif", "lif").pre_idx, minlength=net["lif"].n)
    return int(out_ext[inputs.neuron].sum() + out_lif[lif_neuron].sum())


def warm_engine(net: Network, threads: int) -> dict:
    """Load or compile the engine's numba code on tiny runs (one trial on 1 and `threads` threads, and two
    trials: batches take another path for recurrent groups, see neurodelay.layered.recurrent.WINDOWED);
    returns their wall time and cache hits."""
    tiny = SpikeTrains(np.zeros(1, np.int64), np.zeros(1, np.int64), np.array([1e-3]), 1, net["ext"].n)
    pair = SpikeTrains(np.arange(2), np.zeros(2, np.int64), np.full(2, 1e-3), 2, net["ext"].n)
    with stopwatch() as t:
        simulate(net, tiny, 2e-3, n_threads=1)
        simulate(net, tiny, 2e-3, n_threads=threads)
        simulate(net, pair, 2e-3, n_threads=threads)
    stats = simulate_trial.stats
    return {"first_call_s": t(), "numba_cache_hits": int(sum(stats.cache_hits.values())),
            "numba_cache_misses": int(sum(stats.cache_misses.values()))}


def fastest(runs: list[dict]) -> dict:
    """The run with the smallest wall time (the machine may be shared), with all wall times kept."""
    return {**min(runs, key=lambda r: r["wall_s"]), "all_wall_s": [r["wall_s"] for r in runs]}


_COLD_COMPILE = """
import time, numpy as np
from neurodelay import simulate
from neurodelay.network import LIF, Network, SpikeSource
from neurodelay.spikes import SpikeTrains
net = Network().add(SpikeSource("ext", 1), LIF("lif", 1)).connect("ext", "lif", weight=2.0)
start = time.perf_counter()
simulate(net, SpikeTrains(np.zeros(1, np.int64), np.zeros(1, np.int64), np.array([1e-3]), 1, 1), 0.1)
print(time.perf_counter() - start)
"""


def cold_compile_seconds() -> float:
    """Wall time of the engine's first call in a fresh process with an empty numba cache (= compile time)."""
    with tempfile.TemporaryDirectory() as cache:
        out = subprocess.run([sys.executable, "-c", _COLD_COMPILE], env={**os.environ, "NUMBA_CACHE_DIR": cache},
                             check=True, capture_output=True, text=True)
    return float(out.stdout.split()[-1])


def run_engine(net: Network, inputs: SpikeTrains, duration: float, threads: int) -> dict:
    cpu = time.process_time()
    with stopwatch() as t:
        rec = simulate(net, inputs, duration, n_threads=threads)
    cpu = time.process_time() - cpu
    sp = rec.spikes("lif")
    return {"wall_s": t(), "cpu_s": cpu, "trial": sp.trial, "neuron": sp.neuron, "time": sp.time}


def run_nest(net: Network, inputs: SpikeTrains, trial: int, duration: float, threads: int) -> dict:
    """One trial in NEST iaf_psc_exp_ps; build and Simulate timed separately."""
    run = simulate_nest(net, inputs, duration, trial=trial, resolution=RESOLUTION, threads=threads)
    return {"build_s": run.build_s, "wall_s": run.simulate_s,
            "neuron": run.neuron - net.offsets()["lif"], "time": run.time}


def run_nest_batch(net: Network, inputs: SpikeTrains, duration: float, threads: int) -> dict:
    """The trials one after another, each in a fresh NEST kernel; wall_s sums their Simulate times."""
    runs = [run_nest(net, inputs, k, duration, threads) for k in range(inputs.n_trials)]
    return {"wall_s": sum(r["wall_s"] for r in runs), "build_s": sum(r["build_s"] for r in runs),
            "neuron": np.concatenate([r["neuron"] for r in runs]),
            "events": sum(synaptic_events(net, inputs.select_trials([k]), r["neuron"]) for k, r in enumerate(runs))}


def agreement(engine_neuron, engine_time, nest_neuron, nest_time, n: int) -> dict:
    """How closely two runs of one trial agree: spike counts and the first divergence of the raster."""
    c_eng, c_nest = np.bincount(engine_neuron, minlength=n), np.bincount(nest_neuron, minlength=n)
    m = min(len(engine_time), len(nest_time))
    same = (engine_neuron[:m] == nest_neuron[:m]) & (np.abs(engine_time[:m] - nest_time[:m]) <= 1e-9)
    first = int(np.argmin(same)) if not same.all() else m
    identical_prefix = nest_time[:first]
    return {
        "spikes_engine": int(len(engine_time)), "spikes_nest": int(len(nest_time)),
        "relative_count_difference": float(abs(len(engine_time) - len(nest_time)) / max(len(nest_time), 1)),
        "neurons_with_equal_counts": float(np.mean(c_eng == c_nest)),
        "identical_spikes_before_divergence": first,
        "divergence_time_s": float(nest_time[first]) if first < len(nest_time) else None,
        "max_abs_dt_before_divergence_s": (float(np.max(np.abs(engine_time[:first] - identical_prefix)))
                                           if first else None),
    }


def measure(net: Network, single_in: SpikeTrains, batch_in: SpikeTrains, duration: float, threads: int,
            repeats: int, use_nest: bool) -> dict:
    """Fastest of `repeats` timed runs of each configuration, interleaved so that both
    simulators see the same machine load. Events are counted from each run's own spikes."""
    runs = {"engine": [], "nest": [], "engine_mt": [], "nest_mt": [], "engine_batch": [], "nest_batch": []}
    for _ in range(repeats):
        runs["engine"].append(run_engine(net, single_in, duration, threads=1))
        runs["engine_mt"].append(run_engine(net, single_in, duration, threads=threads))
        runs["engine_batch"].append(run_engine(net, batch_in, duration, threads=threads))
        if use_nest:
            runs["nest"].append(run_nest(net, single_in, 0, duration, threads=1))
            runs["nest_mt"].append(run_nest(net, single_in, 0, duration, threads=threads))
            runs["nest_batch"].append(run_nest_batch(net, batch_in, duration, threads=threads))
    for r in runs["engine"] + runs["engine_mt"] + runs["nest"] + runs["nest_mt"]:
        r["events"] = synaptic_events(net, single_in, r["neuron"])
    for r in runs["engine_batch"]:
        r["events"] = synaptic_events(net, batch_in, r["neuron"])
    return {name: fastest(rs) for name, rs in runs.items() if rs}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 s simulated, 3 trials (under a minute)")
    parser.add_argument("--json", type=writable_path, default=default_json_path("forward"), help="output JSON path")
    parser.add_argument("--duration", type=float, help="simulated seconds per trial (default 5, quick 1)")
    parser.add_argument("--trials", type=int, help="trials in the batch comparison (default 5, quick 3)")
    parser.add_argument("--threads", type=int, default=default_threads(),
                        help="threads for the batch comparison (default: neurodelay's default_threads())")
    parser.add_argument("--repeats", type=int, help="timed runs per measurement, the fastest counts "
                        "(default 3, quick 1)")
    parser.add_argument("--seed", type=int, default=1, help="network seed; input seeds follow it")
    parser.add_argument("--no-nest", action="store_true", help="engine only")
    parser.add_argument("--omp-wait-policy", choices=["passive", "active", "default"],
                        help="OpenMP threads waiting at a barrier: sleep (passive; the default unless "
                        "OMP_WAIT_POLICY says otherwise), spin (active), "
                        "or libgomp's default (spin briefly, then sleep); NEST's threads and the engine's")
    parser.add_argument("--cold-compile", action=argparse.BooleanOptionalAction, default=None,
                        help="also time a compile with an empty numba cache (default: on, off with --quick)")
    args = parser.parse_args(argv)
    duration = args.duration or (1.0 if args.quick else 5.0)
    n_trials = args.trials or (3 if args.quick else 5)
    repeats = args.repeats or (1 if args.quick else 3)
    cold = args.cold_compile if args.cold_compile is not None else not args.quick
    use_nest = not args.no_nest
    if use_nest and importlib.util.find_spec("nest") is None:   # fail early if missing (imported later: see
        raise SystemExit("NEST is not installed (pass --no-nest)")  # neurodelay.layered.recurrent's threads)
    cfg = Config(seed=args.seed)
    load_at_start = list(os.getloadavg())  # 1, 5, 15 min: a busy machine slows everything down

    with stopwatch() as t_build:
        net = build_network(cfg)
    warm = warm_engine(net, args.threads)
    if cold:
        warm["cold_compile_s"] = cold_compile_seconds()
    single_in = poisson_inputs(cfg, 1, duration, seed=1000 * cfg.seed)
    batch_in = poisson_inputs(cfg, n_trials, duration, seed=1000 * cfg.seed + 1)
    best = measure(net, single_in, batch_in, duration, args.threads, repeats, use_nest)

    result = {
        "config": {**asdict(cfg), "duration_s": duration, "n_trials_batch": n_trials, "resolution_s": RESOLUTION,
                   "quick": args.quick, "repeats": repeats,
                   "events": "sum over input and LIF spikes of the sender's out-degree",
                   "nest_batch": "trials one after another, each in a fresh kernel; Simulate times summed",
                   "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "libgomp default")},
        "versions": package_versions("neurodelay", "numpy", "numba", "nest-simulator"),
        "threads_single": 1, "threads_single_mt": args.threads, "threads_batch": args.threads,
        "load_average_at_start": load_at_start,
        "network_build_s": t_build(), "engine_warmup": warm,
    }
    rows = []
    labels = {"engine": ("engine", 1, 1), "engine_mt": ("engine", args.threads, 1),
              "engine_batch": ("engine batch", args.threads, n_trials),
              "nest": ("NEST iaf_psc_exp_ps", 1, 1), "nest_mt": ("NEST iaf_psc_exp_ps", args.threads, 1),
              "nest_batch": ("NEST batch (serial trials)", args.threads, n_trials)}
    for name, r in best.items():
        label, threads, trials = labels[name]
        rate = len(r["neuron"]) / (cfg.n * duration * trials)
        result.update({f"{name}_wall_s": r["wall_s"], f"{name}_all_wall_s": r["all_wall_s"],
                       f"{name}_events": r["events"], f"{name}_events_per_s": r["events"] / r["wall_s"],
                       f"{name}_spikes": len(r["neuron"]), f"{name}_rate_hz": rate})
        cpu = r.get("cpu_s")
        if cpu is not None:    # CPU time of all the engine's threads, and the cores it kept busy
            result.update({f"{name}_cpu_s": cpu, f"{name}_cpu_utilisation": cpu / r["wall_s"]})
        rows.append({"run": label, "threads": threads, "trials": trials, "wall_s": r["wall_s"],
                     "cpu_s": cpu if cpu is not None else float("nan"),
                     "events": r["events"], "events/s": r["events"] / r["wall_s"], "rate_Hz": rate})
    one, mt = best["engine"], best["engine_mt"]
    result["engine_mt_identical_to_1_thread"] = bool(np.array_equal(one["neuron"], mt["neuron"])
                                                     and np.array_equal(one["time"], mt["time"]))
    result["engine_mt_speedup"] = one["wall_s"] / mt["wall_s"]
    if use_nest:
        result["nest_ps_events_per_s"] = result["nest_events_per_s"]  # the name the issue asks for
        result.update({
            "versions": {**result["versions"], "nest_kernel": sys.modules["nest"].__version__},
            "nest_model": "iaf_psc_exp_ps", "nest_build_s": best["nest"]["build_s"],
            "nest_batch_build_s": best["nest_batch"]["build_s"],
            "ratio_engine_over_nest": result["engine_events_per_s"] / result["nest_events_per_s"],
            "ratio_mt_engine_over_nest": result["engine_mt_events_per_s"] / result["nest_mt_events_per_s"],
            "nest_mt_speedup": best["nest"]["wall_s"] / best["nest_mt"]["wall_s"],
            "ratio_batch_engine_over_nest": result["engine_batch_events_per_s"] / result["nest_batch_events_per_s"],
            "agreement_single": agreement(best["engine"]["neuron"], best["engine"]["time"],
                                          best["nest"]["neuron"], best["nest"]["time"], cfg.n),
            "agreement_batch": {"spikes_engine": result["engine_batch_spikes"],
                                "spikes_nest": result["nest_batch_spikes"],
                                "relative_count_difference": abs(result["engine_batch_spikes"]
                                                                 - result["nest_batch_spikes"])
                                / max(result["nest_batch_spikes"], 1)},
        })
    result["load_average_at_end"] = list(os.getloadavg())

    print(f"forward benchmark: {cfg.n} LIF neurons, {cfg.k_exc + cfg.k_inh} recurrent + {cfg.k_ext} external "
          f"synapses each, {duration:g} s simulated, fastest of {repeats}")
    print_table(rows)
    print(f"engine first call (numba compile or cache load, excluded): {warm['first_call_s']:.2f} s "
          f"(cache hits {warm['numba_cache_hits']}, misses {warm['numba_cache_misses']})"
          + (f"; compile with an empty cache {warm['cold_compile_s']:.1f} s" if cold else ""))
    if use_nest:
        a = result["agreement_single"]
        print(f"engine / NEST events per second: single trial {result['ratio_engine_over_nest']:.3g}, "
              f"single trial on {args.threads} threads each {result['ratio_mt_engine_over_nest']:.3g}, "
              f"batch {result['ratio_batch_engine_over_nest']:.3g}")
        print(f"single trial: {a['spikes_engine']} vs {a['spikes_nest']} spikes, identical rasters (|dt| <= 1 ns) "
              f"for the first {a['identical_spikes_before_divergence']} spikes"
              + (f" (until t = {a['divergence_time_s']:.4g} s)" if a["divergence_time_s"] is not None else "")
              + (f", max |dt| there {a['max_abs_dt_before_divergence_s']:.3g} s"
                 if a["max_abs_dt_before_divergence_s"] is not None else ""))
        print(f"NEST network construction (excluded): {result['nest_build_s']:.2f} s per trial")
    print(f"single trial on {args.threads} threads: engine {result['engine_mt_speedup']:.2f}x its 1-thread wall, "
          f"CPU {result['engine_mt_cpu_utilisation']:.2f} cores busy, spikes identical to its 1-thread run: "
          f"{result['engine_mt_identical_to_1_thread']}"
          + (f"; NEST {result['nest_mt_speedup']:.2f}x" if use_nest else ""))
    print(f"load average (1, 5, 15 min) at start {load_at_start}, at end {result['load_average_at_end']}")
    path = write_json_atomic(args.json, result)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
