"""Finite-difference checks of exact gradients, and the small random networks they run on.

Central differences of the batch-mean loss of the exact event engine, one
parameter coordinate at a time. They are only meaningful where the loss is
smooth: a step that creates or deletes a spike (the spike count of some
neuron changes), or that moves the maximum of a readout's voltage to another
local maximum (its time jumps), leaves the smooth branch; such a coordinate is
reported as NaN ("skipped") instead of a meaningless number.

Used by ``tests/conformance/test_conformance_gradients.py`` (on every engine), ``tests/test_gradients.py``
and ``analyses/gradient_check.py``.
"""

from __future__ import annotations

import numpy as np

from .delays import Delays
from .engines import get_engine
from .events.readout import max_voltage
from .gradients import get_param, set_param
from .network import LIF, Network, Readout, SpikeSource
from .spikes import SpikeTrains

__all__ = ["FD_STEP", "BRANCH_TIME_TOLERANCE", "smooth_signature", "same_branch", "finite_differences",
           "random_network", "parameter_keys"]

# finite-difference steps by parameter kind: weights and thresholds are O(1); delays and time constants in s
FD_STEP = {"weight": 1e-6, "theta": 1e-6, "synaptic": 1e-8, "axonal": 1e-8, "dendritic": 1e-8,
           "tau_m": 1e-8, "tau_s": 1e-8, "bias": 1e-6, "v_init": 1e-6, "i_init": 1e-6}
# s: how far the time of a readout's maximum may move in one step and still be the same local maximum
BRANCH_TIME_TOLERANCE = 1e-6


def smooth_signature(record) -> tuple:
    """What must not change between the evaluations of one finite difference: the spike count of
    every neuron (all trials) and the time (s) of the voltage maximum of every readout neuron
    (which local maximum is the global one)."""
    counts = np.bincount(record.neuron, minlength=record.flat.n_neurons)
    readouts = [pop.name for pop in record.network.populations if isinstance(pop, Readout)]
    t_max = [max_voltage(record, name)[1].reshape(-1) for name in readouts]
    return counts, np.concatenate(t_max) if t_max else np.zeros(0)


def same_branch(a, b, time_tolerance: float = BRANCH_TIME_TOLERANCE) -> bool:
    """True when two :func:`smooth_signature` values describe the same smooth branch of the loss."""
    return np.array_equal(a[0], b[0]) and np.max(np.abs(a[1] - b[1]), initial=0.0) < time_tolerance


def _trial_state(net: Network, inputs, key, initial_state) -> np.ndarray:
    """The (n_trials, n) initial V or I of population key[0] that a per-trial key names."""
    pop, which = key[0], {"v_init": "v", "i_init": "i"}[key[1]]
    n_trials = (inputs if isinstance(inputs, SpikeTrains) else next(iter(inputs.values()))).n_trials
    given = (initial_state or {}).get(pop, {})
    value = given[which] if which in given else getattr(net[pop], key[1])
    return np.array(np.broadcast_to(np.asarray(value, float), (n_trials, net[pop].n)))


def _with_trial_state(initial_state, key, value) -> dict:
    pop, which = key[0], {"v_init": "v", "i_init": "i"}[key[1]]
    out = {name: dict(entry) for name, entry in (initial_state or {}).items()}
    out.setdefault(pop, {})[which] = value
    return out


def finite_differences(net: Network, inputs, duration: float, loss, labels, key, step: float | None = None,
                       coordinates=None, engine="auto", initial_state=None, signature=smooth_signature) -> np.ndarray:
    """Central differences (L(p + h) - L(p - h)) / 2h of the batch-mean `loss` with respect to the
    parameter `key` (see :mod:`neurodelay.gradients`), NaN where a step leaves the smooth branch.

    duration in s; step h defaults to ``FD_STEP[kind]`` (parameter units); coordinates: flat
    indices into the parameter to difference (default: all, and the result has the parameter's
    shape; otherwise a 1-D array, one value per listed coordinate); engine: the
    engine that simulates (a name of :mod:`neurodelay.engines` or an engine object);
    initial_state: the per-trial state at t = 0 of every run (see
    :func:`neurodelay.simulate`); a per-trial key ``(pop, "v_init", "trial")`` steps it;
    signature: record -> (counts, times) that must stay the same on both sides of a step
    (:func:`same_branch`; default :func:`smooth_signature`), e.g. only one population's spike
    counts, or the times of a loss's own maxima.
    """
    engine = get_engine(engine, net)

    def run(network, state):
        extra = {} if state is None else {"initial_state": state}
        return engine.simulate(network, inputs, duration, **extra)

    base = signature(run(net, initial_state))
    per_trial = len(key) == 3 and key[2] == "trial"
    value = _trial_state(net, inputs, key, initial_state) if per_trial else get_param(net, key)
    flat = value.reshape(-1)
    h = FD_STEP[key[1]] if step is None else float(step)
    if not h > 0:
        raise ValueError(f"the finite-difference step must be > 0, got {h}")
    which = np.arange(flat.size) if coordinates is None else np.asarray(coordinates, dtype=np.int64).reshape(-1)
    if which.size and (which.min() < 0 or which.max() >= flat.size):
        raise IndexError(f"{key!r}: coordinates must lie in [0, {flat.size}), got {which.min()}..{which.max()}")
    out = np.full(which.size, np.nan)
    for n, i in enumerate(which):
        losses_pm = []
        for sign in (1.0, -1.0):
            shifted = flat.copy()
            shifted[i] += sign * h
            if per_trial:
                record = run(net, _with_trial_state(initial_state, key, shifted.reshape(value.shape)))
            else:
                record = run(set_param(net, key, shifted.reshape(value.shape)), initial_state)
            if not same_branch(signature(record), base):
                break
            losses_pm.append(np.mean(loss.value(record, labels)))
        else:
            out[n] = (losses_pm[0] - losses_pm[1]) / (2 * h)
    return out.reshape(value.shape) if coordinates is None else out


