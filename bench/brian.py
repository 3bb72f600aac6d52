"""Brian2 benchmark: the network of bench/forward.py in Brian2 grid and precise mode, build once, re-run.

The network and the Poisson inputs come from bench/forward.py (1000 LIF
neurons, 800 excitatory + 200 inhibitory, 100 recurrent synapses each, delays
1-20 ms, 1000 external Poisson sources at 30 Hz with 50 synapses per neuron).
For each step dt and each mode (grid: plain Brian2; precise: exact sub-step
timing) on one standalone device:

* first build: code generation + compilation (``compiled`` says whether the
  compiler ran; a build folder left by an earlier run is reused unless
  ``--clean``);
* re-runs through run_args, no recompilation: new input trials, then new
  weights and delays. Wall time per re-run (launch, load, simulate, read back)
  and the binary's own simulation time;
* events per second: synaptic events (sum over input and LIF spikes of the
  sender's out-degree, as in bench/forward.py) per second of re-run wall time;
* ratios: precise / grid wall time per re-run (median over trials of the
  per-trial ratio; grid and precise re-runs alternate, so that load changes
  on a shared machine hit both; target <= 1.5), and Brian2 precise / exact
  event engine (single thread) wall time per trial and events per second.

usage: python bench/brian.py [--quick] [--json PATH] [--device D] [--duration S] [--trials N]
                             [--dt MS ...] [--clean]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
from dataclasses import asdict
from pathlib import Path

import numpy as np

_ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(os.environ.get("NEURODELAY_CACHE", _ROOT / "build" / "cache"))
                                             / "numba"))

from _common import (default_json_path, package_versions, print_table, stopwatch,  # noqa: E402
                     write_json_atomic, writable_path)
from forward import Config, build_network, poisson_inputs, synaptic_events  # noqa: E402

from neurodelay.brian import BrianSimulator  # noqa: E402
from neurodelay.brian.devices import gpu_visible  # noqa: E402
from neurodelay import simulate  # noqa: E402

MODES = ("grid", "precise")


def perturbed(net, seed: int):
    """Same structure, weights scaled by U(0.9, 1.1) and delays redrawn on 1-20 ms (s)."""
    rng = np.random.default_rng(seed)
    for proj in net.projections:
        delays = rng.uniform(1e-3, 20e-3, proj.n_syn)
        net = net.with_projection(proj.pre, proj.post, weight=proj.weight * rng.uniform(0.9, 1.1, proj.n_syn),
                                  synaptic=delays)
    return net


def events_of(net, inputs, record) -> list[int]:
    """Synaptic events of each trial of a record."""
    lif = record.spikes("lif")
    return [synaptic_events(net, inputs.select_trials([k]), lif.neuron[lif.trial == k])
            for k in range(inputs.n_trials)]


def build(net, inputs, duration: float, mode: str, dt: float, device: str, clean: bool, max_spikes: int):
    """A simulator built for the first trial's sizes; (simulator, whether the compiler ran, build folder)."""
    sim = BrianSimulator(net, duration, mode=mode, dt=dt, device=device, max_input_spikes=max_spikes)
    first = inputs.select_trials([0])
    folder = sim.project_directory(first)
    if clean and folder.exists():
        shutil.rmtree(folder)
    compiled = not (folder / "main").exists()
    sim.build(first)
    return sim, compiled, folder


