"""Run a :class:`~neurodelay.network.Network` in NEST's precise model ``iaf_psc_exp_ps`` (an oracle).

Mapping of the dimensionless model (tau_m dV/dt = -V + I, a spike makes I
jump by w) to NEST units: E_L = 0, C_m [pF] = tau_m [ms] (so R = 1 GOhm and
a weight of w pA is a jump of w mV in I), tau_syn_ex = tau_syn_in = tau_s
(NEST routes negative weights to the inhibitory synapse; with equal time
constants that changes nothing), V_th = theta, V_reset = reset. NEST needs
delays and refractory periods on its resolution grid (refractory >= one
step). A bias current is NEST's ``I_e`` [pA] (= bias in mV through R = 1 GOhm);
the initial state is ``V_m`` = v_init and the synaptic current
``I_syn_ex`` = i_init, ``I_syn_in`` = 0 (the two currents decay with the
same tau_s, so only their sum matters). NEST's threshold search stops when ``|V - theta| < 1e-14`` mV
(``NEST_ROOT_TOLERANCE_MV``), so its spike times are exact to about
1e-14 tau_m / (I - theta) seconds.

The limit of the oracle: ``iaf_psc_exp_ps`` looks for a threshold crossing
only at the end of each step and at each incoming spike, so a crossing that
starts and ends within one step (V rises above theta and falls back before
the next grid point) is missed, and from then on the network's activity
differs. Such brief crossings are rare but certain in large recurrent
networks: on a recurrent network of 1000 LIF neurons driven by 200 Poisson
inputs (tests/test_nest_resolution.py, 24 557 spikes in 3 s), NEST at
0.1 ms agreed with the exact engine only until 1.17 s, at 0.01 ms on every
spike (largest difference 3e-13 s). The default resolution is therefore 0.01 ms
(:data:`DEFAULT_RESOLUTION`); it narrows the window, it cannot close it, so
compare spike by spike and suspect the grid first when a long recurrent run
diverges. Delays and refractory periods must lie on the chosen grid.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .network import LIF, Network, SpikeSource
from .spikes import SpikeTrains

__all__ = ["NEST_MODEL", "NEST_ROOT_TOLERANCE_MV", "DEFAULT_RESOLUTION", "NestRun", "on_grid", "simulate_nest"]

NEST_MODEL = "iaf_psc_exp_ps"
NEST_ROOT_TOLERANCE_MV = 1e-14
#: default NEST resolution, s (see the module docstring: 0.1 ms misses brief threshold crossings)
DEFAULT_RESOLUTION = 1e-5


def on_grid(values, resolution: float, what: str) -> np.ndarray:
    """Whole numbers of steps of `resolution` s; ValueError naming `what` for values off the grid."""
    values = np.asarray(values, dtype=float)
    steps = np.rint(values / resolution)
    if np.any(np.abs(steps * resolution - values) > 1e-12 * resolution):
        raise ValueError(f"{what} must be multiples of the NEST resolution {resolution} s")
    return steps.astype(np.int64)


@dataclass(frozen=True)
class NestRun:
    """LIF spikes of one NEST run (global neuron index, time in s, time order) and its timings (s)."""

    neuron: np.ndarray
    time: np.ndarray
    build_s: float
    simulate_s: float


def simulate_nest(net: Network, inputs, duration: float, *, trial: int = 0,
                  resolution: float = DEFAULT_RESOLUTION, threads: int = 1, initial_state=None) -> NestRun:
    """Simulate one trial of `inputs` in NEST for `duration` s.

    inputs: as for :func:`neurodelay.simulate`, a SpikeTrains (one source)
    or a dict source name -> SpikeTrains (times in s); resolution: NEST's time
    step, s (default 0.01 ms; coarser grids miss brief threshold crossings, see
    the module docstring); delays and refractory periods must lie on it;
    initial_state: per-trial state at t = 0 as for :func:`neurodelay.simulate`
    (this run uses row `trial`).
    """
    import nest

    sources = net.sources
    if isinstance(inputs, SpikeTrains):
        if len(sources) != 1:
            raise ValueError("the network has several spike sources: pass a dict name -> SpikeTrains")
        inputs = {sources[0].name: inputs}

    from .flat import flatten
    from .record import resolve_initial_state

    n_trials = next(iter(inputs.values())).n_trials if inputs else 1
    flat = flatten(net)
    v_all, i_all = resolve_initial_state(net, flat, initial_state, n_trials)
    v_start = flat.v_init if v_all is None else v_all[trial]
    i_start = flat.i_init if i_all is None else i_all[trial]
    ms = 1e3
    t0 = time.perf_counter()
    nest.ResetKernel()
    nest.verbosity = nest.VerbosityLevel.ERROR
    nest.SetKernelStatus({"resolution": resolution * ms, "local_num_threads": threads})
    offsets = net.offsets()
    node_ids: dict[str, np.ndarray] = {}
    for pop in net.populations:
        if isinstance(pop, SpikeSource):
            st = inputs[pop.name]
            mask = st.trial == trial
            gens = nest.Create("spike_generator", pop.n, params={"precise_times": True})
            order = np.lexsort((st.time[mask], st.neuron[mask]))
            bounds = np.searchsorted(st.neuron[mask][order], np.arange(pop.n + 1))
            times = st.time[mask][order] * ms
            gens.set([{"spike_times": times[a:b]} for a, b in zip(bounds[:-1], bounds[1:])])
            node_ids[pop.name] = np.array(gens.tolist())
            continue
        if not isinstance(pop, LIF):
            raise ValueError(f"{pop.name}: the NEST oracle covers spike sources and LIF populations only")
        if np.any(on_grid(pop.refractory, resolution, f"{pop.name}.refractory") < 1):
            raise ValueError(f"{pop.name}: NEST needs a refractory period of at least one step ({resolution} s)")
        nodes = nest.Create(NEST_MODEL, pop.n)
        nodes.set(E_L=0.0, I_e=0.0, V_min=-np.inf)
        nodes.set(tau_m=list(pop.tau_m * ms), C_m=list(pop.tau_m * ms),
                  tau_syn_ex=list(pop.tau_s * ms), tau_syn_in=list(pop.tau_s * ms),
                  V_th=list(pop.theta), V_reset=list(pop.reset), t_ref=list(pop.refractory * ms))
        sl = slice(offsets[pop.name], offsets[pop.name] + pop.n)
        want = {"V_m": v_start[sl], "I_e": pop.bias, "I_syn_ex": i_start[sl], "I_syn_in": np.zeros(pop.n)}
        # after E_L: setting E_L does not move V_m
        nodes.set(**{k: list(np.asarray(v, float)) for k, v in want.items()})
        state = nodes.get(list(want) + ["E_L"])
        want["E_L"] = np.zeros(pop.n)
        if not all(np.array_equal(np.asarray(state[k], float).reshape(-1), np.asarray(want[k], float))
                   for k in want):
            raise RuntimeError(f"NEST did not take the initial state and bias of {pop.name}: {state}")
        node_ids[pop.name] = np.array(nodes.tolist())
    for proj in net.projections:
        steps = on_grid(proj.total_delay(), resolution, f"{proj.name} delays")
        nest.Connect(node_ids[proj.pre][proj.pre_idx], node_ids[proj.post][proj.post_idx], "one_to_one",
                     {"synapse_model": "static_synapse", "weight": proj.weight,
                      "delay": steps * (resolution * ms)})
    recorder = nest.Create("spike_recorder")
    lif_names = [p.name for p in net.populations if isinstance(p, LIF)]
    for name in lif_names:
        nest.Connect(nest.NodeCollection(node_ids[name].tolist()), recorder)
    t1 = time.perf_counter()
    nest.Simulate(duration * ms)
    t2 = time.perf_counter()
    events = recorder.get("events")
    to_global = {int(nid): offsets[name] + k for name in lif_names for k, nid in enumerate(node_ids[name])}
    neuron = np.array([to_global[int(s)] for s in events["senders"]], dtype=np.int64)
    times = np.asarray(events["times"], dtype=float) / ms
    order = np.argsort(times, kind="stable")
    return NestRun(neuron[order], times[order], t1 - t0, t2 - t1)
