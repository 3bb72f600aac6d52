"""GPU benchmark: forward + EventProp reverse pass of the ``"cuda"`` engine at SHD scale, against the CPU.

The networks of ``bench/gradient.py`` (700 -> 256 -> 20 and 700 -> 256 -> 256 -> 20, synaptic delays
uniform on [0, 150 ms], 8000 random input spikes per trial in 1 s, duration 1.15 s; loss: the
weighted-integral cross-entropy of the readouts) run on the GPU engine (:mod:`neurodelay.layered.gpu`:
simulate, the loss on the host, adjoint) for batches of growing size, and on the CPU layered engine
(fused path, every core of the machine) at the smallest batch, in the same run. Printed and written
as JSON: ms per trial (wall; the GPU figures after a warm-up that compiles the kernels; the faster of two
runs), the time in each kernel (a third run with every launch synchronised), the time in each phase (simulate,
loss, adjoint: a fourth run), the GPU/CPU ratio, the implied SHD epoch (8156 trials), and the agreement of the two engines (identical spike
counts, largest spike-time difference, largest gradient difference relative to the largest entry).
Needs a CUDA GPU (numba.cuda); exits 2 with one line otherwise.

usage: python bench/gpu_gradient.py [--quick] [--batches 64,256] [--per-neuron-reverse] [--json PATH]

``--per-neuron-reverse``: LIF layers' reverse pass by one thread per (trial, neuron) (``gpu.SPLIT_REVERSE``
off), the kernel before the split reverse pass.

Measured on an H100 (2026-11-27, ``--batches 64,256``, after the host work: grouping by a counting sort,
the split-kernel check without np.unique, the record's sort on every core, dense arrival counts): 700-256-20
6.0 / 4.1 ms per trial (an SHD epoch in 33 s; the revision before, run first in the same call: 10.5 /
6.7), 700-256-256-20 6.9 / 5.1 (41 s; before: 11.0 / 8.5); kernels 1.6 ms per trial of the 4.1. The CPU
layered engine on the 16 cores, batch 64: 10.0 and 9.8 ms per trial. Against it: spike counts identical,
spike times within 1.2e-13 s, gradients within 1.7e-9 (two hidden layers 5.9e-9) of the largest entry,
the same figures as before the change. ``--batches 1024``: 4.3 ms per trial, peak RSS 2.8 GiB.

Measured on an H100 (2026-11-27, ``--batches 64,256``, split reverse pass): 700-256-20 9.3 / 7.1 ms per
trial, an SHD epoch in 58 s (CPU, 16 cores: 17.6 at batch 64 in that run, 9.8 in a run 20 minutes
earlier), 700-256-256-20 10.1 / 8.1 (CPU 25.6, 12.4 earlier); kernels 2.2 ms per trial of the 7.1 (hidden
layer's reverse pass 0.41, was 3.5), the rest host work. The reverse kernels against each other in one
process (a scratch script, two runs each, batch 64 / 256): 700-256-20 10.4-10.7 / 9.9-10.2 ms per trial
per-neuron, 7.8-8.8 / 6.9-7.1 split; two hidden layers 13.3-13.4 / 12.4-12.5 against 11.2-11.8 / 8.2-8.4;
gradients 1.6e-15 apart. With 64 or 128 threads per neuron instead of 32: no gain (0.38-0.41 ms).

Measured on an H100 (2026-11-26, ``--batches 64,256``): 700-256-20 10.3 / 9.0 ms per trial (CPU, 16 cores:
7.8 at batch 64), 700-256-256-20 12.1 / 11.3 (CPU 11.8); peak RSS 1.8 GiB at 256. Earlier the same day, before
the O(n) input sort and the factored reverse on the GPU: 15.9 / 13.7 (CPU 11.9) and 17.9 / 16.8 (CPU 16.8).
Before, results were assembled per trial from a full reordered copy of the batch's spikes (time and
memory quadratic in the batch: 37 ms per trial, 10.6 GiB at batch 256, batch 1024 out of memory).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

_ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(os.environ.get("NEURODELAY_CACHE", _ROOT / "build" / "cache"))
                                             / "numba"))

from _common import default_json_path, package_versions, print_table, write_json_atomic, writable_path  # noqa: E402
from gradient import INPUT_WINDOW, build_network, param_keys, random_inputs  # noqa: E402

from neurodelay import gradients  # noqa: E402
from neurodelay.events.forward import default_threads  # noqa: E402
from neurodelay.layered import gpu  # noqa: E402
from neurodelay.losses import WeightedIntegralCrossEntropy  # noqa: E402

SHD_TRIALS = 8156
MAX_DELAY = 0.15


def run(net, inputs, labels, duration, engine):
    """(seconds, loss_and_grad result) of one forward + loss + backward on `engine`."""
    loss = WeightedIntegralCrossEntropy("out", tau_weight=0.5)
    t0 = time.perf_counter()
    out = gradients.loss_and_grad(net, inputs, duration, loss, labels, param_keys(net), engine=engine,
                                  n_threads=default_threads())
    return time.perf_counter() - t0, out


def phases(net, inputs, labels, duration) -> dict:
    """ms per trial of each phase of one GPU run, run one after another (simulate and adjoint synchronised):
    where the time outside the kernels goes."""
    from numba import cuda

    from neurodelay.engines import get_engine
    engine, loss, b = get_engine("cuda", net), WeightedIntegralCrossEntropy("out", tau_weight=0.5), len(labels)
    t0 = time.perf_counter()
    record = engine.simulate(net, inputs, duration)
    cuda.synchronize()
    t1 = time.perf_counter()
    _, sources = loss.value_and_sources(record, labels)
    t2 = time.perf_counter()
    engine.adjoint(record, sources)
    cuda.synchronize()
    t3 = time.perf_counter()
    return {"simulate": 1e3 * (t1 - t0) / b, "loss": 1e3 * (t2 - t1) / b, "adjoint": 1e3 * (t3 - t2) / b}


def agreement(ref, got) -> dict:
    ra, rb = ref.record, got.record
    oa, ob = np.lexsort((ra.time, ra.neuron, ra.trial)), np.lexsort((rb.time, rb.neuron, rb.trial))
    same = len(ra.time) == len(rb.time) and np.array_equal(ra.neuron[oa], rb.neuron[ob]) and np.array_equal(
        ra.trial[oa], rb.trial[ob])
    dt = float(np.max(np.abs(ra.time[oa] - rb.time[ob]), initial=0.0)) if same else None
    rel = max(float(np.max(np.abs(ref.grads[k] - got.grads[k])) / max(np.max(np.abs(ref.grads[k])), 1e-300))
              for k in ref.grads)
    return {"identical_counts": bool(same), "max_spike_time_diff_s": dt, "max_grad_rel_diff": rel}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a small network (70-32-5) and batches 4, 8")
    p.add_argument("--batches", help="comma-separated batch sizes for the GPU (default 64,256; quick 4,8)")
    p.add_argument("--per-neuron-reverse", action="store_true",
                   help="LIF layers' reverse pass by one thread per (trial, neuron) instead of the split kernel")
    p.add_argument("--json", type=writable_path, default=default_json_path("gpu_gradient"))
    a = p.parse_args(argv)
    gpu.SPLIT_REVERSE = not a.per_neuron_reverse
    reason = gpu.supports(build_network(MAX_DELAY, False, n_in=4, n_hid=4, n_out=2))
    if reason is not None:
        print(f"gpu_gradient: {reason}", file=sys.stderr)
        raise SystemExit(2)
    batches = [int(b) for b in (a.batches or ("4,8" if a.quick else "64,256")).split(",")]
    duration = INPUT_WINDOW + MAX_DELAY
    rows, out = [], {"cases": {}, "threads_cpu": default_threads(), "split_reverse": gpu.SPLIT_REVERSE,
                     "package_versions": package_versions()}
    from numba import cuda
    name = cuda.get_current_device().name if hasattr(cuda, "get_current_device") else "numba's CUDA simulator"
    out["gpu"] = name.decode() if isinstance(name, bytes) else str(name)
    size = dict(n_in=70, n_hid=32, n_out=5) if a.quick else {}
    spikes = 8000
    for layers in (1, 2):
        net = build_network(MAX_DELAY, False, hidden_layers=layers, **size)
        n_in, n_hid, n_out = (size.get(k, d) for k, d in (("n_in", 700), ("n_hid", 256), ("n_out", 20)))
        label = "-".join(str(x) for x in (n_in, *([n_hid] * layers), n_out))
        warm_in, warm_lab = random_inputs(2, 500, seed=99, n_in=n_in, n_classes=n_out)
        run(net, warm_in, warm_lab, duration, "cuda")           # compiles the kernels
        run(net, warm_in, warm_lab, duration, "layered")
        case = {}
        for b in batches:
            inputs, labels = random_inputs(b, spikes, seed=1, n_in=n_in, n_classes=n_out)
            t_gpu, got = run(net, inputs, labels, duration, "cuda")
            t_gpu2, _ = run(net, inputs, labels, duration, "cuda")
            t_gpu = min(t_gpu, t_gpu2)
            gpu.kernel_seconds(True)                       # a third run, each launch synchronised and timed
            run(net, inputs, labels, duration, "cuda")
            kernels = gpu.kernel_seconds(False)
            phase = phases(net, inputs, labels, duration)         # a fourth run, phase by phase
            entry = {"batch": b, "gpu_ms_per_trial": 1e3 * t_gpu / b,
                     "hidden_spikes_per_trial": len(got.record.time) / b,
                     "shd_epoch_s_gpu": SHD_TRIALS * t_gpu / b,
                     "kernel_ms_per_trial": {k: 1e3 * v / b for k, v in kernels.items()},
                     "phase_ms_per_trial": phase}
            if b == batches[0]:
                t_cpu, ref = run(net, inputs, labels, duration, "layered")
                entry.update(cpu_ms_per_trial=1e3 * t_cpu / b, cpu_over_gpu=t_cpu / t_gpu, **agreement(ref, got))
            case[str(b)] = entry
            print(f"{label} batch {b}: GPU {entry['gpu_ms_per_trial']:.2f} ms/trial; CPU "
                  f"{entry.get('cpu_ms_per_trial', float('nan')):.1f} ms/trial; kernels (ms/trial, synchronised run) "
                  f"{ {k: round(v, 2) for k, v in entry['kernel_ms_per_trial'].items()} }; phases (ms/trial) "
                  f"{ {k: round(v, 2) for k, v in phase.items()} }; peak RSS "
                  f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB", flush=True)
            rows.append({"network": label, "batch": b, "GPU ms/trial": entry["gpu_ms_per_trial"],
                         "CPU ms/trial": entry.get("cpu_ms_per_trial"), "CPU/GPU": entry.get("cpu_over_gpu"),
                         "SHD epoch GPU (s)": entry["shd_epoch_s_gpu"], "same counts": entry.get("identical_counts"),
                         "max dt (s)": entry.get("max_spike_time_diff_s"),
                         "max grad rel": entry.get("max_grad_rel_diff")})
        out["cases"][label] = case
    print_table(rows)
    print(f"CPU: layered engine, {default_threads()} threads; GPU: {out['gpu']}")
    write_json_atomic(a.json, out)
    print(f"wrote {a.json}")
    return out


if __name__ == "__main__":
    main()