def bench_dt(net, net_b, inputs, duration: float, dt: float, device: str, clean: bool, max_spikes: int,
             engine_walls: list) -> tuple[list, dict]:
    """Grid and precise builds at one dt; their re-runs alternate trial by trial (load drift hits both)."""
    sims = {mode: build(net, inputs, duration, mode, dt, device, clean, max_spikes) for mode in MODES}
    timing = {mode: {"wall": [], "binary": [], "events": [], "spikes": 0} for mode in MODES}
    for k in range(inputs.n_trials):
        trial = inputs.select_trials([k])
        for mode in MODES:
            sim = sims[mode][0]
            with stopwatch() as t:
                rec = sim.run(trial)
            timing[mode]["wall"].append(t())
            timing[mode]["binary"].append(float(sim.device._last_run_time))  # the binary's simulation time
            timing[mode]["events"] += events_of(net, trial, rec)
            timing[mode]["spikes"] += len(rec.time)
    runs = []
    for mode in MODES:
        sim, compiled, folder = sims[mode]
        with stopwatch() as t:
            rec_b = sim.run(inputs.select_trials([0]), network=net_b)
        wall_b = t()
        m = timing[mode]
        runs.append({
            "mode": mode, "dt_s": dt, "device": device, "build_s": sim.build_seconds, "compiled": compiled,
            "build_folder": str(folder.relative_to(_ROOT)) if folder.is_relative_to(_ROOT) else str(folder),
            "history": sim.objects.history,
            "rerun_wall_s": m["wall"], "rerun_binary_s": m["binary"], "rerun_new_values_wall_s": wall_b,
            "events": m["events"], "spikes_new_values": int(len(rec_b.time)),
            "median_rerun_wall_s": statistics.median(m["wall"]),
            "median_rerun_binary_s": statistics.median(m["binary"]),
            "events_per_s": float(np.sum(m["events"]) / np.sum(m["wall"])),
            "events_per_s_binary": float(np.sum(m["events"]) / np.sum(m["binary"])),
            "rate_hz": m["spikes"] / (net["lif"].n * duration * inputs.n_trials),
        })
    grid, precise = timing["grid"], timing["precise"]
    ratios = {
        "precise_over_grid_wall": statistics.median(np.divide(precise["wall"], grid["wall"])),
        "precise_over_grid_binary": statistics.median(np.divide(precise["binary"], grid["binary"])),
        "precise_over_engine_wall": statistics.median(precise["wall"]) / statistics.median(engine_walls),
    }
    return runs, ratios


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="0.5 s simulated, 2 trials")
    parser.add_argument("--json", type=writable_path, default=default_json_path("brian"), help="output JSON path")
    parser.add_argument("--device", default="cpp_standalone", choices=("cpp_standalone", "cuda_standalone"))
    parser.add_argument("--duration", type=float, help="simulated seconds per trial (default 5, quick 0.5)")
    parser.add_argument("--trials", type=int, help="input trials re-run per build (default 3, quick 2)")
    parser.add_argument("--dt", type=float, nargs="+", default=[0.1, 0.01], help="steps in ms (default 0.1 0.01)")
    parser.add_argument("--clean", action="store_true", help="delete the build folders first (compile time)")
    parser.add_argument("--seed", type=int, default=1, help="network seed; input seeds follow it")
    args = parser.parse_args(argv)
    if args.device == "cuda_standalone" and not gpu_visible():
        parser.error("--device cuda_standalone needs a visible GPU (nvidia-smi)")
    duration = args.duration or (0.5 if args.quick else 5.0)
    n_trials = args.trials or (2 if args.quick else 3)
    cfg = Config(seed=args.seed)
    net = build_network(cfg)
    net_b = perturbed(net, seed=1000 * cfg.seed + 7)
    inputs = poisson_inputs(cfg, n_trials, duration, seed=1000 * cfg.seed + 2)
    max_spikes = int(inputs.counts().max()) + 10

    # the exact event engine, single thread, per trial (first call compiles or loads numba code)
    simulate(net, inputs.select_trials([0]), min(duration, 0.05), n_threads=1)
    engine_walls, engine_events = [], []
    for k in range(n_trials):
        trial = inputs.select_trials([k])
        with stopwatch() as t:
            rec = simulate(net, trial, duration, n_threads=1)
        engine_walls.append(t())
        engine_events += events_of(net, trial, rec)
    engine = {"wall_s": engine_walls, "events": engine_events,
              "events_per_s": float(np.sum(engine_events) / np.sum(engine_walls))}

    runs, ratios = [], {}
    for dt_ms in args.dt:
        print(f"--- dt = {dt_ms} ms: grid and precise", flush=True)
        r, ratio = bench_dt(net, net_b, inputs, duration, dt_ms * 1e-3, args.device, args.clean, max_spikes,
                            engine_walls)
        runs += r
        ratio["precise_over_engine_events_per_s"] = r[1]["events_per_s"] / engine["events_per_s"]
        ratios[f"{dt_ms:g}ms"] = ratio
    result = {
        "config": {**asdict(cfg), "duration_s": duration, "n_trials": n_trials, "device": args.device,
                   "dts_ms": args.dt, "quick": args.quick, "clean": args.clean,
                   "events": "sum over input and LIF spikes of the sender's out-degree"},
        "versions": package_versions("neurodelay", "brian2", "brian2cuda", "numpy", "numba"),
        "engine": engine, "runs": runs, "ratios": ratios, "target_precise_over_grid": 1.5,
    }
    rows = [{"mode": r["mode"], "dt_ms": r["dt_s"] * 1e3, "build_s": r["build_s"],
             "compiled": r["compiled"], "rerun_s": r["median_rerun_wall_s"], "binary_s": r["median_rerun_binary_s"],
             "new_values_s": r["rerun_new_values_wall_s"], "events/s": r["events_per_s"]} for r in runs]
    rows.append({"mode": "event engine", "dt_ms": None, "build_s": None, "compiled": None,
                 "rerun_s": statistics.median(engine_walls), "binary_s": None, "new_values_s": None,
                 "events/s": engine["events_per_s"]})
    print(f"Brian2 benchmark ({args.device}): {cfg.n} LIF neurons, {duration:g} s simulated, "
          f"{n_trials} trials per build")
    print_table(rows)
    for key, r in ratios.items():
        print(f"dt = {key}: precise / grid {r['precise_over_grid_wall']:.2f} (wall per re-run), "
              f"{r['precise_over_grid_binary']:.2f} (simulation only); "
              f"precise / event engine {r['precise_over_engine_wall']:.2f} (wall per trial)")
    path = write_json_atomic(args.json, result)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
