"""Gradient benchmark: forward + EventProp reverse pass of the exact engines at SHD scale.

Network of the size of the SHD experiments: 700 input channels with about
8000 input spikes per 1 s trial (uniform random times and channels), 256
hidden LIF neurons (tau_m 20 ms, tau_s 5 ms, 1 ms refractory) with synaptic
delays uniform on [0, max_delay] on every projection, 20 leaky-integrator
readouts, exponentially weighted voltage-integral cross-entropy; gradients of
all weights and synaptic delays. Feedforward, with a second hidden layer
(700 -> 256 -> 256 -> 20), and with a recurrent all-to-all hidden layer. Each
trial is simulated on [0, 1 s + max_delay] so that every arrival counts
whatever the maximum delay.

Engines (``--engine``): ``events`` (the general exact engine), ``layered``
(per-neuron scans: forward, loss and reverse pass fused per trial for
feedforward networks, :func:`neurodelay.layered.fused_loss_and_grad`, which is
what ``loss_and_grad(..., engine="layered")`` runs; a recurrent hidden layer
as one recurrent group), ``layered_unfused`` (the same engine's separate
``simulate``, loss and ``adjoint``, as before the fusion) or ``both``
(default: every measurement on all three in the same run, so their ratios are
meaningful on a shared machine). A network the layered engine does not
support is measured on the event engine only. ``--only-recurrent`` measures
the recurrent network alone, ``--ff-only`` the feedforward network and the
max-delay sweep.

Measured per trial (batch run on the default worker threads, divided by the
batch size): wall time, fastest of --repeats runs, and the process's CPU time
(user + system, all threads), which the load of other processes on a shared
machine inflates much less than the wall time. The engines take turns (one run
of each, then the next repeat), so that a drift of the machine's speed during
the run reaches them alike:

* forward (``simulate``) and backward (the loss's sources and the engine's
  ``adjoint``) separately; forward + backward is their sum (the fused path has
  only the sum);
* peak resident set size of the process (getrusage), and its growth during
  each engine's feedforward batch (the layered engine runs first);
* ms per trial against the maximum delay (25, 150, 500, 1000 ms) and against
  the number of input spikes per trial.

The JSON's top-level figures without an engine in their name (``ms_per_trial_ff``,
``ms_per_trial_by_max_delay``, ...) are those of the engine that ``auto`` would
choose: the layered engine where it supports the network (and was run), else
the event engine; ``*_by_engine`` holds both, and ``speedup_layered_over_events``
the ratios (wall and CPU) measured in this run.

usage: python bench/gradient.py [--quick] [--engine {events,layered,layered_unfused,both}] [--json PATH]
       [--batch B] [--threads T] [--repeats R] [--skip-recurrent | --only-recurrent | --ff-only]
"""

from __future__ import annotations

import argparse
import os
import resource
from pathlib import Path

import numpy as np

_ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(os.environ.get("NEURODELAY_CACHE", _ROOT / "build" / "cache"))
                                             / "numba"))

from _common import (default_json_path, package_versions, print_table, stopwatch,  # noqa: E402
                     write_json_atomic, writable_path)

import neurodelay  # noqa: E402
from neurodelay import events, layered  # noqa: E402
from neurodelay.delays import Delays  # noqa: E402
from neurodelay.events.forward import default_threads  # noqa: E402
from neurodelay.losses import WeightedIntegralCrossEntropy  # noqa: E402
from neurodelay.network import LIF, Network, Readout, SpikeSource  # noqa: E402
from neurodelay.spikes import SpikeTrains  # noqa: E402

N_IN, N_HID, N_OUT = 700, 256, 20
INPUT_WINDOW = 1.0   # s: input spikes fall in [0, 1 s)
LOG_BYTES_PER_EVENT = 24
ENGINES = {"events": events, "layered": layered, "layered_unfused": layered}
LAYERED = ("layered", "layered_unfused")


