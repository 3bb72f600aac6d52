"""The plan of a layered network for the kernels: its populations in an order where every projection goes
forward, the post-major synapse table, and the factors of the factored exponentials (which layers may
use them: :data:`FACTORED_FORWARD`, :data:`FACTORED_REVERSE`). Shared by the feedforward engine
(:mod:`neurodelay.layered.engine`), its recurrent groups (:mod:`neurodelay.layered.recurrent`) and the
GPU engine (:mod:`neurodelay.layered.gpu`)."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from ..flat import FlatNetwork, is_closed_form
from ..network import LIF, Network, SpikeSource

__all__ = ["FACTORED_FORWARD", "FACTORED_REVERSE"]

#: LIF layers with one tau_m and one tau_s may use factored exponentials (no exp per arrival) where
#: exp(t/tau) stays below exp(_MAX_EXPONENT) up to the end of the trial.
#: Forward scans: on by default (about half the cost of the exact scan at SHD size); spike times
#: differ from the event engine's by rounding (at most 1.2e-13 s measured at SHD size, identical
#: counts), gradients by 1.3e-10 of their largest entry at batch 64, 7.0e-10 (one hidden layer) and 1.3e-9
#: (two) on 16 other trials (near-grazing crossings amplify the rounding of the spike times, which
#: differ by up to 2e-14 s there; with this flag off the gradients differ by 6e-14). Off: every layer
#: performs the event engine's operations and spikes are bit-identical to its.
FACTORED_FORWARD = True
#: Reverse pass of LIF neurons reached only through their spike times: on by default (gradients
#: equal the exact reverse pass's to ~1e-14 relative on the same record, 2-3x cheaper).
FACTORED_REVERSE = True
_MAX_EXPONENT = 600.0

_KIND_LIF = 1
_EMPTY = np.zeros(0)
_EMPTY2 = np.zeros((4, 0))


@dataclass(frozen=True)
class _Plan:
    """The populations in an order where every projection goes forward, and the post-major synapse table."""

    layers: tuple          # (first global index, n, name, is LIF) of every non-source population
    in_ptr: np.ndarray     # (N+1,) over postsynaptic neurons
    in_pre: np.ndarray     # (S,) presynaptic global index
    in_d: np.ndarray       # (S,) total delay, s
    in_w: np.ndarray       # (S,) weight
    in_c: np.ndarray       # (S,) the synapse's index in flat (pre-major) order
    closed: np.ndarray     # (N,) closed-form crossing
    in_dm: np.ndarray      # (S,) exp(d / tau_m of the postsynaptic neuron) (inf where it overflows)
    in_ds: np.ndarray      # (S,) exp(d / tau_s of the postsynaptic neuron)


def _plan(net: Network, flat: FlatNetwork) -> _Plan:
    done = {p.name for p in net.sources}
    todo = [p for p in net.populations if not isinstance(p, SpikeSource)]
    layers = []
    while todo:
        ready = [p for p in todo if all(q.pre in done for q in net.projections if q.post == p.name)]
        if not ready:
            raise ValueError("net: the projections between its populations form a cycle; cycles run as recurrent "
                             "groups (neurodelay.layered.recurrent), not through this plan")
        for p in ready:
            layers.append((flat.offsets[p.name], p.n, p.name, isinstance(p, LIF)))
            done.add(p.name)
        todo = [p for p in todo if p.name not in done]
    in_ptr, in_pre, in_d, in_w, in_c, in_dm, in_ds = post_major(flat)
    return _Plan(tuple(layers), in_ptr, in_pre, in_d, in_w, in_c, is_closed_form(flat.tau_m, flat.tau_s), in_dm, in_ds)


def post_major(flat: FlatNetwork) -> tuple:
    """flat's synapses in post-major order (each postsynaptic neuron's, in flat's order within one):
    (in_ptr (N+1,), in_pre, in_d (s), in_w, in_c (the synapse's index in flat's pre-major order), in_dm,
    in_ds (exp(d / tau_m), exp(d / tau_s) of the postsynaptic neuron; inf where it overflows))."""
    n = flat.n_neurons
    pre_of = np.repeat(np.arange(n, dtype=np.int64), np.diff(flat.out_ptr))
    post_key = flat.out_post.astype(np.uint16) if n <= 2 ** 16 else flat.out_post   # 16 bits: numpy's radix sort
    order = np.argsort(post_key, kind="stable")            # by post, flat order within a post
    in_ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(flat.out_post, minlength=n), out=in_ptr[1:])
    in_d = np.ascontiguousarray(flat.out_d[order])
    post = flat.out_post[order]
    with np.errstate(over="ignore"):
        in_dm, in_ds = np.exp(in_d / flat.tau_m[post]), np.exp(in_d / flat.tau_s[post])
    return (in_ptr, pre_of[order], in_d, np.ascontiguousarray(flat.out_w[order]), order.astype(np.int64), in_dm,
            in_ds)


_PLANS: dict = {}   # (id(flat), build) -> (weak reference to flat, its plan): simulate's plan serves the adjoint too


def _plan_for(net: Network, flat: FlatNetwork, build=None):
    """build(net, flat) (default :func:`_plan`), kept while `flat` (e.g. a record's) lives."""
    build = build or _plan
    key = (id(flat), build)
    hit = _PLANS.get(key)
    if hit is not None and hit[0]() is flat:
        return hit[1]
    plan = build(net, flat)
    _PLANS[key] = (weakref.ref(flat, lambda _, key=key: _PLANS.pop(key, None)), plan)
    return plan


def _factored_taus(flat: FlatNetwork, off: int, size: int, duration: float, sampled: bool):
    """(tau_m, tau_s) if this LIF layer can use factored exponentials, else None."""
    return _factored_taus_of(flat, slice(off, off + size), duration, sampled)


def _factored_taus_of(flat: FlatNetwork, neurons, duration: float, sampled: bool):
    """:func:`_factored_taus` of the LIF neurons `neurons` (a slice or an index array)."""
    tm, ts = flat.tau_m[neurons], flat.tau_s[neurons]
    if sampled or tm.size == 0 or np.ptp(tm) != 0 or np.ptp(ts) != 0:
        return None
    horizon = duration + float(np.max(flat.refractory[neurons]))
    if horizon / min(tm[0], ts[0]) > _MAX_EXPONENT:
        return None
    return float(tm[0]), float(ts[0])


def _reverse_taus(flat: FlatNetwork, off: int, size: int, duration: float, is_lif: bool, time_constants: bool):
    """(tau_m, tau_s) where the reverse pass of layer `off` may use factored exponentials
    (:data:`FACTORED_REVERSE`, no time-constant gradients, :func:`_factored_taus`): LIF layers
    (reverse_factored) and readouts with tau_m != tau_s (reverse_linear); else None."""
    if not FACTORED_REVERSE or time_constants:
        return None
    taus = _factored_taus(flat, off, size, duration, False)
    return taus if taus is not None and (is_lif or taus[0] != taus[1]) else None


def _scan_factors(taus, plan: _Plan, times: np.ndarray, duration: float) -> tuple:
    """The kernels' factored-scan arguments for a layer: with taus = (tau_m, tau_s) from
    :func:`_factored_taus`, (True, exp(d/tau) per synapse (plan.in_dm, plan.in_ds), exp(t/tau) of
    `times` capped at duration (spikes after the end have no arrivals)); with None, (False, empty
    arrays)."""
    if taus is None:
        return False, _EMPTY, _EMPTY, _EMPTY, _EMPTY
    capped = np.minimum(times, duration)
    return True, plan.in_dm, plan.in_ds, np.exp(capped / taus[0]), np.exp(capped / taus[1])


def _synapse_factors(flat: FlatNetwork, plan: _Plan) -> np.ndarray:
    """(4, S), per synapse of the post-major table: exp(d/tau_s), exp(d/tau_m) (plan.in_ds, plan.in_dm),
    exp(-d/tau_s), exp(-d/tau_m), with the taus of the postsynaptic neuron."""
    post = np.repeat(np.arange(flat.n_neurons), np.diff(plan.in_ptr))
    return np.stack([plan.in_ds, plan.in_dm, np.exp(-plan.in_d / flat.tau_s[post]),
                     np.exp(-plan.in_d / flat.tau_m[post])])


def _kept_factors(flat: FlatNetwork, syn_f, off: int, size: int, times: np.ndarray, duration: float) -> tuple:
    """:func:`~neurodelay.layered._kernels.forward_keep_range`'s scan arguments for LIF layer `off`:
    :func:`_packed_factors` when FACTORED_FORWARD is on and :func:`_factored_taus` allows it."""
    return _packed_factors(_factored_taus(flat, off, size, duration, False) if FACTORED_FORWARD else None, syn_f,
                           times, duration)


def _packed_factors(taus, syn_f, times: np.ndarray, duration: float) -> tuple:
    """The factored forward scan's arguments (:func:`~neurodelay.layered._kernels.scan_binned`) for a LIF
    layer with taus = (tau_m, tau_s): (True, syn_f (:func:`_synapse_factors`), factors per spike of
    `times` capped at duration (rows exp(t/tau_s), exp(t/tau_m), exp(-t/tau_s), exp(-t/tau_m))); with
    taus None, (False, empty arrays)."""
    if taus is None:
        return False, _EMPTY2, _EMPTY2
    tm, ts = taus
    capped = np.minimum(times, duration)
    return True, syn_f, np.stack([np.exp(capped / ts), np.exp(capped / tm), np.exp(-capped / ts), np.exp(-capped / tm)])
