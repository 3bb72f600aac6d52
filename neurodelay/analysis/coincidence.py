"""Coincidence detection: the window of the project's neuron, its jitter curve, the Rossant gain and Jeffress' map.

Delays matter because a neuron responds to coincident arrivals: graded delays
turn a temporal pattern into a coincidence (Jeffress 1948). This module
measures how narrow that coincidence is for the project's neuron and what it
buys.

Model (see :mod:`neurodelay.network`): ``tau_m dV/dt = -V + I``,
``tau_s dI/dt = -I``; a spike of weight ``w`` makes ``I`` jump by ``w``, so
one input spike at time 0 gives the PSP::

    V(t) = w K (exp(-t/tau_m) - exp(-t/tau_s)),   K = tau_s / (tau_m - tau_s),

which peaks at ``t_p = tau_m tau_s ln(tau_m/tau_s) / (tau_m - tau_s)`` with
the value ``w (tau_s/tau_m)**(tau_m/(tau_m - tau_s))`` (:func:`psp_peak`).

**Coincidence window.** Two spikes of weight ``w`` at 0 and ``Delta >= 0``
give ``V = PSP(t) + PSP(t - Delta)``. Its maximum ``M(Delta)`` is the maximum
of the free evolution from the state just after the second spike,
``V(Delta) = w K (e^{-Delta/tau_m} - e^{-Delta/tau_s})``,
``I(Delta) = w (1 + e^{-Delta/tau_s})``, which the neuron's closed forms give
exactly (one extremum between events). The window ``Delta_c`` is the largest
``Delta`` with ``M(Delta) >= theta``, found by bracketing and Brent's method
on ``M``. ``M`` never increases with ``Delta``: at the maximum ``t*``,
``PSP'(t*) = -PSP'(t* - Delta)``, and as the PSP rises only before its single
peak, the earlier argument ``t* - Delta`` is on the rising side, so
``dM/dDelta = -PSP'(t* - Delta) <= 0`` (envelope theorem). Hence the neuron
fires iff ``|Delta| <= Delta_c``. For an instant-rise exponential
kernel of height ``a`` (``tau_s -> 0``) this is König et al.'s
``Delta_c = tau_m ln(a / (theta - a))``.

**Jitter.** With independent Gaussian jitter ``sigma`` on each spike the
interval is ``N(Delta, 2 sigma^2)``, so ``P(fire) = Phi((Delta_c - Delta) /
(sqrt 2 sigma)) - Phi((-Delta_c - Delta) / (sqrt 2 sigma))``; at ``Delta = 0``
``P = erf(Delta_c / (2 sigma))`` (König, Engel & Singer 1996).
:func:`coincidence_curve` measures ``P`` by exact simulation and returns
this curve beside it.

**Sensitivity to coincident inputs** (Rossant et al. 2011). A neuron under
balanced Poisson background: ``n_exc`` excitatory and ``n_inh`` inhibitory
inputs at 1 Hz, excitatory PSP peak 0.5 mV, inhibitory weight setting the
mean input to zero (mean V at rest), threshold 10 mV above rest, refractory
5 ms. ``n_sync`` of the excitatory inputs additionally fire together at
Poisson events of rate ``sync_rate`` and every excitatory background rate is
lowered by ``n_sync sync_rate / n_exc``, so the total input rate and the mean
input are unchanged and only the timing differs. The project's neuron has one
synaptic time constant, so excitation and inhibition share ``tau_s`` (the
published model uses 3 ms for excitation and 10 ms for inhibition): the mean
balance is exact, the inhibitory fluctuations are faster and smaller than in
the paper.

**Jeffress delay lines.** Detectors ``k = 0..N-1`` receive one spike from
each ear through axonal delays ``a + k delta`` (left) and
``a + (N-1-k) delta`` (right), so detector ``k`` prefers the interaural time
difference ``ITD_k = (2k - N + 1) delta`` (right ear later). The ITD is
estimated from the detector that fires first, refined by a parabola through
its neighbours' first spike times (several tied on a time grid: their mean
preferred ITD). With exact timing the map is a straight line; on a dt grid it
is a staircase.

References
----------
* L. A. Jeffress (1948). A place theory of sound localization.
  J Comp Physiol Psychol 41:35-39.
* P. König, A. K. Engel, W. Singer (1996). Integrator or coincidence
  detector? The role of the cortical neuron revisited. Trends Neurosci
  19:130-137.
* C. Rossant, S. Leijon, A. K. Magnusson, R. Brette (2011). Sensitivity
  of noisy neurons to coincident inputs. J Neurosci 31:17193-17206.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from scipy.optimize import brentq
from scipy.special import ndtr

from ..delays import Delays
from ..events.dynamics import free_voltage, peak_time
from ..network import LIF, TAU_RELATIVE_GAP, Network, SpikeSource
from ..spikes import SpikeTrains
from ..units import as_seconds, as_voltage
from .common import (check_grid, check_int, check_rate, check_seconds, poisson_trains, rng_from,
                     with_provenance)

__all__ = ["psp_peak", "weight_for_psp_peak", "coincidence_window", "coincidence_curve", "analytic_fire_probability",
           "coincidence_gain", "jeffress", "jeffress_network", "jeffress_inputs", "estimate_itd", "TIMINGS"]

#: how a simulation is timed: "exact" (the engine chosen by ``engine=``), or Brian2 "precise" / "grid" at ``dt``
TIMINGS = ("exact", "precise", "grid")
EXACT_ENGINES = ("events", "layered")


# ---- the one place where an engine is chosen --------------------------------------------------------

def _check_timings(timings) -> tuple[str, ...]:
    timings = (timings,) if isinstance(timings, str) else tuple(timings)
    if not timings:
        raise ValueError("timings is empty: give at least one of " + ", ".join(TIMINGS))
    bad = [t for t in timings if t not in TIMINGS]
    if bad or len(set(timings)) != len(timings):
        raise ValueError(f"timings must be distinct values among {TIMINGS}, got {timings!r}")
    return timings


def _check_engine(engine) -> str:
    """The registered name of an exact engine (Brian2 runs go through ``timings``, not ``engine``)."""
    from ..engines import get_engine
    name = get_engine(engine).name
    if name not in EXACT_ENGINES:
        raise ValueError(f"engine must be an exact engine {EXACT_ENGINES} (Brian2 runs: timings='precise'/'grid'), "
                         f"got {engine!r}")
    return engine


def _simulate(net: Network, inputs, duration: float, timing: str, *, engine: str = "auto", dt: float = 1e-4,
              device: str = "runtime", history: dict | None = None):
    """Simulate through the engine for `timing`: 'exact' -> an exact engine of :mod:`neurodelay.engines`
    (``engine``, default "auto"), else Brian2 in that mode. The only place where this module picks an engine.
    """
    if timing == "exact":
        from ..simulation import simulate
        return simulate(net, inputs, duration, engine=engine)
    from ..brian import BrianSimulator
    return BrianSimulator(net, duration, mode=timing, dt=dt, device=device,
                          history=history if timing == "precise" else None).run(inputs)


def _engine_label(timings, engine: str) -> str:
    names = {"exact": f"neurodelay exact engine ({engine})", "precise": "neurodelay.brian precise",
             "grid": "neurodelay.brian grid"}
    return " vs ".join(names[t] for t in timings)


# ---- the PSP ---------------------------------------------------------------------------------------

def _taus(tau_m, tau_s, shape=None):
    tm = as_seconds(tau_m, "tau_m", np.shape(tau_m) if shape is None else shape, minimum=0.0, strictly=True)
    ts = as_seconds(tau_s, "tau_s", np.shape(tau_s) if shape is None else shape, minimum=0.0, strictly=True)
    if np.any(np.abs(np.asarray(tm) - ts) <= TAU_RELATIVE_GAP * np.asarray(tm)):
        raise ValueError("tau_m must differ from tau_s (the equal-time-constant limit is not supported)")
    return tm, ts


def _peak_factor(tau_m, tau_s):
    """PSP peak per unit weight, (tau_s/tau_m)**(tau_m/(tau_m - tau_s))."""
    return (tau_s / tau_m) ** (tau_m / (tau_m - tau_s))


def psp_peak(tau_m, tau_s, weight=1.0):
    """Peak of the PSP of one input spike of ``weight``.

    Parameters
    ----------
    tau_m, tau_s : float, array or brian2 Quantity
        Membrane and synaptic time constants, s (tau_m != tau_s).
    weight : float or array
        Jump of the synaptic current I (units of V: dimensionless or volts).

    Returns
    -------
    float or ndarray
        ``weight (tau_s/tau_m)**(tau_m/(tau_m - tau_s))``, units of ``weight``.
    """
    tm, ts = _taus(tau_m, tau_s)
    w = as_voltage(weight, "weight", np.shape(weight))
    out = w * _peak_factor(tm, ts)
    return float(out) if np.ndim(out) == 0 else out


def weight_for_psp_peak(peak, tau_m, tau_s):
    """The weight (jump of I) whose single PSP peaks at ``peak`` (units of ``peak``; times in s)."""
    tm, ts = _taus(tau_m, tau_s)
    p = as_voltage(peak, "peak", np.shape(peak))
    out = p / _peak_factor(tm, ts)
    return float(out) if np.ndim(out) == 0 else out


# ---- coincidence window ----------------------------------------------------------------------------

def _pair_maximum(delta: float, tm: float, ts: float, w: float) -> float:
    """max_t V(t) for two spikes of weight w at 0 and delta >= 0 (exact, from the state after the second)."""
    k = ts / (tm - ts)
    v0 = w * k * (math.exp(-delta / tm) - math.exp(-delta / ts))
    i0 = w * (1.0 + math.exp(-delta / ts))
    s = peak_time(v0, i0, tm, ts)
    return v0 if s < 0.0 else max(v0, free_voltage(v0, i0, tm, ts, s))


def _window(tm: float, ts: float, w: float, theta: float) -> float:
    single = w * _peak_factor(tm, ts)
    if single >= theta:
        return math.inf           # one spike alone fires: every interval does
    if 2.0 * single < theta:
        return math.nan           # not even a perfect coincidence fires
    f = lambda d: _pair_maximum(d, tm, ts, w) - theta  # noqa: E731
    hi = max(tm, ts)
    while f(hi) >= 0.0:
        hi *= 2.0
    grid = np.linspace(0.0, hi, 65)
    values = np.array([f(d) for d in grid])
    last = int(np.flatnonzero(values >= 0.0)[-1])  # the largest interval that still fires
    if values[last] == 0.0:
        return float(grid[last])
    return float(brentq(f, grid[last], grid[last + 1], xtol=1e-15, rtol=4.5e-15, maxiter=200))


def coincidence_window(tau_m, tau_s, weight, theta=1.0) -> xr.DataArray:
    """The largest interval between two input spikes of ``weight`` for which the neuron still fires.

    Computed from the exact trajectory: the maximum of V after the second
    spike is in closed form, and the window is the root of
    ``max_t V(t; Delta) = theta`` in ``Delta`` (Brent's method after
    bracketing; see the module docstring).

    Parameters
    ----------
    tau_m : float, 1-d array or brian2 Quantity
        Membrane time constant, s.
    tau_s : float, 1-d array or brian2 Quantity
        Synaptic time constant, s (must differ from tau_m).
    weight : float, 1-d array or brian2 Quantity
        Weight of each of the two spikes (jump of I), > 0, units of theta.
    theta : float, 1-d array or brian2 Quantity
        Threshold above rest, > 0.

    Returns
    -------
    xarray.DataArray
        ``window`` in s, with one dimension per argument given as an array
        (named after it, in the order tau_m, tau_s, weight, theta) and a
        scalar coordinate for each scalar argument. ``inf`` where one spike
        alone reaches theta, ``NaN`` where two coincident spikes do not.

    References
    ----------
    König, Engel & Singer (1996), Trends Neurosci 19:130.

    Examples
    --------
    >>> from neurodelay.analysis.coincidence import coincidence_window
    >>> w = coincidence_window([5e-3, 10e-3, 20e-3], 1e-3, weight=3.0, theta=1.0)
    >>> w.dims
    ('tau_m',)
    """
    args = {}
    for name, value, dimension in (("tau_m", tau_m, "time"), ("tau_s", tau_s, "time"),
                                   ("weight", weight, "voltage"), ("theta", theta, "voltage")):
        if np.ndim(value) > 1:
            raise ValueError(f"{name} must be a scalar or 1-d, got shape {np.shape(value)}")
        conv = as_seconds if dimension == "time" else as_voltage
        arr = conv(value, name, np.shape(value))
        if np.ndim(value) == 1 and np.size(arr) == 0:
            raise ValueError(f"{name} is empty: give at least one value")
        if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
            raise ValueError(f"{name} must be finite and > 0, got {np.asarray(arr).tolist()!r}")
        args[name] = np.asarray(arr, dtype=float)
    dims = [n for n, a in args.items() if a.ndim == 1]
    grids = np.meshgrid(*[args[n] for n in dims], indexing="ij") if dims else []
    full = {n: (grids[dims.index(n)] if n in dims else np.full(tuple(len(args[d]) for d in dims), args[n]))
            for n in args}
    if np.any(np.abs(full["tau_m"] - full["tau_s"]) <= TAU_RELATIVE_GAP * full["tau_m"]):
        raise ValueError("tau_m must differ from tau_s (the equal-time-constant limit is not supported)")
    out = np.vectorize(_window, otypes=[float])(full["tau_m"], full["tau_s"], full["weight"], full["theta"])
    units = {"tau_m": "s", "tau_s": "s", "weight": "1", "theta": "1"}
    coords = {n: ((n, args[n], {"units": units[n]}) if n in dims else ((), float(args[n]), {"units": units[n]}))
              for n in args}
    da = xr.DataArray(out, dims=dims, coords=coords, name="window",
                      attrs={"units": "s", "long_name": "coincidence window (largest firing interval)"})
    return with_provenance(da, "coincidence_window", {n: args[n].tolist() for n in args}, None,
                           engine="closed form + root finding (no simulation)")


# ---- coincidence curve (jitter) ----------------------------------------------------------------------

def _pair_network(tau_m: float, tau_s: float, weight: float, theta: float, refractory: float) -> Network:
    return (Network().add(SpikeSource("inp", 2), LIF("out", 1, tau_m=tau_m, tau_s=tau_s, theta=theta,
                                                     refractory=refractory))
            .connect("inp", "out", weight))


def analytic_fire_probability(delta_t, jitter, window) -> np.ndarray:
    """P(fire) for intervals ``delta_t`` (s) with Gaussian jitter ``jitter`` (s) on each spike, given the window.

    The observed interval is N(delta_t, 2 jitter^2); the neuron fires iff it
    lies in [-window, window]. Broadcasts ``delta_t`` against ``jitter``.
    """
    d, s = np.broadcast_arrays(np.asarray(delta_t, float), np.asarray(jitter, float))
    inside = (np.abs(d) <= window).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.sqrt(2.0) * s
        p = ndtr((window - d) / scale) - ndtr((-window - d) / scale)
    return np.where(s > 0, p, inside)


def coincidence_curve(delta_t, jitter, *, tau_m=10e-3, tau_s=2.5e-3, weight=None, theta=1.0,
                      n_trials: int = 1000, seed, engine: str = "auto") -> xr.Dataset:
    """Probability of an output spike against the interval of two input spikes and their jitter.

    Each trial sends two spikes of ``weight`` to one LIF neuron at rest, the
    second ``delta_t`` after the first, each displaced by independent
    Gaussian jitter of standard deviation ``jitter``; the fraction of trials
    with an output spike is measured by exact simulation and returned with
    the analytic curve (module docstring) for comparison.

    Parameters
    ----------
    delta_t : 1-d array of float or brian2 Quantity
        Intervals between the two spikes, s.
    jitter : 1-d array of float or brian2 Quantity
        Standard deviation of the Gaussian jitter of each spike, s (>= 0).
    tau_m, tau_s : float or brian2 Quantity
        Membrane and synaptic time constants, s.
    weight : float, optional
        Weight of each spike (jump of I), units of theta. Default: the weight
        whose single PSP peaks at 0.6 theta.
    theta : float
        Threshold above rest, > 0.
    n_trials : int
        Trials per (delta_t, jitter) point.
    seed : int
        Seed of the jitter.
    engine : str or engine object
        Simulation engine for the exact runs.

    Returns
    -------
    xarray.Dataset
        Dims ``delta_t`` (s), ``jitter`` (s). ``p_fire`` (measured fraction),
        ``p_fire_stderr`` (binomial standard error), ``p_fire_analytic``, and
        the scalar ``window`` (s).

    References
    ----------
    König, Engel & Singer (1996), Trends Neurosci 19:130.

    Examples
    --------
    >>> from neurodelay.analysis.coincidence import coincidence_curve
    >>> ds = coincidence_curve([0.0, 5e-3], [0.0, 1e-3], n_trials=20, seed=1)
    >>> ds["p_fire"].dims
    ('delta_t', 'jitter')
    """
    engine = _check_engine(engine)
    delta = check_grid(delta_t, "delta_t", dimension="time")
    sigma = check_grid(jitter, "jitter", dimension="time", minimum=0.0)
    tm, ts = _taus(tau_m, tau_s, ())
    tm, ts = float(tm), float(ts)
    theta = float(as_voltage(theta, "theta", (), minimum=0.0, strictly=True))
    if weight is None:
        weight = 0.6 * theta / _peak_factor(tm, ts)
    weight = float(as_voltage(weight, "weight", (), minimum=0.0, strictly=True))
    n_trials = check_int(n_trials, "n_trials")
    rng = rng_from(seed)
    window = float(coincidence_window(tm, ts, weight, theta))

    n_points = len(delta) * len(sigma)
    t0 = 6.0 * sigma.max() + 1e-3 + max(0.0, -delta.min())
    d_grid, s_grid = np.meshgrid(delta, sigma, indexing="ij")
    d_rep = np.repeat(d_grid.ravel(), n_trials)
    s_rep = np.repeat(s_grid.ravel(), n_trials)
    total = n_points * n_trials
    times = np.stack([t0 + s_rep * rng.standard_normal(total), t0 + d_rep + s_rep * rng.standard_normal(total)],
                     axis=1)
    times = np.maximum(times, 0.0)  # beyond 6 sigma: never in practice
    duration = float(times.max()) + 10.0 * max(tm, ts)
    inputs = SpikeTrains(np.repeat(np.arange(total), 2), np.tile([0, 1], total), times.ravel(), total, 2)
    net = _pair_network(tm, ts, weight, theta, refractory=0.0)
    record = _simulate(net, inputs, duration, "exact", engine=engine)
    fired = np.isfinite(record.first_spike_times("out")[:, 0]).reshape(len(delta), len(sigma), n_trials)
    p = fired.mean(axis=2)
    ds = xr.Dataset(
        {"p_fire": (("delta_t", "jitter"), p, {"units": "1", "long_name": "P(output spike), simulated"}),
         "p_fire_stderr": (("delta_t", "jitter"), np.sqrt(p * (1 - p) / n_trials),
                           {"units": "1", "long_name": "binomial standard error of p_fire"}),
         "p_fire_analytic": (("delta_t", "jitter"),
                             analytic_fire_probability(d_grid, s_grid, window),
                             {"units": "1", "long_name": "P(|interval + jitter difference| <= window)"}),
         "window": ((), window, {"units": "s", "long_name": "coincidence window without jitter"})},
        coords={"delta_t": ("delta_t", delta, {"units": "s", "long_name": "interval between the two spikes"}),
                "jitter": ("jitter", sigma, {"units": "s", "long_name": "Gaussian jitter (SD) of each spike"})})
    ds.attrs["n_trials"] = n_trials
    params = {"delta_t": delta.tolist(), "jitter": sigma.tolist(), "tau_m": tm, "tau_s": ts, "weight": weight,
              "theta": theta, "n_trials": n_trials}
    return with_provenance(ds, "coincidence_curve", params, seed, _engine_label(("exact",), engine))


# ---- Rossant et al. 2011: sensitivity to coincident inputs ------------------------------------------

def _rossant_inputs(n_sync: int, n_exc: int, n_inh: int, rate_exc: float, rate_inh: float, sync_rate: float,
                    duration: float, n_trials: int, seed) -> SpikeTrains:
    """Excitatory (0..n_exc-1) then inhibitory background; excitatory 0..n_sync-1 also fire at the sync events."""
    seeds = seed.spawn(3)
    background = rate_exc - n_sync * sync_rate / n_exc
    exc = poisson_trains(n_exc, background, duration, n_trials=n_trials, seed=seeds[0])
    inh = poisson_trains(n_inh, rate_inh, duration, n_trials=n_trials, seed=seeds[1])
    rng = rng_from(seeds[2])
    trial, neuron, time = [exc.trial, inh.trial], [exc.neuron, inh.neuron + n_exc], [exc.time, inh.time]
    if n_sync:
        counts = rng.poisson(sync_rate * duration, n_trials)
        events = rng.uniform(0.0, duration, counts.sum())
        event_trial = np.repeat(np.arange(n_trials), counts)
        trial.append(np.repeat(event_trial, n_sync))
        neuron.append(np.tile(np.arange(n_sync), len(events)))
        time.append(np.repeat(events, n_sync))
    return SpikeTrains(np.concatenate(trial), np.concatenate(neuron), np.concatenate(time),
                       n_trials, n_exc + n_inh).sorted()


def _merge_afferents(n_exc: int, n_inh: int, n_sync: int, per_source: int) -> tuple[np.ndarray, int]:
    """Source neuron of each afferent (excitatory first) and the number of excitatory sources.

    Afferents 0..n_sync-1 keep a source each; the other excitatory ones share
    ceil((n_exc - n_sync) / per_source) sources, the inhibitory ones
    ceil(n_inh / per_source), round robin.
    """
    n_bg = -(-(n_exc - n_sync) // per_source)
    n_in = -(-n_inh // per_source)
    exc = np.r_[np.arange(n_sync), n_sync + np.arange(n_exc - n_sync) % max(n_bg, 1)]
    inh = n_sync + n_bg + np.arange(n_inh) % n_in
    return np.r_[exc, inh].astype(np.int64), n_sync + n_bg


def coincidence_gain(n_sync, *, n_exc: int = 4000, n_inh: int = 1000, rate_exc=1.0, rate_inh=1.0,
                     sync_rate=40.0, tau_m=5e-3, tau_s=3e-3, psp_peak_exc=0.5e-3, theta=10e-3,
                     refractory=5e-3, duration=2.0, n_trials: int = 5, seed, timings=("exact",),
                     dt=1e-4, device: str = "runtime", afferents_per_source: int = 8,
                     engine: str = "auto") -> xr.Dataset:
    """Output rate of a neuron under balanced Poisson background against the number of synchronous inputs.

    After Rossant et al. (2011): ``n_exc`` excitatory and ``n_inh``
    inhibitory Poisson inputs; ``n_sync`` excitatory inputs also fire
    together at Poisson events of ``sync_rate`` while every excitatory
    background rate drops by ``n_sync sync_rate / n_exc`` (total input rate
    and mean input unchanged). Excitation and inhibition share ``tau_s`` (the
    project's neuron has one synaptic time constant; the paper uses 3 ms and
    10 ms); the inhibitory weight makes the mean input zero. The same inputs
    are simulated with every timing in ``timings``.

    Parameters
    ----------
    n_sync : 1-d array of int
        Numbers of synchronous excitatory inputs (>= 0; 0 is the control).
    n_exc, n_inh : int
        Numbers of excitatory and inhibitory inputs.
    rate_exc, rate_inh : float or brian2 Quantity
        Rate of each input without synchrony, Hz.
    sync_rate : float or brian2 Quantity
        Rate of the synchronous events, Hz.
    tau_m, tau_s : float or brian2 Quantity
        Membrane and (shared) synaptic time constants, s.
    psp_peak_exc : float or brian2 Quantity
        Peak of one excitatory PSP, V (sets the excitatory weight).
    theta : float or brian2 Quantity
        Threshold above rest, V (reset to rest).
    refractory : float or brian2 Quantity
        Refractory period, s.
    duration : float or brian2 Quantity
        Length of each trial, s.
    n_trials : int
        Independent trials per value of n_sync.
    seed : int
        Seed of the input spike trains.
    timings : sequence of {"exact", "precise", "grid"}
        "exact": the exact engine (``engine``); "precise"/"grid": Brian2 in
        that mode at step ``dt`` on ``device``.
    dt : float or brian2 Quantity
        Brian2 step, s.
    device : {"runtime", "cpp_standalone", "cuda_standalone"}
        Brian2 device.
    afferents_per_source : int
        The background afferents are merged into source neurons of this many
        afferents each (the synchronous ones keep a source each). All
        excitatory (inhibitory) synapses are identical and undelayed, so the
        neuron's input is unchanged: exact for the event engine, and it keeps
        Brian2 fast (it steps every source neuron); on the Brian2 grid a source
        emits at most one spike per step, so two spikes of one merged source in
        the same step are one step apart (rare: rate x dt). 1: one source per
        afferent.
    engine : str or engine object
        Engine of the exact runs.

    Returns
    -------
    xarray.Dataset
        Dims ``timing``, ``n_sync``, ``trial``. ``rate`` (Hz, mean over
        trials), ``rate_stderr`` (Hz), ``count`` (output spikes per trial),
        ``gain`` (rate / rate at n_sync = 0, when 0 is in n_sync), coordinate
        ``sync_fraction`` = n_sync / n_exc; attributes with the weights.

    References
    ----------
    Rossant, Leijon, Magnusson & Brette (2011), J Neurosci 31:17193.

    Examples
    --------
    >>> from neurodelay.analysis.coincidence import coincidence_gain
    >>> ds = coincidence_gain([0, 15], duration=0.2, n_trials=1, seed=1)
    >>> ds["rate"].dims
    ('timing', 'n_sync')
    """
    engine = _check_engine(engine)
    timings = _check_timings(timings)
    n_sync_arr = check_grid(n_sync, "n_sync", minimum=0.0)
    if not np.all(n_sync_arr == np.round(n_sync_arr)):
        raise ValueError(f"n_sync must be whole numbers, got {n_sync_arr.tolist()}")
    n_sync_arr = n_sync_arr.astype(np.int64)
    n_exc, n_inh = check_int(n_exc, "n_exc"), check_int(n_inh, "n_inh")
    if n_sync_arr.max() > n_exc:
        raise ValueError(f"n_sync must be <= n_exc = {n_exc}, got {n_sync_arr.max()}")
    rate_exc, rate_inh = check_rate(rate_exc, "rate_exc"), check_rate(rate_inh, "rate_inh")
    sync_rate = check_rate(sync_rate, "sync_rate")
    if rate_exc <= 0 or rate_inh <= 0:
        raise ValueError("rate_exc and rate_inh must be > 0 (the inhibitory weight balances their mean input)")
    if n_sync_arr.max() * sync_rate > n_exc * rate_exc:
        raise ValueError(f"n_sync * sync_rate = {n_sync_arr.max() * sync_rate} Hz exceeds the total excitatory "
                         f"rate n_exc * rate_exc = {n_exc * rate_exc} Hz: background rates would be negative")
    tm, ts = _taus(tau_m, tau_s, ())
    tm, ts = float(tm), float(ts)
    peak = float(as_voltage(psp_peak_exc, "psp_peak_exc", (), minimum=0.0, strictly=True))
    theta = float(as_voltage(theta, "theta", (), minimum=0.0, strictly=True))
    refractory = check_seconds(refractory, "refractory", strictly=False)
    duration = check_seconds(duration, "duration")
    dt = check_seconds(dt, "dt")
    n_trials = check_int(n_trials, "n_trials")
    per_source = check_int(afferents_per_source, "afferents_per_source")
    root = np.random.SeedSequence(rng_from(seed).integers(2**63))

    w_exc = peak / _peak_factor(tm, ts)
    w_inh = -n_exc * rate_exc * w_exc / (n_inh * rate_inh)   # mean input sum(rate * w) * tau_s = 0
    source, n_exc_sources = _merge_afferents(n_exc, n_inh, int(n_sync_arr.max()), per_source)
    n_sources = int(source.max()) + 1
    net = (Network().add(SpikeSource("inp", n_sources),
                         LIF("out", 1, tau_m=tm, tau_s=ts, theta=theta, reset=0.0, refractory=refractory))
           .connect("inp", "out", np.where(np.arange(n_sources) < n_exc_sources, w_exc, w_inh)))
    parts = [_rossant_inputs(int(p), n_exc, n_inh, rate_exc, rate_inh, sync_rate, duration, n_trials, s)
             for p, s in zip(n_sync_arr, root.spawn(len(n_sync_arr)))]
    offsets = np.arange(len(parts)) * n_trials
    inputs = SpikeTrains(np.concatenate([p.trial + o for p, o in zip(parts, offsets)]),
                         source[np.concatenate([p.neuron for p in parts])],
                         np.concatenate([p.time for p in parts]), len(parts) * n_trials, n_sources).sorted()
    counts = np.zeros((len(timings), len(n_sync_arr), n_trials), np.int64)
    for k, timing in enumerate(timings):
        record = _simulate(net, inputs, duration, timing, engine=engine, dt=dt, device=device)
        counts[k] = record.spikes("out").counts()[:, 0].reshape(len(n_sync_arr), n_trials)
    rates = counts / duration
    ds = xr.Dataset(
        {"count": (("timing", "n_sync", "trial"), counts, {"units": "1", "long_name": "output spikes per trial"}),
         "rate": (("timing", "n_sync"), rates.mean(axis=2), {"units": "Hz", "long_name": "output rate"}),
         "rate_stderr": (("timing", "n_sync"),
                         rates.std(axis=2, ddof=1) / np.sqrt(n_trials) if n_trials > 1
                         else np.full(rates.shape[:2], np.nan),
                         {"units": "Hz", "long_name": "standard error of the rate over trials"})},
        coords={"timing": list(timings), "n_sync": ("n_sync", n_sync_arr, {"units": "1"}),
                "trial": np.arange(n_trials),
                "sync_fraction": ("n_sync", n_sync_arr / n_exc,
                                  {"units": "1", "long_name": "synchronous fraction of the excitatory inputs"})})
    if 0 in n_sync_arr:
        base = ds["rate"].sel(n_sync=0)
        ds["gain"] = (ds["rate"] / base.where(base > 0)).assign_attrs(
            units="1", long_name="output rate / rate without synchrony")
    ds.attrs.update(w_exc=w_exc, w_inh=w_inh, tau_s_note="one tau_s shared by excitation and inhibition",
                    dt=dt if set(timings) - {"exact"} else np.nan)
    params = {"n_sync": n_sync_arr.tolist(), "n_exc": n_exc, "n_inh": n_inh, "rate_exc": rate_exc,
              "rate_inh": rate_inh, "sync_rate": sync_rate, "tau_m": tm, "tau_s": ts, "psp_peak_exc": peak,
              "theta": theta, "refractory": refractory, "duration": duration, "n_trials": n_trials,
              "timings": list(timings), "dt": dt, "device": device, "afferents_per_source": per_source}
    return with_provenance(ds, "coincidence_gain", params, seed, _engine_label(timings, engine))


# ---- Jeffress delay lines ----------------------------------------------------------------------------

def _preferred_itd(n_detectors: int, delay_step: float) -> np.ndarray:
    return (2 * np.arange(n_detectors) - (n_detectors - 1)) * delay_step


def jeffress_network(n_detectors: int = 21, delay_step=0.05e-3, axon_base=0.5e-3, *, tau_m=1e-3,
                     tau_s=0.25e-3, theta=1.0, weight=4.5) -> Network:
    """Ear axon branches (source ``axons``: N left, then N right) -> detectors ``det`` (LIF), one-to-one.

    Detector k gets the left spike after ``axon_base + k delay_step`` and the
    right one after ``axon_base + (N-1-k) delay_step`` (axonal delays, s).
    ``weight`` (jump of I, units of theta) should make one input alone stay
    below theta and two coincident ones cross it.
    """
    n = check_int(n_detectors, "n_detectors", minimum=2)
    step = check_seconds(delay_step, "delay_step")
    base = check_seconds(axon_base, "axon_base", strictly=False)
    k = np.arange(n)
    axonal = np.concatenate([base + k * step, base + (n - 1 - k) * step])
    return (Network().add(SpikeSource("axons", 2 * n), LIF("det", n, tau_m=tau_m, tau_s=tau_s, theta=theta))
            .connect("axons", "det", weight, connectivity=(np.arange(2 * n), np.tile(k, 2)),
                     delays=Delays(axonal=axonal)))


def jeffress_inputs(itd, n_detectors: int = 21, ear_spike=2e-3) -> SpikeTrains:
    """One trial per ITD (s): the left branches fire at ``ear_spike`` (s), the right ones ITD later."""
    n_det = check_int(n_detectors, "n_detectors", minimum=2)
    itd = check_grid(itd, "itd", dimension="time")
    ear = check_seconds(ear_spike, "ear_spike", strictly=False)
    if np.any(ear + itd < 0):
        raise ValueError(f"itd: ear_spike + itd must be >= 0 (ear_spike = {ear} s, min itd {itd.min()} s)")
    n = 2 * n_det
    times = np.concatenate([np.r_[np.full(n_det, ear), np.full(n_det, ear + d)] for d in itd])
    return SpikeTrains(np.repeat(np.arange(len(itd)), n), np.tile(np.arange(n), len(itd)), times, len(itd), n)


def estimate_itd(first_spikes, preferred) -> np.ndarray:
    """ITD estimate (s) per trial from the detectors' first spike times (s; inf where silent).

    One earliest detector: its preferred ITD, refined by a parabola through
    its and its neighbours' first spike times (vertex offset in units of the
    spacing of ``preferred``). Several tied (possible on a time grid): the
    mean preferred ITD of the tied ones. NaN where no detector fires.
    """
    first = np.asarray(first_spikes, float)
    pref = np.asarray(preferred, float)
    if first.ndim != 2 or first.shape[1] != len(pref):
        raise ValueError(f"first_spikes must have shape (n_trials, {len(pref)}), got {first.shape}")
    spacing = pref[1] - pref[0] if len(pref) > 1 else 0.0
    out = np.full(len(first), np.nan)
    for n, row in enumerate(first):
        if not np.isfinite(row).any():
            continue
        earliest = np.flatnonzero(row == row.min())
        if len(earliest) > 1:
            out[n] = pref[earliest].mean()
            continue
        j = int(earliest[0])
        shift = 0.0
        if 0 < j < len(pref) - 1 and np.isfinite(row[j - 1]) and np.isfinite(row[j + 1]):
            a, b, c = row[j - 1], row[j], row[j + 1]
            curvature = a - 2 * b + c
            shift = 0.5 * (a - c) / curvature if curvature > 0 else 0.0
        out[n] = pref[j] + shift * spacing
    return out


def jeffress(itd, *, n_detectors: int = 21, delay_step=0.05e-3, axon_base=0.5e-3, tau_m=1e-3, tau_s=0.25e-3,
             theta=1.0, weight=4.5, ear_spike=2e-3, duration=10e-3, timings=("exact",), dt=0.1e-3,
             device: str = "runtime", history: int = 8, engine: str = "auto") -> xr.Dataset:
    """The Jeffress delay-line map: estimated against true interaural time difference.

    Parameters
    ----------
    itd : 1-d array of float or brian2 Quantity
        True ITDs (right ear later by this much), s.
    n_detectors : int
        Number of coincidence detectors N (>= 2).
    delay_step : float or brian2 Quantity
        Delay step delta along the array, s; detector k prefers
        ``(2k - N + 1) delta``.
    axon_base : float or brian2 Quantity
        Shortest axonal delay, s.
    tau_m, tau_s : float or brian2 Quantity
        Detector time constants, s.
    theta, weight : float
        Detector threshold and weight of each ear's spike (jump of I).
    ear_spike : float or brian2 Quantity
        Time of the left ear's spike, s.
    duration : float or brian2 Quantity
        Simulated time per ITD, s.
    timings : sequence of {"exact", "precise", "grid"}
        "exact": the exact engine (``engine``); "precise"/"grid": Brian2 in
        that mode at step ``dt`` on ``device``.
    dt : float or brian2 Quantity
        Brian2 step, s.
    device : {"runtime", "cpp_standalone", "cuda_standalone"}
        Brian2 device.
    history : int
        Spike history K per population for Brian2 precise mode.
    engine : str or engine object
        Engine of the exact runs.

    Returns
    -------
    xarray.Dataset
        Dims ``timing``, ``itd`` (s), ``detector``. ``estimated_itd`` (s),
        ``first_spike`` (s, inf where silent), ``preferred_itd`` (s).

    References
    ----------
    Jeffress (1948), J Comp Physiol Psychol 41:35; Brian2 example
    ``synapses/jeffress.py``.

    Examples
    --------
    >>> import numpy as np
    >>> from neurodelay.analysis.coincidence import jeffress
    >>> ds = jeffress(np.linspace(-0.4e-3, 0.4e-3, 5))
    >>> ds["estimated_itd"].dims
    ('timing', 'itd')
    """
    engine = _check_engine(engine)
    timings = _check_timings(timings)
    itds = check_grid(itd, "itd", dimension="time")
    n = check_int(n_detectors, "n_detectors", minimum=2)
    step = check_seconds(delay_step, "delay_step")
    duration = check_seconds(duration, "duration")
    dt = check_seconds(dt, "dt")
    history = check_int(history, "history")
    ear = check_seconds(ear_spike, "ear_spike", strictly=False)
    net = jeffress_network(n, step, axon_base, tau_m=tau_m, tau_s=tau_s, theta=theta, weight=weight)
    inputs = jeffress_inputs(itds, n, ear)
    pref = _preferred_itd(n, step)
    first = np.stack([_simulate(net, inputs, duration, t, engine=engine, dt=dt, device=device,
                                history={"axons": history, "det": history}).first_spike_times("det")
                      for t in timings])
    ds = xr.Dataset(
        {"estimated_itd": (("timing", "itd"), np.stack([estimate_itd(f, pref) for f in first]),
                           {"units": "s", "long_name": "estimated ITD"}),
         "first_spike": (("timing", "itd", "detector"), first,
                         {"units": "s", "long_name": "first spike time of each detector (inf: silent)"}),
         "preferred_itd": ("detector", pref, {"units": "s", "long_name": "ITD each detector prefers"})},
        coords={"timing": list(timings),
                "itd": ("itd", itds, {"units": "s", "long_name": "true ITD (right ear later)"}),
                "detector": np.arange(n)})
    ds.attrs.update(n_detectors=n, delay_step=step, dt=dt if set(timings) - {"exact"} else np.nan)
    params = {"itd": itds.tolist(), "n_detectors": n, "delay_step": step, "axon_base": float(net.projections[0]
              .delays.axonal.min()), "tau_m": float(net["det"].tau_m[0]), "tau_s": float(net["det"].tau_s[0]),
              "theta": float(net["det"].theta[0]), "weight": float(net.projections[0].weight[0]),
              "ear_spike": ear, "duration": duration, "timings": list(timings), "dt": dt,
              "device": device, "history": history}
    return with_provenance(ds, "jeffress", params, None, _engine_label(timings, engine))