def build_network(max_delay: float, recurrent: bool, seed: int = 1, n_in: int = N_IN, n_hid: int = N_HID,
                  n_out: int = N_OUT, hidden_layers: int = 1) -> Network:
    """The SHD-sized network (smaller with n_in / n_hid / n_out); synaptic delays uniform on [0, max_delay] s.

    hidden_layers: 1 (inp -> hid -> out) or 2 (inp -> hid -> hid2 -> out, hid2 like hid);
    recurrent: all-to-all hid -> hid synapses."""
    rng = np.random.default_rng(seed)
    hidden = ["hid"] + [f"hid{k + 1}" for k in range(1, hidden_layers)]
    net = Network().add(SpikeSource("inp", n_in),
                        *(LIF(h, n_hid, tau_m=20e-3, tau_s=5e-3, refractory=1e-3) for h in hidden),
                        Readout("out", n_out, tau_m=20e-3, tau_s=5e-3))

    def delays(n):
        return Delays(synaptic=rng.uniform(0.0, max_delay, n))

    net = net.connect("inp", "hid", rng.normal(0.03, 0.08, n_in * n_hid), delays=delays(n_in * n_hid))
    if recurrent:
        net = net.connect("hid", "hid", rng.normal(-0.01, 0.05, n_hid * n_hid), delays=delays(n_hid * n_hid))
    for pre, post in zip(hidden[:-1], hidden[1:]):
        net = net.connect(pre, post, rng.normal(0.02, 0.1, n_hid * n_hid), delays=delays(n_hid * n_hid))
    return net.connect(hidden[-1], "out", rng.normal(0.0, 0.3, n_hid * n_out), delays=delays(n_hid * n_out))


