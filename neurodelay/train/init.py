"""Initial weights and delays for trained networks (explicit numpy Generators).

Schemes used by the papers this project follows:

* ``normal``: weights ~ N(mean, std) per projection. Göltz et al. (Yin-Yang,
  time-to-first-spike) draw every layer from a normal distribution with a
  positive mean so that most neurons spike at the start (their config:
  hidden N(1.5, 0.8), output N(0.5, 0.8) in units of the threshold for
  tau_m = tau_s); :func:`psp_peak` rescales such values to other tau ratios.
* ``fan_in``: weights ~ N(mean, std = gain / sqrt(n_pre)), the usual
  fan-in scaling (its spread shrinks with the number of inputs). mlGeNN's
  EventProp examples draw each layer from a normal distribution with a
  given mean and sd; use ``normal`` with their values for those.

Delays: ``uniform`` on [low, high] s, ``constant``, or ``zero``.

Data-dependent initialisation (:func:`calibrate_rates`): after drawing the weights, each neuron of the
given layers gets an additive shift of its incoming weights such that it fires a target rate on a batch of
training data (layer by layer from the input, as LSUV initialisation does for deep networks; the role batch
normalisation plays in surrogate-gradient networks: no hidden neuron starts silent, none saturates).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["init_weights", "init_delays", "psp_peak", "calibrate_rates", "WEIGHT_SCHEMES", "DELAY_SCHEMES"]

WEIGHT_SCHEMES = ("normal", "fan_in", "constant")
DELAY_SCHEMES = ("zero", "constant", "uniform")


def psp_peak(tau_m: float, tau_s: float) -> float:
    """Peak of V after a unit jump of I (V = I = 0 before): the height of one PSP per unit weight."""
    tau_m, tau_s = float(tau_m), float(tau_s)
    if abs(tau_m - tau_s) <= 1e-12 * tau_m:
        return math.exp(-1.0)
    t_peak = tau_m * tau_s / (tau_m - tau_s) * math.log(tau_m / tau_s)
    k = tau_s / (tau_m - tau_s)
    return k * (math.exp(-t_peak / tau_m) - math.exp(-t_peak / tau_s))


def init_weights(scheme: str, n_pre: int, n_syn: int, rng: np.random.Generator, *, mean: float = 0.0,
                 std: float = 1.0, gain: float = 1.0) -> np.ndarray:
    """``n_syn`` initial weights (dimensionless, in units of the threshold jump of I).

    normal: N(mean, std); fan_in: N(mean, gain / sqrt(n_pre)); constant: all `mean`.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator, got {type(rng).__name__}")
    if scheme == "normal":
        if std < 0:
            raise ValueError(f"weight std must be >= 0, got {std}")
        return rng.normal(mean, std, n_syn)
    if scheme == "fan_in":
        if n_pre < 1:
            raise ValueError(f"fan_in initialisation needs n_pre >= 1, got {n_pre}")
        return rng.normal(mean, gain / math.sqrt(n_pre), n_syn)
    if scheme == "constant":
        return np.full(n_syn, float(mean))
    raise ValueError(f"unknown weight initialisation {scheme!r}; choose one of {WEIGHT_SCHEMES}")


def init_delays(scheme: str, n: int, rng: np.random.Generator, *, low: float = 0.0,
                high: float = 0.0) -> np.ndarray:
    """``n`` initial delays in seconds: zero, constant (= low) or uniform on [low, high]."""
    if low < 0 or high < 0:
        raise ValueError(f"delays must be >= 0 s, got low={low}, high={high}")
    if scheme == "zero":
        return np.zeros(n)
    if scheme == "constant":
        return np.full(n, float(low))
    if scheme == "uniform":
        if high < low:
            raise ValueError(f"uniform delays need high >= low, got [{low}, {high}]")
        return rng.uniform(low, high, n)
    raise ValueError(f"unknown delay initialisation {scheme!r}; choose one of {DELAY_SCHEMES}")


