"""How far the layered engine's spikes and gradients are from the event engine's, against how far the
event engine's own gradients move when the input spike times move by one rounding step.

At SHD size (700 -> 256 [-> 256] -> 20, synaptic delays uniform on [0, 150 ms], ~8000 random input
spikes per 1 s trial, the loss of bench/gradient.py) and for each input seed, in one run:

* ``events``: the reference (the general event engine);
* ``events, inputs +1 ulp`` / ``-1 ulp``: the same engine on the input times moved to the next larger
  / smaller float64 (``numpy.nextafter``): the gradient's sensitivity to a perturbation of the size of
  one rounding of the inputs, i.e. the differences any exact engine that rounds differently can show;
* ``layered``: the default layered engine (factored exponentials over time bins,
  :data:`neurodelay.layered.plan.FACTORED_FORWARD`), and ``layered, direct`` with the factored
  forward off (the event engine's arithmetic per neuron).

Printed as a table and written as JSON: identical spike counts, the largest spike-time difference (s),
and the largest gradient difference relative to the gradient's largest entry, for the weights and the
delays.

usage: python bench/exactness.py [--quick] [--seeds 1,2,3] [--batch 16] [--layers 1,2 | --recurrent] [--json PATH]

``--quick``: a 70 -> 32 -> 5 network, batch 4, one seed (seconds). ``--recurrent``: the network with a
recurrent hidden layer (700 -> 256 recurrent -> 20, as bench/gradient.py's) instead, whose recurrent
group adds blocks of input arrivals at once (:data:`neurodelay.layered.recurrent.BLOCK_ARRIVALS`) only
with the factored forward on.

Measured 2026-11-26 (defaults, 2 cores at load 2-4, 17 min): identical spike counts everywhere; spike
times within 2.0e-14 s (direct: bit for bit); largest delay-gradient difference, seeds 1 / 2 / 3:

=====================  ==========================  ==========================
variant                700-256-20                  700-256-256-20
=====================  ==========================  ==========================
events, inputs +-1 ulp 2.0e-10 / 4.4e-10 / 4.2e-11  4.5e-10 / 2.4e-10 / 5.5e-11
layered                4.8e-10 / 1.8e-10 / 1.0e-10  1.1e-09 / 9.6e-11 / 1.3e-10
layered, direct        3.4e-14 / 1.5e-14 / 4.1e-14  5.3e-14 / 8.9e-15 / 2.1e-14
=====================  ==========================  ==========================

(weight gradients: 3.5-16x smaller differences throughout). The factored forward's differences are at most 2.5x the gradients'
own movement under a one-ulp change of the inputs; one case of six is above 1e-9.

``--recurrent --seeds 1,2`` (2026-11-27, 2 cores, beside the test suite, 15 min): identical spike counts;
spike times within 1.2e-14 s (direct: bit for bit); largest delay-gradient difference, seeds 1 / 2:
events +-1 ulp 2.8e-11 / 4.9e-11 (the larger of the two), layered (blocks of input arrivals) 5.2e-12 /
4.7e-11, direct 1.7e-14 / 1.7e-14.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import default_json_path, package_versions, print_table, write_json_atomic, writable_path  # noqa: E402
from gradient import INPUT_WINDOW, N_HID, N_IN, N_OUT, agreement, build_network, random_inputs  # noqa: E402

from neurodelay import events, layered  # noqa: E402
from neurodelay.layered import plan  # noqa: E402
from neurodelay.losses import WeightedIntegralCrossEntropy  # noqa: E402
from neurodelay.spikes import SpikeTrains  # noqa: E402

MAX_DELAY = 0.15   # s, as bench/gradient.py


def gradients(engine, net, inputs: SpikeTrains, labels, threads: int):
    """(record, adjoint result) of one forward + loss + backward on `engine` (a module)."""
    loss = WeightedIntegralCrossEntropy("out", tau_weight=0.5)
    record = engine.simulate(net, inputs, INPUT_WINDOW + MAX_DELAY, n_threads=threads)
    _, sources = loss.value_and_sources(record, labels)
    return record, engine.adjoint(record, sources, n_threads=threads)


def nudged(inputs: SpikeTrains, direction: float) -> SpikeTrains:
    """The inputs with every spike time moved to the adjacent float64 towards `direction` (+-inf)."""
    return SpikeTrains(inputs.trial, inputs.neuron, np.nextafter(inputs.time, direction), inputs.n_trials,
                       inputs.n_neurons)


def difference(ref, other) -> dict:
    """:func:`gradient.agreement` of two (record, adjoint result) pairs: spike counts, largest spike-time
    difference (s), gradient differences relative to `ref`'s largest entry."""
    return agreement(*({"_record": record, "_grad": result} for record, result in (ref, other)))