def random_inputs(n_trials: int, spikes_per_trial: int, seed: int, n_in: int = N_IN,
                  n_classes: int = N_OUT) -> tuple[SpikeTrains, np.ndarray]:
    """About spikes_per_trial (Poisson) uniform random input spikes per trial on n_in channels
    in [0, INPUT_WINDOW) s, and random labels in [0, n_classes)."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(spikes_per_trial, n_trials)
    trial = np.repeat(np.arange(n_trials), counts)
    inputs = SpikeTrains(trial, rng.integers(0, n_in, counts.sum()), rng.uniform(0, INPUT_WINDOW, counts.sum()),
                         n_trials, n_in)
    return inputs, rng.integers(0, n_classes, n_trials)


def param_keys(net: Network) -> list:
    return [(p.name, kind) for p in net.projections for kind in ("weight", "synaptic")]


def events_in_trial(record, trial: int = 0) -> int:
    """Events of the reverse pass in one trial: arrivals within the window, spikes and ends of refractoriness."""
    flat = record.flat
    ins, own = record.inputs.trial == trial, record.trial == trial
    neuron = np.concatenate([record.inputs.neuron[ins], record.neuron[own]])
    time = np.concatenate([record.inputs.time[ins], record.time[own]])
    arrivals = sum(int(np.searchsorted(flat.out_d[flat.out_ptr[i]: flat.out_ptr[i + 1]], record.duration - t,
                                       side="right")) for i, t in zip(neuron, time))
    return arrivals + 2 * int(own.sum())


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads (s)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(net: Network, inputs: SpikeTrains, labels, duration: float, threads: int, repeats: int,
            engine: str = "events") -> dict:
    """Per-trial cost of the forward pass (simulate) and the backward pass (the loss's sources and the
    engine's adjoint: gradients of every weight and delay) on `engine`: wall ms (fastest of `repeats`)
    and process CPU ms (least of `repeats`)."""
    eng = ENGINES[engine]
    loss = WeightedIntegralCrossEntropy("out", tau_weight=0.5)
    n = inputs.n_trials
    per_trial = (lambda x: 1e3 * x / n)
    if engine == "layered" and net.is_feedforward():   # fused forward -> loss -> backward: one total
        wall_t = cpu_t = np.inf
        for _ in range(repeats):
            c0 = cpu_seconds()
            with stopwatch() as total:
                fused = layered.fused_loss_and_grad(net, inputs, duration, loss, labels, n_threads=threads)
            wall_t, cpu_t = min(wall_t, total()), min(cpu_t, cpu_seconds() - c0)
        assert fused is not None, "the fused path does not apply to this network"
        values, result, record = fused
        assert np.all(np.isfinite(values)) and np.all(np.isfinite(result.weight))
        return {"engine": engine, "ms_per_trial": per_trial(wall_t), "forward_ms_per_trial": None,
                "backward_ms_per_trial": None, "cpu_ms_per_trial": per_trial(cpu_t),
                "forward_cpu_ms_per_trial": None, "backward_cpu_ms_per_trial": None,
                "hidden_spikes_per_trial": len(record.time) / n, "input_spikes_per_trial": len(record.inputs.time) / n,
                "events_in_trial_0": events_in_trial(record), "_record": record, "_grad": result}
    wall = {"forward": np.inf, "backward": np.inf}
    cpu = dict(wall)
    for _ in range(repeats):
        c0 = cpu_seconds()
        with stopwatch() as fwd:
            record = eng.simulate(net, inputs, duration, n_threads=threads)
        c1 = cpu_seconds()
        with stopwatch() as bwd:
            values, sources = loss.value_and_sources(record, labels)
            result = eng.adjoint(record, sources, n_threads=threads)
        c2 = cpu_seconds()
        wall = {"forward": min(wall["forward"], fwd()), "backward": min(wall["backward"], bwd())}
        cpu = {"forward": min(cpu["forward"], c1 - c0), "backward": min(cpu["backward"], c2 - c1)}
    assert np.all(np.isfinite(values)) and np.all(np.isfinite(result.weight))
    return {"engine": engine, "ms_per_trial": per_trial(wall["forward"] + wall["backward"]),
            "forward_ms_per_trial": per_trial(wall["forward"]), "backward_ms_per_trial": per_trial(wall["backward"]),
            "cpu_ms_per_trial": per_trial(cpu["forward"] + cpu["backward"]),
            "forward_cpu_ms_per_trial": per_trial(cpu["forward"]),
            "backward_cpu_ms_per_trial": per_trial(cpu["backward"]),
            "hidden_spikes_per_trial": len(record.time) / n, "input_spikes_per_trial": len(record.inputs.time) / n,
            "events_in_trial_0": events_in_trial(record),
            "_record": record, "_grad": result}


def fastest(a: dict, b: dict) -> dict:
    """`a` with each of its per-trial times (``*ms_per_trial``) the least of a's and b's, forward and
    backward separately, their sum the total where there are both (as :func:`measure` does over its
    repeats)."""
    out = {k: (min(v, b[k]) if k.endswith("ms_per_trial") and v is not None else v) for k, v in a.items()}
    for pre in ("", "cpu_"):
        fwd, bwd = out[f"forward_{pre}ms_per_trial"], out[f"backward_{pre}ms_per_trial"]
        if fwd is not None and bwd is not None:
            out[f"{pre}ms_per_trial"] = fwd + bwd
    return out


def measured(engine: str, net: Network) -> bool:
    """False for layered_unfused on a recurrent network (the fused path is feedforward only, so layered
    already runs the unfused path there)."""
    return engine != "layered_unfused" or net.is_feedforward()


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # Linux: KiB


def agreement(a: dict, b: dict) -> dict:
    """How far engine b's spikes and gradients are from engine a's in the same measurement."""
    ra, rb = a["_record"], b["_record"]
    key = (lambda r: np.lexsort((r.time, r.neuron, r.trial)))
    oa, ob = key(ra), key(rb)
    same = len(ra.time) == len(rb.time) and np.array_equal(ra.neuron[oa], rb.neuron[ob])
    ga, gb = a["_grad"], b["_grad"]
    rel = (lambda x, y: float(np.max(np.abs(x - y)) / max(np.max(np.abs(x)), 1e-300)))
    return {"identical_spike_counts": bool(same),
            "max_spike_time_difference_s": float(np.max(np.abs(ra.time[oa] - rb.time[ob]), initial=0.0))
            if same else None,
            "max_relative_difference_weight_gradient": rel(ga.weight, gb.weight),
            "max_relative_difference_delay_gradient": rel(ga.delay, gb.delay)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="batch 4, smaller sweeps (about a minute)")
    parser.add_argument("--engine", choices=["events", "layered", "layered_unfused", "both"], default="both",
                        help="engine(s) to measure (default both: layered, layered_unfused and events, "
                             "in the same run)")
    parser.add_argument("--json", type=writable_path, default=default_json_path("gradient"), help="output JSON path")
    parser.add_argument("--batch", type=int, help="trials per batch for the main measurements (default 64, quick 4)")
    parser.add_argument("--sweep-batch", type=int, help="trials per batch in the sweeps (default 8, quick 2)")
    parser.add_argument("--threads", type=int, default=default_threads(), help="worker threads (default: all cores)")
    parser.add_argument("--repeats", type=int, help="timed runs per measurement, the fastest counts (default 2, quick 1)")
    parser.add_argument("--skip-recurrent", action="store_true", help="leave out the recurrent network")
    parser.add_argument("--ff-only", action="store_true",
                        help="only the feedforward network and the max-delay sweep (no 2-layer, recurrent, "
                             "input-spike cases)")
    parser.add_argument("--only-recurrent", action="store_true",
                        help="measure the recurrent network only (no feedforward networks, no sweeps)")
    args = parser.parse_args(argv)
    batch = args.batch or (4 if args.quick else 64)
    sweep_batch = args.sweep_batch or (2 if args.quick else 8)
    repeats = args.repeats or (1 if args.quick else 2)
    engines = ["layered", "layered_unfused", "events"] if args.engine == "both" else [args.engine]
    delays = (0.025, 0.15, 0.5, 1.0)
    spike_counts = (2000, 8000) if args.quick else (2000, 4000, 8000, 16000)
    load_before = os.getloadavg()

    # warm-up: compile (or load from the cache) every kernel on a small problem, outside the timings
    warm_inputs, warm_labels = random_inputs(2, 500, seed=99)
    for engine in engines:
        for recurrent in (False, True):
            small = build_network(0.15, recurrent)
            if engine in LAYERED and layered.supports(small) is not None or not measured(engine, small):
                continue
            measure(small, warm_inputs, warm_labels, 0.3, 1, 1, engine)

    rows, checks = [], {}
    by_engine: dict = {e: {} for e in engines}

    def run(case, net, inputs, labels, duration, n_batch, max_delay_ms, store=None):
        """Measure `net` on every selected engine that supports it, the engines taking turns, repeat
        after repeat; returns {engine: result} (times: the least of the repeats; peak RSS growth: during
        the engine's first run)."""
        out = {}
        chosen = [e for e in engines
                  if not (e in LAYERED and layered.supports(net) is not None) and measured(e, net)]
        for _ in range(repeats):
            for engine in chosen:
                rss0 = peak_rss_mib()
                r = measure(net, inputs, labels, duration, args.threads, 1, engine)
                if engine not in out:
                    r["peak_rss_growth_mib"] = peak_rss_mib() - rss0
                    out[engine] = r
                else:
                    out[engine] = fastest(out[engine], r)
        for engine, r in out.items():
            rows.append({"case": case, "max_delay_ms": max_delay_ms, "batch": n_batch,
                         **{k: v for k, v in r.items() if not k.startswith("_")}})
        label = f"{case}, {max_delay_ms} ms" + (f", {store[1]}" if store and store[0] == "by_input_spikes" else "")
        for engine in LAYERED:
            if engine in out and "events" in out:
                checks.setdefault(label, {})[engine] = agreement(out["events"], out[engine])
        if store is not None:
            for engine, r in out.items():
                by_engine[engine].setdefault(store[0], {})[store[1]] = {
                    "ms_per_trial": r["ms_per_trial"], "cpu_ms_per_trial": r["cpu_ms_per_trial"]}
        return out

    inputs, labels = random_inputs(batch, 8000, seed=2)
    duration = INPUT_WINDOW + 0.15
    ff = two = {}
    if not args.only_recurrent:
        ff = run("feedforward", build_network(0.15, False), inputs, labels, duration, batch, 150, ("main", "ff"))
        two = {} if args.ff_only else run("2 hidden layers", build_network(0.15, False, hidden_layers=2), inputs,
                                          labels, duration, batch, 150, ("main", "ff2"))
    rec = {} if args.skip_recurrent or args.ff_only else run("recurrent", build_network(0.15, True), inputs, labels,
                                                             duration, batch, 150, ("main", "rec"))

    sweep_inputs, sweep_labels = random_inputs(sweep_batch, 8000, seed=3)
    if args.only_recurrent:
        delays, spike_counts = (), ()
    for d in delays:
        ms = str(int(round(d * 1e3)))
        run("ff, max delay", build_network(d, False), sweep_inputs, sweep_labels, INPUT_WINDOW + d, sweep_batch,
            int(ms), ("by_max_delay", ms))
    for count in () if args.ff_only else spike_counts:
        sp_inputs, sp_labels = random_inputs(sweep_batch, count, seed=4)
        run("ff, input spikes", build_network(0.15, False), sp_inputs, sp_labels, duration, sweep_batch, 150,
            ("by_input_spikes", str(count)))

    columns = ["case", "engine", "max_delay_ms", "batch", "input_spikes_per_trial", "hidden_spikes_per_trial",
               "events_in_trial_0", "ms_per_trial", "forward_ms_per_trial", "backward_ms_per_trial",
               "cpu_ms_per_trial", "forward_cpu_ms_per_trial", "backward_cpu_ms_per_trial", "peak_rss_growth_mib"]
    print_table(rows, columns)

    def auto(case_results):
        """The result of the engine `auto` would choose among those measured."""
        return (case_results.get("layered") or case_results.get("layered_unfused") or case_results.get("events")
                or {})

    def auto_sweep(name, field):
        main_engine = next(e for e in ("layered", "layered_unfused", "events") if e in by_engine)
        return {k: v[field] for k, v in by_engine[main_engine].get(name, {}).items()}

    def ratio(a, b, field):
        return a[field] / b[field] if a.get(field) is not None and b.get(field) is not None else None

    speedup = {}
    if "events" in engines and any(e in engines for e in LAYERED):
        for name, case in (("ff", ff), ("ff2", two), ("rec", rec)):
            if "events" not in case:
                continue
            lay = auto(case)
            unf = case.get("layered_unfused", {})
            speedup[name] = {"wall": ratio(case["events"], lay, "ms_per_trial"),
                             "cpu": ratio(case["events"], lay, "cpu_ms_per_trial"),
                             "forward_cpu": ratio(case["events"], lay, "forward_cpu_ms_per_trial"),
                             "backward_cpu": ratio(case["events"], lay, "backward_cpu_ms_per_trial"),
                             "unfused_wall": ratio(case["events"], unf, "ms_per_trial"),
                             "unfused_cpu": ratio(case["events"], unf, "cpu_ms_per_trial"),
                             "unfused_forward_cpu": ratio(case["events"], unf, "forward_cpu_ms_per_trial"),
                             "unfused_backward_cpu": ratio(case["events"], unf, "backward_cpu_ms_per_trial")}
        main_engine = next(e for e in LAYERED if e in by_engine)
        sweep = by_engine[main_engine].get("by_max_delay", {})
        speedup["by_max_delay_cpu"] = {
            k: by_engine["events"]["by_max_delay"][k]["cpu_ms_per_trial"] / sweep[k]["cpu_ms_per_trial"] for k in sweep}
    if "layered" in ff and "layered_unfused" in ff:
        speedup["fused_over_unfused_ff"] = {"wall": ratio(ff["layered_unfused"], ff["layered"], "ms_per_trial"),
                                            "cpu": ratio(ff["layered_unfused"], ff["layered"], "cpu_ms_per_trial")}
    result = {
        "ms_per_trial_ff": auto(ff).get("ms_per_trial"),
        "ms_per_trial_ff2": auto(two).get("ms_per_trial"),
        "ms_per_trial_rec": auto(rec)["ms_per_trial"] if rec else None,
        "cpu_ms_per_trial_ff": auto(ff).get("cpu_ms_per_trial"),
        "cpu_ms_per_trial_ff2": auto(two).get("cpu_ms_per_trial"),
        "cpu_ms_per_trial_rec": auto(rec)["cpu_ms_per_trial"] if rec else None,
        "ms_per_trial_ff_by_engine": {e: r["ms_per_trial"] for e, r in ff.items()},
        "cpu_ms_per_trial_ff_by_engine": {e: r["cpu_ms_per_trial"] for e, r in ff.items()},
        "ms_per_trial_ff2_by_engine": {e: r["ms_per_trial"] for e, r in two.items()},
        "ms_per_trial_rec_by_engine": {e: r["ms_per_trial"] for e, r in rec.items()},
        "cpu_ms_per_trial_rec_by_engine": {e: r["cpu_ms_per_trial"] for e, r in rec.items()},
        "speedup_layered_over_events": speedup or None,
        "peak_rss_mib": peak_rss_mib(),
        "peak_rss_growth_ff_mib": {e: r["peak_rss_growth_mib"] for e, r in ff.items()},
        "ms_per_trial_by_max_delay": auto_sweep("by_max_delay", "ms_per_trial"),
        "cpu_ms_per_trial_by_max_delay": auto_sweep("by_max_delay", "cpu_ms_per_trial"),
        "ms_per_trial_by_input_spikes": auto_sweep("by_input_spikes", "ms_per_trial"),
        "cpu_ms_per_trial_by_input_spikes": auto_sweep("by_input_spikes", "cpu_ms_per_trial"),
        "by_engine": by_engine,
        "agreement_layered_vs_events": checks,
        "rows": rows,
        "settings": {"batch": batch, "sweep_batch": sweep_batch, "threads": args.threads, "repeats": repeats,
                     "quick": args.quick, "only_recurrent": args.only_recurrent, "engines": engines,
                     "duration_s": "1 s + max_delay",
                     "params": "weights and synaptic delays of every projection",
                     "loss": "WeightedIntegralCrossEntropy(tau_weight=0.5 s)",
                     "event_log_bytes_per_event": LOG_BYTES_PER_EVENT},
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "versions": {"neurodelay": neurodelay.__version__, **package_versions("numpy", "numba")},
    }
    growth = ", ".join(f"{e} {g:.0f}" for e, g in result["peak_rss_growth_ff_mib"].items())
    print(f"peak RSS {result['peak_rss_mib']:.0f} MiB (growth during the feedforward batch, MiB: {growth}); "
          f"load average before/after {load_before[0]:.1f}/{result['load_average']['after'][0]:.1f}")
    for name, what in (("ff", "feedforward"), ("rec", "recurrent")):
        if name in speedup:
            print(f"speedup layered over events ({what}): " + ", ".join(
                f"{k} {v:.2f}x" for k, v in speedup[name].items() if v is not None))
    if "fused_over_unfused_ff" in speedup:
        print("fused over unfused layered (feedforward): wall {wall:.2f}x, CPU {cpu:.2f}x".format(
            **speedup["fused_over_unfused_ff"]))
    for case, c in checks.items():
        print(f"agreement {case}: {c}")
    path = write_json_atomic(args.json, result)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
