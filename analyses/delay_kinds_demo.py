"""Delay kinds demo: a small network with axonal, dendritic and synaptic delays.

6 input neurons -> 4 LIF hidden neurons -> 2 LIF output neurons, every
projection with all three delay kinds (fixed seed). The network is simulated
once with the exact event engine; every spike and every arrival (spike time +
transmission delay, split into its axonal / synaptic / dendritic parts) is
stored. Then one delay of each kind is swept over [0, 10] ms while the first
spike time of output neuron 0 is recorded (NaN when it does not spike):

* axonal:    the axonal delay of the hidden neuron that drives output 0 first
             (hidden -> output projection);
* dendritic: the dendritic delay of output 0 (hidden -> output projection);
* synaptic:  the synaptic delay of the synapse from the hidden neuron that
             drives output 0 second.

Result: analyses/results/delay_kinds_demo.nc (read by paper_figures/fig_delay_kinds.py).
Usage: python analyses/delay_kinds_demo.py [--out PATH] [--quick] [--seed N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

from neurodelay.delays import DELAY_KINDS, Delays
from neurodelay import simulate
from neurodelay.io import record_to_dataset, write_netcdf
from neurodelay.network import LIF, Network, SpikeSource
from neurodelay.spikes import SpikeTrains

RESULT = "delay_kinds_demo.nc"
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / RESULT

SEED = 3
N_INPUT, N_HIDDEN, N_OUTPUT = 6, 4, 2
DURATION = 0.08           # s
SWEEP_RANGE = (0.0, 10e-3)  # s
SHOWN_OUTPUT = 0          # the output neuron whose first spike time is swept
TAU_M, TAU_S = 10e-3, 5e-3


def build_network(seed: int) -> Network:
    """The demo network (all three delay kinds in both projections; delays 0.5-6 ms)."""
    rng = np.random.default_rng(seed)
    net = Network().add(SpikeSource("inputs", N_INPUT),
                        LIF("hidden", N_HIDDEN, tau_m=TAU_M, tau_s=TAU_S),
                        LIF("output", N_OUTPUT, tau_m=TAU_M, tau_s=TAU_S))

    def delays(n_pre, n_post):
        return Delays(axonal=rng.uniform(0.5e-3, 3e-3, n_pre),
                      dendritic=rng.uniform(0.5e-3, 3e-3, n_post),
                      synaptic=rng.uniform(0.5e-3, 3e-3, n_pre * n_post))

    net = net.connect("inputs", "hidden", rng.uniform(0.6, 1.8, N_INPUT * N_HIDDEN),
                      delays=delays(N_INPUT, N_HIDDEN))
    return net.connect("hidden", "output", rng.uniform(0.8, 1.6, N_HIDDEN * N_OUTPUT),
                       delays=delays(N_HIDDEN, N_OUTPUT))


def make_inputs(seed: int) -> SpikeTrains:
    """One trial: each input neuron fires once in [2, 20] ms (s)."""
    rng = np.random.default_rng([seed, 1])
    return SpikeTrains(np.zeros(N_INPUT, np.int64), np.arange(N_INPUT), np.sort(rng.uniform(2e-3, 20e-3, N_INPUT)),
                       1, N_INPUT)


def first_spike(net: Network, inputs: SpikeTrains, duration: float = DURATION) -> float:
    """First spike time (s) of the shown output neuron, NaN if it does not fire."""
    rec = simulate(net, inputs, duration, n_threads=1)
    return float(rec.first_spike_times("output", missing=np.nan)[0, SHOWN_OUTPUT])


def with_swept_delay(net: Network, kind: str, index: int, value: float) -> Network:
    """Copy of net with one hidden->output delay of `kind` (entry `index`) set to `value` s."""
    proj = net.projection("hidden", "output")
    values = np.array(getattr(proj.delays, kind), dtype=float)
    values[index] = value
    return net.with_projection("hidden", "output", **{kind: values})


def choose_swept(record) -> dict[str, dict]:
    """Which delay of each kind is swept: hidden drivers of the shown output ordered by first arrival."""
    proj = record.network.projection("hidden", "output")
    t_hidden = record.first_spike_times("hidden")[0]
    onto = np.flatnonzero(proj.post_idx == SHOWN_OUTPUT)
    first_arrival = t_hidden[proj.pre_idx[onto]] + proj.total_delay()[onto]
    if np.isfinite(first_arrival).sum() < 2:
        raise RuntimeError("fewer than two hidden neurons drive the shown output; choose another seed")
    first, second = onto[np.argsort(first_arrival)][:2]
    return {
        "axonal": dict(index=int(proj.pre_idx[first]), pre=int(proj.pre_idx[first]), post=-1,
                       label=f"axonal delay of hidden {proj.pre_idx[first]} (hidden->output)"),
        "dendritic": dict(index=SHOWN_OUTPUT, pre=-1, post=SHOWN_OUTPUT,
                          label=f"dendritic delay of output {SHOWN_OUTPUT} (hidden->output)"),
        "synaptic": dict(index=int(second), pre=int(proj.pre_idx[second]), post=SHOWN_OUTPUT,
                         label=f"synaptic delay hidden {proj.pre_idx[second]} -> output {SHOWN_OUTPUT}"),
    }


def arrivals(record) -> dict[str, tuple]:
    """Every arrival caused by a spike of `record` (inputs included) up to its duration.

    Returns Dataset variables along an ``arrival`` dimension: pre/post population
    code and local index, spike time, arrival time (s), weight, and the axonal,
    dendritic and synaptic parts of the delay (s).
    """
    net, flat = record.network, record.flat
    trial = np.concatenate([record.inputs.trial, record.trial])
    pre = np.concatenate([record.inputs.neuron, record.neuron])
    t_spike = np.concatenate([record.inputs.time, record.time])
    n_out = flat.out_ptr[pre + 1] - flat.out_ptr[pre]
    syn = np.concatenate([np.arange(flat.out_ptr[i], flat.out_ptr[i + 1]) for i in pre] or [np.zeros(0, np.int64)])
    syn = syn.astype(np.int64)
    which = np.repeat(np.arange(len(pre)), n_out)
    t_arr = t_spike[which] + flat.out_d[syn]
    keep = t_arr <= record.duration
    syn, which, t_arr = syn[keep], which[keep], t_arr[keep]
    parts = {kind: np.zeros(len(syn)) for kind in DELAY_KINDS}
    for k, proj in enumerate(net.projections):
        mine = flat.out_proj[syn] == k
        local = flat.out_syn[syn[mine]]
        if proj.delays.axonal is not None:
            parts["axonal"][mine] = proj.delays.axonal[proj.pre_idx[local]]
        if proj.delays.dendritic is not None:
            parts["dendritic"][mine] = proj.delays.dendritic[proj.post_idx[local]]
        if proj.delays.synaptic is not None:
            parts["synaptic"][mine] = proj.delays.synaptic[local]
    pre_pop, pre_local = flat.population_of(pre[which])
    post_pop, post_local = flat.population_of(flat.out_post[syn])
    dim = "arrival"
    out = {
        "arrival_trial": (dim, trial[which].astype(np.int64)),
        "arrival_pre_population": (dim, pre_pop.astype(np.int32)),
        "arrival_pre_neuron": (dim, pre_local.astype(np.int64)),
        "arrival_post_population": (dim, post_pop.astype(np.int32)),
        "arrival_post_neuron": (dim, post_local.astype(np.int64)),
        "arrival_spike_time": (dim, t_spike[which], {"units": "s"}),
        "arrival_time": (dim, t_arr, {"units": "s", "description": "spike time + total delay"}),
        "arrival_weight": (dim, flat.out_w[syn]),
    }
    for kind in DELAY_KINDS:
        out[f"arrival_{kind}"] = (dim, parts[kind], {"units": "s", "description": f"{kind} part of the delay"})
    return out


def run(seed: int = SEED, n_values: int = 101) -> xr.Dataset:
    """Simulate the demo network and sweep one delay of each kind; everything as one Dataset (s)."""
    net = build_network(seed)
    inputs = make_inputs(seed)
    record = simulate(net, inputs, DURATION, n_threads=1)
    swept = choose_swept(record)
    grid = np.linspace(*SWEEP_RANGE, n_values)
    proj = net.projection("hidden", "output")
    first = np.full((len(DELAY_KINDS), n_values), np.nan)
    baseline = np.zeros(len(DELAY_KINDS))
    for k, kind in enumerate(DELAY_KINDS):
        index = swept[kind]["index"]
        baseline[k] = getattr(proj.delays, kind)[index]
        for m, value in enumerate(grid):
            first[k, m] = first_spike(with_swept_delay(net, kind, index, value), inputs)
    parameters = {
        "seed": seed, "n_input": N_INPUT, "n_hidden": N_HIDDEN, "n_output": N_OUTPUT,
        "tau_m": TAU_M, "tau_s": TAU_S, "theta": 1.0, "duration": DURATION,
        "sweep_range": list(SWEEP_RANGE), "n_values": n_values, "shown_output": SHOWN_OUTPUT,
    }
    ds = record_to_dataset(record, seed=seed, parameters=parameters)
    ds = ds.assign(arrivals(record))
    ds = ds.assign_coords(kind=("kind", list(DELAY_KINDS)),
                          swept_delay=("swept_delay", grid, {"units": "s"}))
    ds["first_spike_time"] = (("kind", "swept_delay"), first,
                              {"units": "s", "description": f"first spike of output {SHOWN_OUTPUT}; NaN: none"})
    ds["baseline_delay"] = ("kind", baseline, {"units": "s", "description": "value of the swept delay in the "
                                                                             "simulated network"})
    ds["swept_index"] = ("kind", np.array([swept[k]["index"] for k in DELAY_KINDS], np.int64))
    ds["swept_pre_neuron"] = ("kind", np.array([swept[k]["pre"] for k in DELAY_KINDS], np.int64),
                              {"description": "hidden neuron of the swept delay, -1 if none"})
    ds["swept_post_neuron"] = ("kind", np.array([swept[k]["post"] for k in DELAY_KINDS], np.int64),
                               {"description": "output neuron of the swept delay, -1 if none"})
    ds["swept_label"] = ("kind", np.array([swept[k]["label"] for k in DELAY_KINDS], dtype=str))
    ds.attrs.update(shown_population="output", shown_neuron=SHOWN_OUTPUT,
                    swept_projection="hidden->output", analysis="delay_kinds_demo")
    return ds


def main(argv=None) -> int:
    """Run the demo and write its NetCDF result (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"result file (default {RESULT} in "
                                                                       f"analyses/results/)")
    parser.add_argument("--quick", action="store_true", help="21 sweep values instead of 101")
    parser.add_argument("--seed", type=int, default=SEED, help=f"network and input seed (default {SEED})")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    ds = run(args.seed, n_values=21 if args.quick else 101)
    write_netcdf(ds, args.out)
    n_spikes = ds.sizes["spike"]
    print(f"delay_kinds_demo: {n_spikes} spikes, {ds.sizes['arrival']} arrivals, "
          f"{ds.sizes['swept_delay']} values per sweep -> {args.out} ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