def compare(net, inputs, labels, threads: int) -> dict:
    """Every variant of the module docstring against the event engine on (inputs, labels)."""
    ref = gradients(events, net, inputs, labels, threads)
    out = {"events, inputs +1 ulp": difference(ref, gradients(events, net, nudged(inputs, np.inf), labels, threads)),
           "events, inputs -1 ulp": difference(ref, gradients(events, net, nudged(inputs, -np.inf), labels, threads))}
    saved = plan.FACTORED_FORWARD
    try:
        for name, factored in (("layered", True), ("layered, direct", False)):
            plan.FACTORED_FORWARD = factored
            out[name] = difference(ref, gradients(layered, net, inputs, labels, threads))
    finally:
        plan.FACTORED_FORWARD = saved
    out["hidden_spikes_per_trial"] = len(ref[0].time) / inputs.n_trials
    if not (np.max(np.abs(ref[1].weight)) > 0 and np.max(np.abs(ref[1].delay)) > 0):
        raise SystemExit("the reference gradient is zero (silent layers?): nothing to compare")
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 70 -> 32 -> 5 network, batch 4, one seed")
    parser.add_argument("--seeds", default=None, help="comma-separated input seeds (default 1,2,3; quick 1)")
    parser.add_argument("--batch", type=int, default=None, help="trials per seed (default 16; quick 4)")
    parser.add_argument("--layers", help="hidden layers of the networks compared (default 1,2; quick 1: the "
                        "small network's second layer stays silent)")
    parser.add_argument("--recurrent", action="store_true",
                        help="the network with a recurrent hidden layer instead of the feedforward ones")
    parser.add_argument("--threads", type=int, default=2, help="worker threads (default 2)")
    parser.add_argument("--json", type=writable_path, default=default_json_path("exactness"), help="output JSON path")
    args = parser.parse_args(argv)
    try:
        seeds = [int(s) for s in (args.seeds or ("1" if args.quick else "1,2,3")).split(",")]
        layers = [int(n) for n in (args.layers or ("1" if args.quick else "1,2")).split(",")]
    except ValueError:
        parser.error(f"--seeds and --layers take comma-separated integers, got {args.seeds!r}, {args.layers!r}")
    if any(n not in (1, 2) for n in layers):
        parser.error(f"--layers takes 1 and/or 2 hidden layers, got {args.layers!r}")
    if args.recurrent and args.layers:
        parser.error("--recurrent and --layers exclude each other")
    batch = args.batch or (4 if args.quick else 16)
    if batch < 1:
        parser.error(f"--batch must be >= 1, got {batch}")
    size = dict(n_in=70, n_hid=32, n_out=5) if args.quick else dict(n_in=N_IN, n_hid=N_HID, n_out=N_OUT)
    spikes = 8000   # per trial: the quick network gets as much input as the SHD-size one
    results, rows = {}, []
    start = time.perf_counter()
    if args.recurrent:
        nets = [(f"{size['n_in']}-{size['n_hid']}r-{size['n_out']}", build_network(MAX_DELAY, True, **size))]
    else:
        nets = [("-".join(str(n) for n in (size["n_in"], *[size["n_hid"]] * n_layers, size["n_out"])),
                 build_network(MAX_DELAY, False, hidden_layers=n_layers, **size)) for n_layers in layers]
    for case, net in nets:
        for seed in seeds:
            inputs, labels = random_inputs(batch, spikes, seed, n_in=size["n_in"], n_classes=size["n_out"])
            found = compare(net, inputs, labels, args.threads)
            results.setdefault(case, {})[str(seed)] = found
            for variant, d in found.items():
                if isinstance(d, dict):
                    rows.append({"network": case, "seed": seed, "hidden spikes/trial": found["hidden_spikes_per_trial"],
                                 "variant": variant,
                                 "same counts": d["identical_spike_counts"],
                                 "max dt (s)": d["max_spike_time_difference_s"],
                                 "weight grad": d["max_relative_difference_weight_gradient"],
                                 "delay grad": d["max_relative_difference_delay_gradient"]})
    print_table(rows)
    out = {"batch": batch, "seeds": seeds, "max_delay_s": MAX_DELAY, "recurrent": args.recurrent, "cases": results,
           "seconds": time.perf_counter() - start, "package_versions": package_versions("numpy", "numba"),
           "units": {"max_spike_time_difference_s": "s",
                     "max_relative_difference_weight_gradient": "max |difference| / max |reference entry|",
                     "max_relative_difference_delay_gradient": "max |difference| / max |reference entry|"}}
    write_json_atomic(args.json, out)
    print(f"written {args.json}")
    return out


if __name__ == "__main__":
    main()