def random_network(seed: int, recurrent: bool, n_trials: int = 2) -> tuple[Network, SpikeTrains, np.ndarray]:
    """A small random network that exercises every parameter kind: (network, inputs, labels).

    inp (5) -> hid (6 LIF, 1 ms refractory, all three delay kinds on inp -> hid)
    [-> hid, 8 recurrent synapses] -> out (3 readouts) and -> ttfs (3 LIF); time constants
    and delays of a few ms, three input spikes per input neuron in [0, 30 ms) per trial,
    one random label per trial (3 classes).
    """
    rng = np.random.default_rng(seed)
    n_in, n_h, n_o = 5, 6, 3
    net = Network().add(
        SpikeSource("inp", n_in),
        LIF("hid", n_h, tau_m=rng.uniform(8e-3, 12e-3, n_h), tau_s=rng.uniform(3e-3, 5e-3, n_h), refractory=1e-3),
        Readout("out", n_o, tau_m=15e-3, tau_s=rng.uniform(3e-3, 4e-3, n_o)),
        LIF("ttfs", n_o, tau_m=8e-3, tau_s=2.5e-3, theta=rng.uniform(0.8, 1.2, n_o)))
    net = net.connect("inp", "hid", rng.uniform(0.0, 1.6, n_in * n_h),
                      delays=Delays(axonal=rng.uniform(0, 2e-3, n_in), dendritic=rng.uniform(0, 2e-3, n_h),
                                    synaptic=rng.uniform(0, 4e-3, n_in * n_h)))
    if recurrent:
        pre, post = np.array([0, 1, 2, 3, 4, 5, 0, 2]), np.array([1, 2, 3, 4, 5, 0, 3, 5])
        net = net.connect("hid", "hid", rng.uniform(-0.4, 0.8, 8), connectivity=(pre, post),
                          delays=Delays(synaptic=rng.uniform(0.5e-3, 3e-3, 8)))
    net = net.connect("hid", "out", rng.uniform(-1.0, 1.5, n_h * n_o),
                      delays=Delays(synaptic=rng.uniform(0, 5e-3, n_h * n_o)))
    net = net.connect("hid", "ttfs", rng.uniform(-0.2, 2.5, n_h * n_o),
                      delays=Delays(synaptic=rng.uniform(0, 5e-3, n_h * n_o)))
    inputs = SpikeTrains.from_lists([[np.sort(rng.uniform(0, 0.03, 3)) for _ in range(n_in)]
                                     for _ in range(n_trials)])
    return net, inputs, rng.integers(0, n_o, n_trials)


def parameter_keys(net: Network) -> list:
    """Every parameter key of a :func:`random_network` whose central difference is defined: weights and
    all delay kinds of inp -> hid, weights and synaptic delays of the other projections, per-neuron
    tau_m / tau_s of hid, out, ttfs, theta of hid and ttfs, shared tau_m of ttfs and out."""
    keys = [("inp->hid", kind) for kind in ("weight", "synaptic", "axonal", "dendritic")]
    keys += [(p.name, kind) for p in net.projections[1:] for kind in ("weight", "synaptic")]
    keys += [(pop, kind) for pop in ("hid", "out", "ttfs") for kind in ("tau_m", "tau_s")]
    keys += [("hid", "theta"), ("ttfs", "theta"), ("ttfs", "tau_m", "shared"), ("out", "tau_m", "shared")]
    return keys
