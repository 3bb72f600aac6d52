"""Gradient benchmark: forward + EventProp reverse pass of the exact event engine at SHD scale.

Network of the size of the SHD experiments: 700 input channels with about
8000 input spikes per 1 s trial (uniform random times and channels), 256
hidden LIF neurons (tau_m 20 ms, tau_s 5 ms, 1 ms refractory) with synaptic
delays uniform on [0, max_delay] on every projection, 20 leaky-integrator
readouts, exponentially weighted voltage-integral cross-entropy; gradients of
all weights and synaptic delays. Feedforward, and with a recurrent
all-to-all hidden layer. Each trial is simulated on [0, 1 s + max_delay] so
that every arrival counts whatever the maximum delay.

Measured per trial (batch run on the default worker threads, divided by the
batch size): wall time, fastest of --repeats runs, and the process's CPU time
(user + system, all threads), which the load of other processes on a shared
machine inflates much less than the wall time:

* forward (``simulate``) and backward (loss + adjoint through
  ``loss_and_grad(record=...)``) separately; forward + backward is their sum.
  Feedforward and recurrent.
* peak resident set size of the process (getrusage), and its growth during the
  feedforward batch; the adjoint's event log takes 24 bytes per event (arrival,
  spike or end of refractoriness) for each trial in flight;
* ms per trial against the maximum delay (25, 150, 500 ms) and against the
  number of input spikes per trial.

usage: python bench/gradient.py [--quick] [--json PATH] [--batch B] [--threads T] [--repeats R]
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
                     write_json_atomic)

import neurodelay  # noqa: E402
from neurodelay.delays import Delays  # noqa: E402
from neurodelay.events import simulate  # noqa: E402
from neurodelay.events.forward import default_threads  # noqa: E402
from neurodelay.gradients import loss_and_grad  # noqa: E402
from neurodelay.losses import WeightedIntegralCrossEntropy  # noqa: E402
from neurodelay.network import LIF, Network, Readout, SpikeSource  # noqa: E402
from neurodelay.spikes import SpikeTrains  # noqa: E402

N_IN, N_HID, N_OUT = 700, 256, 20
INPUT_WINDOW = 1.0   # s: input spikes fall in [0, 1 s)
LOG_BYTES_PER_EVENT = 24


def build_network(max_delay: float, recurrent: bool, seed: int = 1, n_in: int = N_IN, n_hid: int = N_HID,
                  n_out: int = N_OUT) -> Network:
    """The SHD-sized network (smaller with n_in / n_hid / n_out); synaptic delays uniform on [0, max_delay] s."""
    rng = np.random.default_rng(seed)
    net = Network().add(SpikeSource("inp", n_in),
                        LIF("hid", n_hid, tau_m=20e-3, tau_s=5e-3, refractory=1e-3),
                        Readout("out", n_out, tau_m=20e-3, tau_s=5e-3))

    def delays(n):
        return Delays(synaptic=rng.uniform(0.0, max_delay, n))

    net = net.connect("inp", "hid", rng.normal(0.03, 0.08, n_in * n_hid), delays=delays(n_in * n_hid))
    if recurrent:
        net = net.connect("hid", "hid", rng.normal(-0.01, 0.05, n_hid * n_hid), delays=delays(n_hid * n_hid))
    return net.connect("hid", "out", rng.normal(0.0, 0.3, n_hid * n_out), delays=delays(n_hid * n_out))


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


def measure(net: Network, inputs: SpikeTrains, labels, duration: float, threads: int, repeats: int) -> dict:
    """Per-trial cost of the forward pass (simulate) and the backward pass (loss + adjoint for all
    weights and synaptic delays): wall ms (fastest of `repeats`) and process CPU ms (least of `repeats`)."""
    loss = WeightedIntegralCrossEntropy("out", tau_weight=0.5)
    n = inputs.n_trials
    wall = {"forward": np.inf, "backward": np.inf}
    cpu = dict(wall)
    for _ in range(repeats):
        c0 = cpu_seconds()
        with stopwatch() as fwd:
            record = simulate(net, inputs, duration, n_threads=threads)
        c1 = cpu_seconds()
        with stopwatch() as bwd:
            result = loss_and_grad(net, None, None, loss, labels, param_keys(net), record=record, n_threads=threads)
        c2 = cpu_seconds()
        wall = {"forward": min(wall["forward"], fwd()), "backward": min(wall["backward"], bwd())}
        cpu = {"forward": min(cpu["forward"], c1 - c0), "backward": min(cpu["backward"], c2 - c1)}
    assert np.isfinite(result.loss)
    per_trial = (lambda x: 1e3 * x / n)
    return {"ms_per_trial": per_trial(wall["forward"] + wall["backward"]),
            "forward_ms_per_trial": per_trial(wall["forward"]), "backward_ms_per_trial": per_trial(wall["backward"]),
            "cpu_ms_per_trial": per_trial(cpu["forward"] + cpu["backward"]),
            "forward_cpu_ms_per_trial": per_trial(cpu["forward"]),
            "backward_cpu_ms_per_trial": per_trial(cpu["backward"]),
            "hidden_spikes_per_trial": len(record.time) / n, "input_spikes_per_trial": len(record.inputs.time) / n,
            "events_in_trial_0": events_in_trial(record)}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # Linux: KiB


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="batch 4, smaller sweeps (about a minute)")
    parser.add_argument("--json", type=Path, default=default_json_path("gradient"), help="output JSON path")
    parser.add_argument("--batch", type=int, help="trials per batch for the main measurements (default 64, quick 4)")
    parser.add_argument("--sweep-batch", type=int, help="trials per batch in the sweeps (default 8, quick 2)")
    parser.add_argument("--threads", type=int, default=default_threads(), help="worker threads (default: all cores)")
    parser.add_argument("--repeats", type=int, help="timed runs per measurement, the fastest counts (default 2, quick 1)")
    args = parser.parse_args(argv)
    batch = args.batch or (4 if args.quick else 64)
    sweep_batch = args.sweep_batch or (2 if args.quick else 8)
    repeats = args.repeats or (1 if args.quick else 2)
    delays = (0.025, 0.15, 0.5)
    spike_counts = (2000, 8000) if args.quick else (2000, 4000, 8000, 16000)
    load_before = os.getloadavg()

    # warm-up: compile (or load from the cache) every kernel on a small problem, outside the timings
    small = build_network(0.15, True)
    warm_inputs, warm_labels = random_inputs(2, 500, seed=99)
    loss_and_grad(small, warm_inputs, 0.3, WeightedIntegralCrossEntropy("out", tau_weight=0.5), warm_labels,
                  param_keys(small) + [("hid", "tau_m")], n_threads=1)
    rss_before = peak_rss_mib()

    rows = []
    inputs, labels = random_inputs(batch, 8000, seed=2)
    duration = INPUT_WINDOW + 0.15
    ff = measure(build_network(0.15, False), inputs, labels, duration, args.threads, repeats)
    rss_ff = peak_rss_mib()
    rows.append({"case": "feedforward", "max_delay_ms": 150, "batch": batch, **ff})
    rec = measure(build_network(0.15, True), inputs, labels, duration, args.threads, repeats)
    rows.append({"case": "recurrent", "max_delay_ms": 150, "batch": batch, **rec})

    sweep_inputs, sweep_labels = random_inputs(sweep_batch, 8000, seed=3)
    by_delay, cpu_by_delay = {}, {}
    for d in delays:
        r = measure(build_network(d, False), sweep_inputs, sweep_labels, INPUT_WINDOW + d, args.threads, repeats)
        by_delay[str(int(round(d * 1e3)))] = r["ms_per_trial"]
        cpu_by_delay[str(int(round(d * 1e3)))] = r["cpu_ms_per_trial"]
        rows.append({"case": "ff, max delay", "max_delay_ms": int(round(d * 1e3)), "batch": sweep_batch, **r})
    by_spikes, cpu_by_spikes = {}, {}
    for count in spike_counts:
        sp_inputs, sp_labels = random_inputs(sweep_batch, count, seed=4)
        r = measure(build_network(0.15, False), sp_inputs, sp_labels, duration, args.threads, repeats)
        by_spikes[str(count)] = r["ms_per_trial"]
        cpu_by_spikes[str(count)] = r["cpu_ms_per_trial"]
        rows.append({"case": "ff, input spikes", "max_delay_ms": 150, "batch": sweep_batch, **r})

    columns = ["case", "max_delay_ms", "batch", "input_spikes_per_trial", "hidden_spikes_per_trial",
               "events_in_trial_0", "ms_per_trial", "forward_ms_per_trial", "backward_ms_per_trial",
               "cpu_ms_per_trial", "forward_cpu_ms_per_trial", "backward_cpu_ms_per_trial"]
    print_table(rows, columns)
    result = {
        "ms_per_trial_ff": ff["ms_per_trial"],
        "ms_per_trial_rec": rec["ms_per_trial"],
        "peak_rss_mib": peak_rss_mib(),
        "peak_rss_growth_ff_mib": rss_ff - rss_before,
        "cpu_ms_per_trial_ff": ff["cpu_ms_per_trial"],
        "cpu_ms_per_trial_rec": rec["cpu_ms_per_trial"],
        "ms_per_trial_by_max_delay": by_delay,
        "ms_per_trial_by_input_spikes": by_spikes,
        "cpu_ms_per_trial_by_max_delay": cpu_by_delay,
        "cpu_ms_per_trial_by_input_spikes": cpu_by_spikes,
        "rows": rows,
        "settings": {"batch": batch, "sweep_batch": sweep_batch, "threads": args.threads, "repeats": repeats,
                     "quick": args.quick, "duration_s": "1 s + max_delay",
                     "params": "weights and synaptic delays of every projection",
                     "loss": "WeightedIntegralCrossEntropy(tau_weight=0.5 s)",
                     "event_log_bytes_per_event": LOG_BYTES_PER_EVENT},
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "versions": {"neurodelay": neurodelay.__version__, **package_versions("numpy", "numba")},
    }
    print(f"peak RSS {result['peak_rss_mib']:.0f} MiB (grew by {result['peak_rss_growth_ff_mib']:.0f} MiB "
          f"during the feedforward batch); load average before/after {load_before[0]:.1f}/"
          f"{result['load_average']['after'][0]:.1f}")
    path = write_json_atomic(args.json, result)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