def calibrate_rates(network, populations, inputs, duration: float, rate: float, *, fraction: float | None = None,
                    iterations: int = 16, engine="auto", n_threads: int | None = None):
    """Shift each neuron's incoming weights so that it fires `rate` Hz on average over `inputs`.

    For each population of `populations` in the order given (input side first: a layer is calibrated
    on the spikes of the layers before it, already calibrated), neuron i's incoming weights (of every
    projection onto it) become ``w_ij + c_i s_i``, where ``s_i`` is the standard deviation of its initial
    incoming weights (their mean absolute value if all are equal, 1 if all are 0) and ``c_i`` is found by bisection
    (``iterations`` halvings after bracketing) such that its mean spike count over the trials of `inputs`
    is ``rate * duration`` (with ``fraction``: such that it fires at least ``max(1, rate * duration)``
    spikes in that fraction of the trials, which puts its threshold inside the spread of its drive over
    the data rather than below it). The spike count grows with c_i (every presynaptic spike then adds more
    charge), so the bisection is sound; a neuron that cannot reach the rate at ``|c_i| = 64`` keeps the
    bracket's end. Returns (network, {population: c (n,)}).

    Parameters
    ----------
    network : Network
        A feedforward network.
    populations : sequence of str
        LIF populations to calibrate, input side first.
    inputs : SpikeTrains or dict
        A batch of training inputs (as for the engine's ``simulate``).
    duration : float
        Trial length, s.
    rate : float
        Target mean rate per neuron, Hz (> 0).
    fraction : float, optional
        In (0, 1): calibrate the fraction of trials with at least ``max(1, rate * duration)`` spikes
        instead of the mean rate.
    """
    from ..engines import get_engine

    rate = float(rate)
    if not (np.isfinite(rate) and rate > 0):
        raise ValueError(f"rate must be a positive number of Hz, got {rate}")
    duration = float(duration)
    if not duration > 0:
        raise ValueError(f"duration must be > 0 s, got {duration}")
    iterations = int(iterations)
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    if fraction is not None and not 0 < float(fraction) < 1:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
    target = rate * duration if fraction is None else float(fraction)
    least = max(1.0, rate * duration)
    shifts = {}

    def counts(net, name):
        rec = get_engine(engine, net).simulate(net, inputs, duration, n_threads=n_threads)
        c = rec.spikes(name).counts()
        return c.mean(axis=0) if fraction is None else np.mean(c >= least, axis=0)

    for name in populations:
        n = network[name].n
        projs = [p for p in network.projections if p.post == name]
        if not projs:
            raise ValueError(f"populations: {name!r} receives no projection")
        w0 = {p.name: np.asarray(p.weight, float).copy() for p in projs}
        all_w = np.concatenate([w0[p.name] for p in projs])
        all_post = np.concatenate([np.asarray(p.post_idx) for p in projs])
        m1 = np.bincount(all_post, all_w, minlength=n)
        m2 = np.bincount(all_post, all_w ** 2, minlength=n)
        k = np.maximum(np.bincount(all_post, minlength=n), 1)
        scale = np.sqrt(np.maximum(m2 / k - (m1 / k) ** 2, 0.0))
        mean_abs = np.bincount(all_post, np.abs(all_w), minlength=n) / k
        scale = np.where(scale > 0, scale, np.where(mean_abs > 0, mean_abs, 1.0))

        def shifted(c):
            net = network
            for p in projs:
                net = net.with_projection(p.pre, p.post, weight=w0[p.name] + (c * scale)[np.asarray(p.post_idx)])
            return net

        lo, hi = np.full(n, -1.0), np.full(n, 1.0)
        for _ in range(6):                       # bracket: count(lo) < target <= count(hi)
            low_ok = counts(shifted(lo), name) < target
            high_ok = counts(shifted(hi), name) >= target
            if low_ok.all() and high_ok.all():
                break
            lo = np.where(low_ok, lo, 2.0 * lo)
            hi = np.where(high_ok, hi, 2.0 * hi)
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            below = counts(shifted(mid), name) < target
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        c = 0.5 * (lo + hi)
        network = shifted(c)
        shifts[name] = c
    return network, shifts
