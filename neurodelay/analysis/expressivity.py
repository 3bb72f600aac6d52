"""What delays add to a neuron's expressivity: shattering and capacity.

One neuron of the project's model (LIF, exponential current synapse, time
constants tau_m > tau_s, threshold theta)::

    tau_m dV/dt = -V + I,   tau_s dI/dt = -I,   a spike of input i at t makes I jump by w_i at t + d_i

"fires" on an input pattern exactly when its free trajectory (the one without
a threshold) reaches theta: before its first spike the LIF neuron follows that
trajectory. With PSP kernel ``K(s) = (exp(-s/tau_m) - exp(-s/tau_s)) / k_peak``
(peak 1, zero for s <= 0) and weights ``v_i = w_i k_peak tau_s / (tau_m - tau_s)``
in units of the threshold-normalised PSP peak, ``V(t) = theta sum_i v_i K(t - t_i - d_i)``.

Three questions, three functions:

* :func:`cover_fraction` — Cover's (1965) counting function: of the 2^P
  dichotomies of P points in general position in N dimensions,
  ``C(P, N) = 2 sum_{k<N} binom(P-1, k)`` are linearly separable; the fraction
  is exactly 1/2 at P = 2N (the perceptron's alpha_c = 2).
* :func:`shattering` — binary coding (input i spikes at t = 0 or not), plus by
  default a bias input that spikes in every pattern. The largest set of
  patterns on which *every* labelling (fire / silent) is realised:

  - ``mode="weights"`` (one common delay): the neuron fires iff
    ``sum_i v_i x_i >= 1`` (the common PSP peaks together), a linear threshold
    function with threshold fixed at 1 > 0. A labelling is realisable iff the
    linear programme ``u.z_k >= 1`` (fire), ``u.z_k <= -1`` (silent), ``c >= 1``
    over ``u = (v, c)``, ``z_k = (x_k, -1)`` is feasible (strict inequalities
    and c > 0 scale into these), decided exactly by HiGHS. With the bias input
    the answer is n + 1 (a threshold gate, Radon's theorem); without it n (the
    all-silent pattern never fires; n + 1 points would need c <= 0).
  - ``mode="delays"`` (weights fixed, delays on a grid): every delay setting of
    the grid is enumerated and its truth table over all 2^n patterns computed
    exactly (closed-form maximum of V between arrivals). Exact on the grid.
  - ``mode="both"``: per labelling one mixed-integer linear programme over
    the whole delay grid at once: binary ``z_ig`` picks input i's delay, the
    continuous ``u_ig`` (``|u_ig| <= w_max z_ig``) is its weight, so V at any
    time is linear in u. "Fires" is an OR over candidate peak times (binary
    selection), "silent" is V <= 1 - margin on a fine time grid; the solution
    is then checked exactly (closed-form maximum) and any violating maximum
    is added to the grid (cutting planes) until it holds.

  Maass & Schmitt (1999) show VC dimension Theta(n log n) with delays, the
  lower bound with weights fixed. Search over pattern sets: exhaustive
  (level-wise over all sets, which are downward closed) when the domain has
  at most ``exhaustive_max`` patterns, otherwise a randomised greedy search
  (random restarts, add points while the set stays shattered) within a time
  budget; the Dataset says which (``search`` attribute). With delays on a
  finite grid and bounded weights, "not shattered" is a statement about that
  grid: the delay results are lower bounds on the model's true values.
* :func:`capacity` — the tempotron protocol (Gütig & Sompolinsky 2006):
  P = alpha N patterns, each afferent spiking once at a uniform time in T,
  random labels; the neuron is trained by the tempotron rule (one pattern at
  a time, every wrong pattern moving the parameters along the gradient of its
  exact voltage maximum, with momentum; compiled) or by Adam on the exact
  gradients (:func:`neurodelay.gradients.loss_and_grad`) of a hinge on its
  maximum voltage with margin (:class:`neurodelay.losses.MaxVoltageHinge`),
  learning weights, delays or both; either way the trained neuron is then
  evaluated on the event engine. :func:`critical_load` gives alpha_c, where the
  fraction of runs that classify all patterns crosses 1/2.

References
----------
T. M. Cover (1965), IEEE Trans. Electron. Comput. EC-14:326.
W. Maass & M. Schmitt (1999), Information and Computation 153:26-46.
R. Gütig & H. Sompolinsky (2006), Nature Neuroscience 9:420-428.
R. Rubin, R. Monasson & H. Sompolinsky (2010), Phys. Rev. Lett. 105:218102.
"""

from __future__ import annotations

import itertools
import math
import time as _time

import numpy as np
import xarray as xr
from numba import njit
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.special import comb

from ..delays import Delays
from ..events.dynamics import free_voltage, peak_time
from ..gradients import get_param, loss_and_grad, set_param
from ..losses import MaxVoltageHinge
from ..network import LIF, Network, Readout, SpikeSource
from ..spikes import SpikeTrains
from ..units import as_seconds
from .common import (check_grid, check_int, check_positive, check_seconds, rng_from, single_spike_patterns,
                     with_provenance)

__all__ = ["cover_fraction", "shattering", "capacity", "capacity_point", "critical_load", "tempotron_task",
           "binary_patterns", "single_neuron", "psp_peak", "LEARN_MODES", "SHATTER_MODES"]

LEARN_MODES = ("weights", "delays", "both")
SHATTER_MODES = ("weights", "delays", "both")
_SOURCE, _NEURON = "inputs", "neuron"


def _engine(engine, net=None) -> str:
    """The single place where the engine is chosen: its registered name (:mod:`neurodelay.engines`)."""
    from ..engines import get_engine
    return get_engine(engine, net).name


def _simulate(net, inputs, duration, engine="auto"):
    from ..simulation import simulate
    return simulate(net, inputs, duration, engine=engine)


def _time_constants(tau_m, tau_s) -> tuple[float, float]:
    tau_m = check_seconds(tau_m, "tau_m")
    tau_s = check_seconds(tau_s, "tau_s")
    if not tau_s < tau_m * (1 - 1e-6):
        raise ValueError(f"tau_s must be smaller than tau_m, got tau_s = {tau_s} s, tau_m = {tau_m} s")
    return tau_m, tau_s


def psp_peak(tau_m, tau_s) -> tuple[float, float]:
    """Peak of V after a unit jump of I (V = I = 0 before) and its time (s), for tau_m > tau_s.

    Parameters
    ----------
    tau_m, tau_s : float or brian2 Quantity
        Membrane and synaptic time constants, s.

    Returns
    -------
    (float, float)
        The peak (units of the weight) and the time of the peak, s.
    """
    tau_m, tau_s = _time_constants(tau_m, tau_s)
    t_peak = tau_m * tau_s / (tau_m - tau_s) * math.log(tau_m / tau_s)
    return tau_s / (tau_m - tau_s) * (math.exp(-t_peak / tau_m) - math.exp(-t_peak / tau_s)), t_peak


# ------------------------------------------------------------------------------------- Cover -----
def cover_fraction(n_patterns, n_inputs) -> xr.DataArray:
    """Fraction of dichotomies of P points in general position that a perceptron with N inputs realises.

    ``C(P, N) / 2^P = 2^(1-P) sum_{k=0}^{N-1} binom(P-1, k)`` (Cover 1965), the
    perceptron without bias (homogeneous separation through the origin).

    Parameters
    ----------
    n_patterns : int or array of int
        P, the number of points (>= 1).
    n_inputs : int
        N, the dimension (>= 1).

    Returns
    -------
    xarray.DataArray
        The fraction (dimensionless, in (0, 1]); dimension ``n_patterns`` when
        an array is given, a scalar otherwise; attribute ``alpha`` = P / N.

    References
    ----------
    T. M. Cover (1965), IEEE Trans. Electron. Comput. EC-14:326-334.

    Examples
    --------
    >>> float(cover_fraction(20, 10))
    0.5
    """
    n_inputs = check_int(n_inputs, "n_inputs")
    scalar = np.ndim(n_patterns) == 0
    values = np.atleast_1d(n_patterns)
    if values.size == 0:
        raise ValueError("n_patterns is empty: give at least one value")
    p = np.array([check_int(v, "n_patterns") for v in values.tolist()])
    k = np.arange(n_inputs)
    frac = np.array([math.fsum(comb(q - 1, k, exact=False)) * 2.0 ** (1 - q) if q <= 1000 else
                     float(np.exp(np.logaddexp.reduce(_log_comb(q - 1, k)) + (1 - q) * math.log(2.0)))
                     for q in p])
    frac = np.minimum(frac, 1.0)
    attrs = {"units": "1", "long_name": "fraction of linearly separable dichotomies (Cover)"}
    if scalar:
        out = xr.DataArray(frac[0], attrs=attrs)
        out.attrs["alpha"] = float(p[0] / n_inputs)
    else:
        out = xr.DataArray(frac, dims="n_patterns", coords={"n_patterns": p, "alpha": ("n_patterns", p / n_inputs)},
                           attrs=attrs)
    return with_provenance(out, "expressivity.cover_fraction", {"n_inputs": n_inputs}, None, "none")


def _log_comb(n: int, k: np.ndarray) -> np.ndarray:
    from scipy.special import gammaln
    k = np.asarray(k)
    out = np.full(k.shape, -np.inf)
    ok = k <= n
    out[ok] = gammaln(n + 1) - gammaln(k[ok] + 1) - gammaln(n - k[ok] + 1)
    return out


# ---------------------------------------------------------------------- exact voltage maxima -----
@njit(cache=True)
def _max_free(times, weights, tau_m, tau_s):
    """Maximum over t >= 0 of the free V from arrivals (sorted times s, jumps of I) and its time."""
    v, i, t_last = 0.0, 0.0, 0.0
    best, best_t = 0.0, 0.0
    n = times.shape[0]
    for q in range(n + 1):
        span = times[q] - t_last if q < n else np.inf
        s_peak = peak_time(v, i, tau_m, tau_s)
        if 0.0 < s_peak < span:
            vp = free_voltage(v, i, tau_m, tau_s, s_peak)
            if vp > best:
                best, best_t = vp, t_last + s_peak
        if q < n:
            v = free_voltage(v, i, tau_m, tau_s, span)
            if v > best:
                best, best_t = v, times[q]
            i = i * math.exp(-span / tau_s) + weights[q]
            t_last = times[q]
    return best, best_t


@njit(cache=True, nogil=True)
def _pattern_maxima(patterns, weights, delays, tau_m, tau_s):
    """Exact max of V for each binary pattern (rows of 0/1, every spike at t = 0): (n_patterns,) maxima, times."""
    n_pat, n_in = patterns.shape
    order = np.argsort(delays)
    vmax = np.empty(n_pat)
    tmax = np.empty(n_pat)
    for p in range(n_pat):
        cnt = 0
        for q in range(n_in):
            if patterns[p, order[q]]:
                cnt += 1
        ts = np.empty(cnt)
        ws = np.empty(cnt)
        c = 0
        for q in range(n_in):
            j = order[q]
            if patterns[p, j]:
                ts[c] = delays[j]
                ws[c] = weights[j]
                c += 1
        vmax[p], tmax[p] = _max_free(ts, ws, tau_m, tau_s)
    return vmax, tmax


@njit(cache=True)
def _pattern_max(times_row, weights, delays, order, arrival, tau_m, tau_s):
    """Exact max of V and its time for one pattern (one spike per afferent at `times_row`).

    Fills `arrival` with each afferent's arrival time; `order` sorts the afferents by it, or is
    empty to sort here.
    """
    for i in range(times_row.shape[0]):
        arrival[i] = times_row[i] + delays[i]
    idx = np.argsort(arrival) if order.shape[0] == 0 else order
    return _max_free(arrival[idx], weights[idx], tau_m, tau_s)


@njit(cache=True, nogil=True)
def _tempotron_epochs(times, labels, weights, delays, learn_w, learn_d, lr_w, lr_d, momentum, margin, max_delay,
                      tau_m, tau_s, epochs, seed):
    """Gütig & Sompolinsky's tempotron rule with momentum, on the exact voltage maximum, in place.

    times (P, N): each afferent's spike time per pattern (s); labels (P,): 1 fire / 0 silent;
    weights, delays (N,): updated in place. A pattern whose maximum V is on the wrong side of
    theta = 1 (or within `margin` of it) moves every parameter along the gradient of that
    maximum (dV_max/dw_i = k(t_max - t_i - d_i), dV_max/dd_i = -w_i k'(...), k the PSP of a
    unit jump of I), with momentum. Patterns are visited in a seeded random order each epoch.
    Returns (epochs run, errors in the last epoch): 0 errors means every pattern was
    classified correctly during a whole epoch (no parameter changed during it when margin = 0).
    """
    n_pat, n_in = times.shape
    np.random.seed(seed)
    dw = np.zeros(n_in)
    dd = np.zeros(n_in)
    c = tau_s / (tau_m - tau_s)
    order = np.arange(n_pat)
    arrival = np.empty(n_in)
    unsorted = np.empty(0, np.int64)
    presorted = np.empty((n_pat if not learn_d else 0, n_in), np.int64)
    for p in range(presorted.shape[0]):
        presorted[p] = np.argsort(times[p] + delays)
    epoch, errors = 0, n_pat
    for epoch in range(1, epochs + 1):
        np.random.shuffle(order)
        errors = 0
        for q in range(n_pat):
            p = order[q]
            vmax, tmax = _pattern_max(times[p], weights, delays, unsorted if learn_d else presorted[p], arrival,
                                      tau_m, tau_s)
            fire = labels[p] == 1
            if (vmax >= 1.0) != fire:
                errors += 1
            if fire:
                update, sign = vmax < 1.0 + margin, 1.0
            else:
                update, sign = vmax >= 1.0 - margin, -1.0
            if not update:
                continue
            for i in range(n_in):
                s = tmax - arrival[i]
                gw, gd = 0.0, 0.0
                if s > 0.0:
                    em, es = math.exp(-s / tau_m), math.exp(-s / tau_s)
                    gw = c * (em - es)
                    gd = -weights[i] * c * (es / tau_s - em / tau_m)
                if learn_w:
                    dw[i] = momentum * dw[i] + sign * lr_w * gw
                    weights[i] += dw[i]
                if learn_d:
                    dd[i] = momentum * dd[i] + sign * lr_d * gd
                    delays[i] = min(max(delays[i] + dd[i], 0.0), max_delay)
        if errors == 0:
            break
    return epoch, errors


@njit(cache=True, nogil=True)
def _spike_pattern_maxima(times, weights, delays, tau_m, tau_s):
    """Exact max of V and its time for each pattern (row of spike times, one spike per afferent)."""
    n_pat, n_in = times.shape
    vmax = np.empty(n_pat)
    tmax = np.empty(n_pat)
    arrival = np.empty(n_in)
    unsorted = np.empty(0, np.int64)
    for p in range(n_pat):
        vmax[p], tmax[p] = _pattern_max(times[p], weights, delays, unsorted, arrival, tau_m, tau_s)
    return vmax, tmax


def _psp_rows(times, delays, pattern_index, at, tau_m, tau_s) -> np.ndarray:
    """V per unit weight of every afferent at time `at[r]` of pattern `pattern_index[r]` (rows, N)."""
    s = at[:, None] - times[pattern_index] - delays[None, :]
    pos = np.maximum(s, 0.0)
    return np.where(s > 0, tau_s / (tau_m - tau_s) * (np.exp(-pos / tau_m) - np.exp(-pos / tau_s)), 0.0)


def _polish_weights(times, delays, labels, weights, tau_m, tau_s, margin=1e-3, max_rounds=40, slack_cost=1e3):
    """Cutting-plane linear programme on the weights (delays fixed), started from a trained neuron.

    V is linear in the weights at any fixed time. Each round holds every "fire"
    pattern's current time of maximum and asks V >= 1 + margin there (with a
    slack, costed `slack_cost` per unit, so the programme is always feasible:
    zero weights satisfy every "silent" constraint), and V <= 1 - margin for
    the "silent" patterns at every maximum found so far (cutting planes),
    minimising the slack and the L1 change of the weights (HiGHS). After each
    solve the exact maxima are recomputed: silent patterns that reach
    1 - margin / 2 add their new maximum as a cut, fire patterns move their
    held time to their new maximum. A fire pattern with zero slack has
    V >= 1 + margin at its held time, hence a maximum above threshold: when no
    slack is left and no cut is added, every pattern is classified correctly
    (exactly, by the closed-form maxima).

    Returns (weights, rounds, solved): the polished weights (the input ones
    unless it solved), the number of LP solves, and whether it solved.
    """
    fire = np.flatnonzero(labels == 1)
    silent = np.flatnonzero(labels == 0)
    _, tmax = _spike_pattern_maxima(times, weights, delays, tau_m, tau_s)
    cut_pat, cut_t = silent.copy(), tmax[silent].copy()
    n, nf = weights.size, fire.size
    for rounds in range(1, max_rounds + 1):
        a_fire = -_psp_rows(times, delays, fire, tmax[fire], tau_m, tau_s)
        a_sil = _psp_rows(times, delays, cut_pat, cut_t, tau_m, tau_s)
        # variables: u, v >= 0 (w = weights + u - v), fire slacks >= 0
        a_ub = np.vstack([np.hstack([a_fire, -a_fire, -np.eye(nf)]),
                          np.hstack([a_sil, -a_sil, np.zeros((cut_pat.size, nf))])])
        b_ub = np.concatenate([np.full(nf, -(1.0 + margin)) - a_fire @ weights,
                               np.full(cut_pat.size, 1.0 - margin) - a_sil @ weights])
        cost = np.concatenate([np.ones(2 * n), np.full(nf, slack_cost)])
        res = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=(0, None), method="highs")
        if res.status != 0:
            return weights, rounds, False
        w = weights + res.x[:n] - res.x[n:2 * n]
        vmax, tmax = _spike_pattern_maxima(times, w, delays, tau_m, tau_s)
        new = silent[vmax[silent] >= 1.0 - margin / 2]
        if new.size == 0 and np.all(vmax[fire] >= 1.0 + margin / 2):
            return w, rounds, True
        cut_pat = np.concatenate([cut_pat, new])
        cut_t = np.concatenate([cut_t, tmax[new]])
    return weights, max_rounds, False


@njit(cache=True, nogil=True)
def _delay_truth_tables(patterns, weights, grid, n_settings, theta, tau_m, tau_s):
    """Truth table (bit p set when pattern p fires) of every delay setting on the grid (mixed radix)."""
    n_in = patterns.shape[1]
    g = grid.shape[0]
    out = np.zeros(n_settings, np.int64)
    delays = np.empty(n_in)
    for s in range(n_settings):
        r = s
        for j in range(n_in):
            delays[j] = grid[r % g]
            r //= g
        vmax, _ = _pattern_maxima(patterns, weights, delays, tau_m, tau_s)
        code = 0
        for p in range(patterns.shape[0]):
            if vmax[p] >= theta:
                code |= 1 << p
        out[s] = code
    return out


def binary_patterns(n_inputs: int, bias: bool = True) -> np.ndarray:
    """All 2^n binary input patterns (rows; pattern p has input i on iff bit i of p is set), plus a bias column.

    Parameters
    ----------
    n_inputs : int
        n, >= 1.
    bias : bool
        Append a column of ones (the bias input, spiking in every pattern).

    Returns
    -------
    numpy.ndarray
        uint8 array of shape (2^n, n + bias).
    """
    n_inputs = check_int(n_inputs, "n_inputs")
    p = np.arange(2 ** n_inputs)
    bits = ((p[:, None] >> np.arange(n_inputs)) & 1).astype(np.uint8)
    return np.hstack([bits, np.ones((len(p), 1), np.uint8)]) if bias else bits


def single_neuron(weights, delays, *, tau_m=15e-3, tau_s=3.75e-3, theta=1.0, readout: bool = False) -> Network:
    """One neuron (LIF, or a non-spiking readout) driven by ``len(weights)`` inputs through synaptic delays.

    Parameters
    ----------
    weights : array
        Jump of I per input spike (units of theta).
    delays : array or brian2 Quantity
        Transmission delay per input, s (>= 0).
    tau_m, tau_s : float or brian2 Quantity
        Time constants, s.
    theta : float
        Threshold of the LIF neuron.
    readout : bool
        Build a :class:`~neurodelay.network.Readout` (the free trajectory) instead of an LIF neuron.

    Returns
    -------
    Network
        Populations ``inputs`` (spike source) and ``neuron``; projection ``inputs->neuron``.
    """
    weights = np.asarray(weights, dtype=float)
    if weights.ndim != 1 or weights.size == 0:
        raise ValueError(f"weights must be a non-empty 1-d array, got shape {weights.shape}")
    delays = as_seconds(delays, "delays", weights.shape, minimum=0.0)
    n = weights.size
    target = Readout(_NEURON, 1, tau_m=tau_m, tau_s=tau_s) if readout else LIF(_NEURON, 1, tau_m=tau_m,
                                                                             tau_s=tau_s, theta=theta)
    net = Network().add(SpikeSource(_SOURCE, n), target)
    return net.connect(_SOURCE, _NEURON, weights, (np.arange(n), np.zeros(n, np.int64)), Delays(synaptic=delays))


# ------------------------------------------------------------------------------ realisability -----
class _Problem:
    """Realisability of labellings of binary patterns for one mode (all weights in PSP-peak units, theta = 1)."""

    def __init__(self, n_inputs, mode, bias, tau_m, tau_s, grid, fixed_weights, w_max, margin, time_limit=5.0):
        self.n, self.mode, self.bias = n_inputs, mode, bias
        self.time_limit = time_limit
        self.tau_m, self.tau_s = tau_m, tau_s
        self.peak, self.t_peak = psp_peak(tau_m, tau_s)
        self.patterns = binary_patterns(n_inputs, bias)             # (2^n, n + bias)
        self.grid = grid
        self.fixed = fixed_weights
        self.w_max, self.margin = w_max, margin
        self.functions: dict[int, tuple] = {}                         # truth table -> (weights v, delays s)
        self.lp_calls = 0
        self.timeouts = 0                                             # MILPs stopped by the time limit

    # exact check of a realisation over all patterns: truth table (bit p: pattern p fires)
    def truth_table(self, v, d) -> int:
        vmax, _ = _pattern_maxima(self.patterns, np.asarray(v, float) / self.peak, np.asarray(d, float),
                                  self.tau_m, self.tau_s)
        return int(sum(1 << p for p in np.flatnonzero(vmax >= 1.0)))

    def add(self, v, d) -> int:
        code = self.truth_table(v, d)
        self.functions.setdefault(code, (np.asarray(v, float), np.asarray(d, float)))
        return code

    # --- weights: one LP
    def lp(self, points, labels):
        self.lp_calls += 1
        z = self.patterns[list(points)].astype(float)
        m = z.shape[1]
        sign = np.where(labels, -1.0, 1.0)                   # rows: sign * (v.z - c) <= -1
        a_ub = sign[:, None] * np.hstack([z, -np.ones((len(z), 1))])
        b_ub = -np.ones(len(z))
        cost = np.zeros(m + 1)
        cost[-1] = 1.0                                       # smallest c: the largest relative margin 1 / c
        bounds = [(None, None)] * m + [(1.0, None)]
        res = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs")
        if res.status == 2:
            return None
        if res.status != 0:
            raise RuntimeError(f"linprog failed ({res.message})")
        v = res.x[:m] / res.x[m]                             # theta-normalised: fires iff v.x >= 1
        return v, np.zeros(m)

    # --- both: one MILP over the delay grid, refined by exact checks
    def milp(self, points, labels):
        n_in = self.patterns.shape[1]
        grid = self.grid
        g = len(grid)
        span = grid[-1] + 6 * self.tau_m
        t_fine = list(np.arange(0.0, span, self.tau_s / 3.0))
        t_pos = grid + self.t_peak                                # candidate peak times of a firing pattern
        pts = list(points)
        pos = [p for p, lab in zip(pts, labels) if lab]
        neg = [p for p, lab in zip(pts, labels) if not lab]
        extra = {p: [] for p in neg}
        big = 1.0 + self.margin + self.w_max * n_in

        def kern(times):
            s = np.asarray(times)[None, :] - grid[:, None]       # (g, m)
            out = np.where(s > 0, np.exp(-np.maximum(s, 0) / self.tau_m) - np.exp(-np.maximum(s, 0) / self.tau_s),
                           0.0)
            return out * (self.tau_s / (self.tau_m - self.tau_s)) / self.peak

        k_pos = kern(t_pos)
        n_u = n_in * g
        n_y = len(pos) * len(t_pos)
        for _ in range(20):
            self.lp_calls += 1
            n_var = 2 * n_u + n_y                                 # u (continuous), z (binary), y (binary)
            rows, lo, hi = [], [], []

            def row():
                r = np.zeros(n_var)
                rows.append(r)
                return r
            for i in range(n_in):                                 # one delay per input
                r = row()
                r[n_u + i * g: n_u + (i + 1) * g] = 1
                lo.append(1)
                hi.append(1)
            for q in range(n_u):                                  # |u| <= w_max z
                r = row()
                r[q], r[n_u + q] = 1, -self.w_max
                lo.append(-np.inf)
                hi.append(0)
                r = row()
                r[q], r[n_u + q] = -1, -self.w_max
                lo.append(-np.inf)
                hi.append(0)
            for a, p in enumerate(pos):
                x = self.patterns[p]
                r = row()
                r[2 * n_u + a * len(t_pos): 2 * n_u + (a + 1) * len(t_pos)] = 1
                lo.append(1)
                hi.append(np.inf)
                for m in range(len(t_pos)):                       # V(t_m) >= 1 + margin - big (1 - y)
                    r = row()
                    for i in np.flatnonzero(x):
                        r[i * g:(i + 1) * g] = k_pos[:, m]
                    r[2 * n_u + a * len(t_pos) + m] = -big
                    lo.append(1 + self.margin - big)
                    hi.append(np.inf)
            for p in neg:
                x = self.patterns[p]
                k_neg = kern(np.concatenate([t_fine, extra[p]]))
                for m in range(k_neg.shape[1]):                   # V(t_m) <= 1 - margin
                    r = row()
                    for i in np.flatnonzero(x):
                        r[i * g:(i + 1) * g] = k_neg[:, m]
                    lo.append(-np.inf)
                    hi.append(1 - self.margin)
            integrality = np.r_[np.zeros(n_u), np.ones(n_u + n_y)]
            lb = np.r_[np.full(n_u, -self.w_max), np.zeros(n_u + n_y)]
            ub = np.r_[np.full(n_u, self.w_max), np.ones(n_u + n_y)]
            res = milp(np.zeros(n_var), constraints=LinearConstraint(np.array(rows), lo, hi),
                       integrality=integrality, bounds=Bounds(lb, ub), options={"time_limit": self.time_limit})
            if res.status == 2 or res.x is None:
                self.timeouts += res.status != 2
                return None                                       # infeasible (or no solution in time)
            u = res.x[:n_u].reshape(n_in, g)
            zb = res.x[n_u:2 * n_u].reshape(n_in, g)
            v = u.sum(axis=1)
            d = grid[np.argmax(zb, axis=1)]
            vmax, tmax = _pattern_maxima(self.patterns[pts], v / self.peak, d, self.tau_m, self.tau_s)
            bad = False
            for p, lab, vm, tm in zip(pts, labels, vmax, tmax):
                if not lab and vm > 1 - self.margin / 2:
                    extra[p].append(tm)
                    bad = True
                elif lab and vm < 1 + self.margin / 2:            # cannot happen: V >= 1 + margin on the grid
                    raise RuntimeError("MILP solution does not fire where it should")
            if not bad:
                return v, d
        return None

    def solve(self, points, labels):
        """A realisation (v, d) of the labelling of the given patterns, or None."""
        if self.mode == "weights":
            return self.lp(points, labels)
        if self.mode == "both":
            sol = self.lp(points, labels)                        # a common delay first (weights only)
            return sol if sol is not None else self.milp(points, labels)
        return None                                              # delays: every function is enumerated

    def enumerate_delays(self):
        """Every delay setting of the grid with the fixed weights (exact truth tables)."""
        n_in = self.patterns.shape[1]
        n_settings = len(self.grid) ** n_in
        codes = _delay_truth_tables(self.patterns, self.fixed / self.peak, self.grid, n_settings, 1.0,
                                    self.tau_m, self.tau_s)
        codes, first = np.unique(codes, return_index=True)
        for code, s in zip(codes.tolist(), first.tolist()):
            digits = [(s // len(self.grid) ** j) % len(self.grid) for j in range(n_in)]
            self.functions[int(code)] = (self.fixed.copy(), self.grid[digits])
        # keep only realisations that are clear of the threshold (re-simulation must agree)
        for code in list(self.functions):
            v, d = self.functions[code]
            vmax, _ = _pattern_maxima(self.patterns, v / self.peak, d, self.tau_m, self.tau_s)
            if np.any(np.abs(vmax - 1.0) < 1e-9):
                del self.functions[code]


def _labelling_codes(table_codes: np.ndarray, points) -> np.ndarray:
    """For each known truth table, its labelling of `points` as an integer (bit j: points[j] fires)."""
    out = np.zeros(len(table_codes), np.int64)
    for j, p in enumerate(points):
        out |= ((table_codes >> p) & 1) << j
    return out


class _Search:
    def __init__(self, problem: _Problem, deadline: float):
        self.pb = problem
        self.deadline = deadline
        self.codes = np.zeros(0, np.int64)
        self.refresh()

    def refresh(self):
        self.codes = np.fromiter(self.pb.functions.keys(), np.int64, len(self.pb.functions))

    def shattered(self, points) -> bool:
        """True when every labelling of `points` is realised (new realisations are solved and cached)."""
        k = len(points)
        have = np.zeros(2 ** k, bool)
        have[np.unique(_labelling_codes(self.codes, points))] = True
        missing = np.flatnonzero(~have)
        if missing.size and self.pb.mode == "delays":
            return False
        for lab in missing:
            labels = [(lab >> j) & 1 == 1 for j in range(k)]
            sol = self.pb.solve(points, labels)
            if sol is None:
                return False
            self.pb.add(*sol)
            self.refresh()
        return True

    def exhaustive(self):
        """Level-wise over all pattern sets (shattered sets are downward closed). Returns (best set, complete)."""
        n_dom = len(self.pb.patterns)
        level = [(p,) for p in range(n_dom) if self.shattered((p,))]
        best = level[0] if level else ()
        while level:
            known = set(level)
            nxt = []
            for s in level:
                for p in range(s[-1] + 1, n_dom):
                    cand = s + (p,)
                    if all(cand[:j] + cand[j + 1:] in known for j in range(len(cand) - 1)) and self.shattered(cand):
                        nxt.append(cand)
                    if _time.monotonic() > self.deadline:
                        return best, False
            if nxt:
                best = nxt[0]
            level = nxt
        return best, True

    def greedy(self, rng, start=(), bound=None):
        """Random restarts: grow a set point by point while it stays shattered; stops at the time budget or
        when a set reaches the upper bound `bound`. Returns (largest set found, restarts)."""
        n_dom = len(self.pb.patterns)
        best = tuple(start)
        restarts = 0
        while True:
            s = tuple(start) if restarts == 0 else ()
            for p in rng.permutation(n_dom):
                if p in s:
                    continue
                cand = tuple(sorted(s + (int(p),)))
                if self.shattered(cand):
                    s = cand
                if _time.monotonic() > self.deadline:
                    break
            if len(s) > len(best):
                best = s
            restarts += 1
            if _time.monotonic() > self.deadline or restarts >= 10_000 or (bound is not None and len(best) >= bound):
                return best, restarts


def shattering(n_inputs, mode: str = "weights", bias: bool = True, *, tau_m=15e-3, tau_s=3.75e-3,
               delay_grid=None, weights=None, w_max: float = 4.0, margin: float = 0.05, search: str = "auto",
               exhaustive_max: int = 8, time_budget=60.0, solver_time_limit=5.0, seed=0,
               engine: str = "auto") -> xr.Dataset:
    """Largest set of binary input patterns that one neuron shatters, with weights, delays or both programmable.

    Parameters
    ----------
    n_inputs : int
        n, the number of inputs (>= 1); each spikes at t = 0 or not.
    mode : {"weights", "delays", "both"}
        What is programmable: weights with one common delay (exact LP), delays
        on ``delay_grid`` with ``weights`` fixed (exact enumeration), or both
        (MILP over the grid, checked exactly).
    bias : bool
        Add a bias input that spikes in every pattern (its weight is
        programmable like the others, so the threshold is effectively free).
    tau_m, tau_s : float or brian2 Quantity
        Time constants, s (tau_s < tau_m).
    delay_grid : array or brian2 Quantity, optional
        Delays (s) that "delays" and "both" choose from; default 8 values
        evenly spaced in [0, 2 tau_m].
    weights : array, optional
        The fixed weights of mode "delays", in units of the PSP peak that
        reaches threshold (so 0.6 means a PSP peaking at 0.6 theta), one per
        input (bias last). Default 0.6 for every input and the bias: two
        coincident PSPs fire, one alone does not.
    w_max : float
        Bound on ``|weight|`` in mode "both" (PSP-peak units), > 0.
    margin : float
        Required distance of the maximum of V from the threshold in mode
        "both" (fraction of theta), in (0, 1).
    search : {"auto", "exhaustive", "greedy"}
        How pattern sets are searched ("auto": exhaustive when the domain has
        at most ``exhaustive_max`` patterns).
    exhaustive_max : int
        Largest domain (2^n) searched exhaustively by "auto".
    time_budget : float or brian2 Quantity
        Wall-clock budget of the search, s. An exhaustive search that runs out
        reports its best set and ``complete = 0``.
    solver_time_limit : float or brian2 Quantity
        Time limit of one MILP (mode "both"), s; a labelling not realised
        within it counts as not realised (the result stays a lower bound).
    seed : int
        Seed of the randomised search.
    engine : str
        An exact engine of :mod:`neurodelay.engines` ("auto": the layered engine for this
        single neuron, "events", "layered").

    Returns
    -------
    xarray.Dataset
        ``largest`` (scalar, number of patterns); ``patterns`` (``point``,
        ``input``): the shattered set, 1 where the input spikes (bias column
        last); ``label`` (``labelling``, ``point``): every labelling (1: fire);
        ``weight`` (``labelling``, ``input``): jump of I per spike, units of
        theta, and ``delay`` (``labelling``, ``input``, s): a realisation of each
        labelling; ``v_max`` (``labelling``, ``point``): the exact maximum of V
        (units of theta) of that realisation. Attributes: ``mode``, ``search``
        ("exhaustive" or "greedy"), ``complete`` (1 if the exhaustive search
        finished, or the set reached ``upper_bound``, a proven bound, -1 if
        none, and no MILP ran out of time: then no larger set is shattered
        on this grid), ``solver_calls``, ``solver_timeouts``,
        wall time and provenance.

    References
    ----------
    W. Maass & M. Schmitt (1999), On the complexity of learning for spiking neurons with temporal
    coding, Information and Computation 153:26-46.

    Examples
    --------
    >>> ds = shattering(3, "weights", seed=0)
    >>> int(ds.largest)
    4
    """
    n_inputs = check_int(n_inputs, "n_inputs")
    if mode not in SHATTER_MODES:
        raise ValueError(f"mode must be one of {SHATTER_MODES}, got {mode!r}")
    if search not in ("auto", "exhaustive", "greedy"):
        raise ValueError(f"search must be 'auto', 'exhaustive' or 'greedy', got {search!r}")
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"bias must be True or False, got {bias!r}")
    tau_m, tau_s = _time_constants(tau_m, tau_s)
    budget = check_seconds(time_budget, "time_budget")
    w_max = check_positive(w_max, "w_max")
    margin = check_positive(margin, "margin")
    if margin >= 1:
        raise ValueError(f"margin must be in (0, 1), got {margin}")
    exhaustive_max = check_int(exhaustive_max, "exhaustive_max")
    rng = rng_from(seed)
    engine = _engine(engine)
    if n_inputs > 12:
        raise ValueError(f"n_inputs must be <= 12 (the domain has 2^n patterns), got {n_inputs}")
    n_in = n_inputs + bool(bias)
    grid = (np.linspace(0.0, 2 * tau_m, 8) if delay_grid is None
            else np.unique(check_grid(delay_grid, "delay_grid", dimension="time", minimum=0.0)))
    if mode == "weights":
        grid = np.zeros(1)
    if weights is None:
        fixed = np.full(n_in, 0.6)
    else:
        fixed = np.asarray(weights, dtype=float)
        if fixed.shape != (n_in,) or not np.all(np.isfinite(fixed)):
            raise ValueError(f"weights must be {n_in} finite numbers (n_inputs + bias), got {weights!r}")
    if mode == "delays" and len(grid) ** n_in > 5_000_000:
        raise ValueError(f"delay_grid: {len(grid)}^{n_in} delay settings are too many to enumerate; "
                         f"use a coarser grid or fewer inputs")
    _pattern_maxima(np.ones((1, 1), np.uint8), np.ones(1), np.zeros(1), tau_m, tau_s)   # compile outside the budget
    start = _time.monotonic()
    problem = _Problem(n_inputs, mode, bool(bias), tau_m, tau_s, grid, fixed, w_max, margin,
                       check_seconds(solver_time_limit, "solver_time_limit"))
    if mode == "delays":
        problem.enumerate_delays()
    searcher = _Search(problem, start + budget)
    exhaustive = search == "exhaustive" or (search == "auto" and 2 ** n_inputs <= exhaustive_max)
    # proven upper bounds: a threshold gate on n_in inputs (Radon; without the bias n, see the module
    # docstring); any class of F functions shatters at most log2 F points (delays: F enumerated)
    bound = n_in if mode == "weights" else (int(math.floor(math.log2(max(len(problem.functions), 1))))
                                             if mode == "delays" else None)
    if exhaustive:
        best, complete = searcher.exhaustive()
        restarts = 0
    else:
        seed_set = ()
        if mode != "delays":                 # the threshold gate's shattered set: silent pattern (bias) + unit vectors
            seed_set = tuple(sorted(([0] if bias else []) + [1 << i for i in range(n_inputs)]))
            if not searcher.shattered(seed_set):
                seed_set = ()
        best, restarts = searcher.greedy(rng, seed_set, bound)
        complete = bound is not None and len(best) >= bound
    complete = bool(complete) and problem.timeouts == 0      # a timed-out MILP proves nothing
    wall = _time.monotonic() - start
    # a realisation of every labelling of the best set, checked exactly
    k = len(best)
    labels = ((np.arange(2 ** k)[:, None] >> np.arange(k)) & 1).astype(np.int8)
    codes = _labelling_codes(searcher.codes, best)
    table = list(problem.functions.keys())
    w_out = np.zeros((2 ** k, n_in))
    d_out = np.zeros((2 ** k, n_in))
    v_out = np.zeros((2 ** k, k))
    for lab in range(2 ** k):
        v, d = problem.functions[table[int(np.flatnonzero(codes == lab)[0])]]
        w_out[lab] = v / problem.peak
        d_out[lab] = d
        vmax, _ = _pattern_maxima(problem.patterns[list(best)], v / problem.peak, d, tau_m, tau_s)
        v_out[lab] = vmax
        if not np.array_equal(vmax >= 1.0, labels[lab] == 1):
            raise RuntimeError("internal error: a stored realisation does not give its labelling")
    names = [f"x{i}" for i in range(n_inputs)] + (["bias"] if bias else [])
    ds = xr.Dataset(
        {"largest": ((), k, {"units": "1", "long_name": "largest shattered set found (patterns)"}),
         "patterns": (("point", "input"), problem.patterns[list(best)].reshape(k, n_in).astype(np.int8),
                      {"units": "1", "long_name": "input spikes at t = 0 (1) or not (0)"}),
         "label": (("labelling", "point"), labels, {"units": "1", "long_name": "target: fire (1) or stay silent (0)"}),
         "weight": (("labelling", "input"), w_out, {"units": "1", "long_name": "jump of I per input spike (theta)"}),
         "delay": (("labelling", "input"), d_out, {"units": "s", "long_name": "transmission delay"}),
         "v_max": (("labelling", "point"), v_out, {"units": "1", "long_name": "exact maximum of V (theta)"})},
        coords={"input": names, "point": np.arange(k), "labelling": np.arange(2 ** k)})
    ds.attrs.update(mode=mode, bias=int(bool(bias)), n_inputs=n_inputs, search="exhaustive" if exhaustive else "greedy",
                    upper_bound=-1 if bound is None else int(bound),
                    complete=int(bool(complete)), solver_calls=problem.lp_calls, solver_timeouts=problem.timeouts,
                    functions_found=len(problem.functions),
                    greedy_restarts=int(restarts), wall_time_s=wall, tau_m=tau_m, tau_s=tau_s, theta=1.0,
                    exact="weights: LP (exact); delays: exact on the delay grid; both: MILP on the delay grid with "
                          "|weight| <= w_max (checked exactly), a lower bound")
    params = dict(n_inputs=n_inputs, mode=mode, bias=bool(bias), tau_m=tau_m, tau_s=tau_s, delay_grid=grid.tolist(),
                  weights=fixed.tolist(), w_max=w_max, margin=margin, search=search, exhaustive_max=exhaustive_max,
                  time_budget=budget)
    return with_provenance(ds, "expressivity.shattering", params, seed, engine)


# ----------------------------------------------------------------------------------- capacity -----
def tempotron_task(n_afferents, n_patterns, duration, *, seed) -> tuple[SpikeTrains, np.ndarray]:
    """The tempotron's patterns and labels: each afferent fires once at a uniform time in [0, duration).

    Parameters
    ----------
    n_afferents : int
        N, >= 1.
    n_patterns : int
        P, >= 1.
    duration : float or brian2 Quantity
        T, s.
    seed : int
        Seed (patterns and labels are drawn from independent streams of it).

    Returns
    -------
    (SpikeTrains, numpy.ndarray)
        The patterns (one per trial) and P labels, 1 (fire) or 0 (stay silent), each with probability 1/2.
    """
    n_afferents = check_int(n_afferents, "n_afferents")
    n_patterns = check_int(n_patterns, "n_patterns")
    seq = np.random.SeedSequence(_check_seed_int(seed))
    s_pat, s_lab = seq.spawn(2)
    patterns = single_spike_patterns(n_patterns, n_afferents, duration, seed=s_pat)
    labels = rng_from(s_lab).integers(0, 2, n_patterns).astype(np.int64)
    return patterns, labels


def _check_seed_int(seed) -> int:
    rng_from(seed)           # the same checks
    return int(seed)


def _kernel_energy(tau_m: float, tau_s: float) -> float:
    """Integral over s > 0 of K(s)^2 for the peak-normalised PSP K (s)."""
    peak, _ = psp_peak(tau_m, tau_s)
    k = tau_s / (tau_m - tau_s) / peak
    return k * k * (tau_m / 2 + tau_s / 2 - 2 * tau_m * tau_s / (tau_m + tau_s))


def capacity_point(n_afferents, load, learn: str, seed, *, duration=0.5, tau_m=15e-3, tau_s=None,
                   max_delay=None, margin: float = None, epochs: int = 500, lr_weight: float = None,
                   lr_delay=None, init_std: float = 0.5, batch_size=None, method: str = "tempotron",
                   momentum: float = 0.9, polish: bool = True, engine: str = "auto") -> xr.Dataset:
    """Train one neuron on one tempotron task (one load, one learn mode, one seed).

    Parameters
    ----------
    n_afferents : int
        N, >= 1.
    load : float
        alpha = P / N (> 0); P = round(alpha N) >= 1 patterns.
    learn : {"weights", "delays", "both"}
        What is trained. Weights start N(0, s^2) with s chosen so that the
        free V has standard deviation ``init_std`` theta; delays start at 0
        ("weights": one common delay) or uniform in [0, max_delay] ("delays",
        "both"). Untrained parameters keep their initial values.
    seed : int
        Seed of the task and the initial parameters.
    duration : float or brian2 Quantity
        T, s.
    tau_m, tau_s : float or brian2 Quantity
        Time constants, s (default tau_s = tau_m / 4).
    max_delay : float or brian2 Quantity, optional
        Largest delay, s (default T / 10); delays are clipped to [0, max_delay].
    margin : float, optional
        Margin (theta), >= 0: a pattern whose maximum is within `margin` of
        theta on the right side still updates (default 0.05 for "adam", 0 for
        "tempotron").
    epochs : int
        Largest number of passes over the patterns; training stops when every
        pattern is classified correctly.
    lr_weight : float, optional
        Learning rate of the weights (theta per step). "adam": default the
        initial weight std / 10; "tempotron": the factor lambda of the rule,
        default the initial weight std / 5.
    lr_delay : float or brian2 Quantity, optional
        Learning rate of the delays, s. "adam": s per step (default tau_s / 4);
        "tempotron": the step when dV_max/dd equals the initial weight std per
        tau_s (default tau_s / 30).
    init_std : float
        Standard deviation of the initial free V, theta.
    batch_size : int, optional
        "adam" only: patterns per Adam step (shuffled each epoch; a batch whose
        patterns are all right with margin makes no step); None: the full batch.
    method : {"tempotron", "adam"}
        "tempotron" (default): Gütig & Sompolinsky's rule, one pattern at a
        time in a random order, each wrong pattern moving the parameters along
        the gradient of its exact voltage maximum, with momentum (compiled;
        about 45 ms per epoch at N = 500, P = 1500). "adam": Adam on the exact
        gradients (:func:`neurodelay.gradients.loss_and_grad`) of the
        max-voltage hinge. Both evaluate the final neuron on `engine`.
    momentum : float
        "tempotron" only: momentum of the rule, in [0, 1).
    polish : bool
        "tempotron" only: when the rule ends with patterns still wrong, solve
        for the weights (delays held) by a cutting-plane linear programme
        started from the rule's solution, holding each "fire" pattern's time of
        maximum (exact: a solution it returns classifies every pattern; the
        final check on `engine` is independent of it). Not for learn="delays".
    engine : str
        "auto" or "events".

    Returns
    -------
    xarray.Dataset
        One point, ready for :func:`neurodelay.sweep.run_sweep` (which adds
        the ``load``, ``learn`` and ``seed`` dimensions; :func:`capacity` does
        the same): scalar variables ``fraction_correct``, ``solved`` (1 if all
        P patterns are classified correctly), ``epochs_run``, ``final_loss``
        (theta), ``train_time`` (s), ``n_patterns``, and ``weight``
        (``afferent``; jump of I, theta) and ``delay`` (``afferent``, s) of
        the trained neuron. Attributes: the settings and provenance.

    References
    ----------
    R. Gütig & H. Sompolinsky (2006), Nature Neuroscience 9:420-428.
    """
    n_afferents = check_int(n_afferents, "n_afferents")
    load = check_positive(load, "load")
    if learn not in LEARN_MODES:
        raise ValueError(f"learn must be one of {LEARN_MODES}, got {learn!r}")
    seed = _check_seed_int(seed)
    duration = check_seconds(duration, "duration")
    tau_m = check_seconds(tau_m, "tau_m")
    tau_s = tau_m / 4 if tau_s is None else check_seconds(tau_s, "tau_s")
    tau_m, tau_s = _time_constants(tau_m, tau_s)
    max_delay = duration / 10 if max_delay is None else check_seconds(max_delay, "max_delay", strictly=False)
    if method not in ("tempotron", "adam"):
        raise ValueError(f"method must be 'tempotron' or 'adam', got {method!r}")
    tempotron = method == "tempotron"
    margin = (0.0 if tempotron else 0.05) if margin is None else check_positive(margin, "margin", strictly=False)
    epochs = requested_epochs = check_int(epochs, "epochs", minimum=0)
    init_std = check_positive(init_std, "init_std")
    if batch_size is not None:
        if tempotron:
            raise ValueError("batch_size is an option of method='adam' (the tempotron rule learns one pattern "
                             "at a time)")
        batch_size = check_int(batch_size, "batch_size")
    if not (isinstance(momentum, (int, float)) and 0.0 <= momentum < 1.0):
        raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
    lr_delay = (tau_s / 30 if tempotron else tau_s / 4) if lr_delay is None else check_seconds(lr_delay, "lr_delay")
    engine = _engine(engine)
    if learn != "weights" and max_delay == 0:
        raise ValueError("max_delay must be > 0 when delays are learned")
    n_patterns = max(1, int(round(load * n_afferents)))
    start = _time.monotonic()
    patterns, labels = tempotron_task(n_afferents, n_patterns, duration, seed=seed)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])
    peak, _ = psp_peak(tau_m, tau_s)
    # var V = N s^2 E[K^2] in peak units: s = init_std / sqrt(N int K^2 / T)
    std = init_std / math.sqrt(n_afferents * _kernel_energy(tau_m, tau_s) / duration) / peak
    weights = rng.normal(0.0, std, n_afferents)
    delays = np.zeros(n_afferents) if learn == "weights" else rng.uniform(0.0, max_delay, n_afferents)
    lr_weight = std / (5 if tempotron else 10) if lr_weight is None else check_positive(lr_weight, "lr_weight")
    window = duration + max_delay + 3 * tau_m
    net = single_neuron(weights, delays, tau_m=tau_m, tau_s=tau_s, readout=True)
    loss = MaxVoltageHinge(_NEURON, 1.0, margin)
    kw, kd = (f"{_SOURCE}->{_NEURON}", "weight"), (f"{_SOURCE}->{_NEURON}", "synaptic")
    keys = {"weights": [kw], "delays": [kd], "both": [kw, kd]}[learn]
    from ..train import Adam                      # the public optimiser
    opt = Adam(lr=lr_weight, lr_by={"synaptic": lr_delay})
    params = {k: get_param(net, k) for k in keys}
    fire = labels.astype(bool)
    correct = np.zeros(n_patterns, bool)
    value = np.nan
    epoch = 0
    batches = None if batch_size is None else max(1, math.ceil(n_patterns / batch_size))
    steps = 0

    def update(net, params, grads):
        params = opt.step(params, grads, epoch)
        if kd in params:
            params[kd] = np.clip(params[kd], 0.0, max_delay)
        for k, v in params.items():
            net = set_param(net, k, v)
        return net, params

    if tempotron:
        times = np.zeros((n_patterns, n_afferents))
        times[patterns.trial, patterns.neuron] = patterns.time
        epochs_run, _ = _tempotron_epochs(times, labels.astype(np.int64), weights, delays, learn != "delays",
                                          learn != "weights", lr_weight, lr_delay * tau_s / std, float(momentum),
                                          margin, max_delay, tau_m, tau_s, epochs, seed)
        polish_rounds = 0
        if polish and learn != "delays":
            vmax, _ = _spike_pattern_maxima(times, weights, delays, tau_m, tau_s)
            if np.any((vmax >= 1.0) != fire):
                weights, polish_rounds, _ = _polish_weights(times, delays, labels, weights, tau_m, tau_s)
        for k, v in (kw, weights), (kd, delays):
            net = set_param(net, k, v)
        epochs = 0            # the loop below only evaluates the trained neuron on the engine
    for epoch in range(epochs + 1):
        if batches is not None and epoch < epochs:      # mini-batches; a full pass only once every batch was right
            all_right = True
            for idx in np.array_split(rng.permutation(n_patterns), batches):
                res = loss_and_grad(net, patterns.select_trials(idx), window, loss, labels[idx], keys, engine=engine)
                if res.loss > 0 or np.any((_readout_max(res.record) >= 1.0) != fire[idx]):
                    all_right &= bool(np.all((_readout_max(res.record) >= 1.0) == fire[idx]))
                    net, params = update(net, params, res.grads)
                    steps += 1
            if not all_right:
                continue
        res = loss_and_grad(net, patterns, window, loss, labels, keys if batches is None else (), engine=engine)
        correct = (_readout_max(res.record) >= 1.0) == fire
        value = res.loss
        if correct.all() or epoch == epochs:
            break
        if batches is None:
            net, params = update(net, params, res.grads)
            steps += 1
    wall = _time.monotonic() - start
    w_final, d_final = get_param(net, kw), get_param(net, kd)
    ds = xr.Dataset(
        {"fraction_correct": ((), float(correct.mean()), {"units": "1", "long_name": "patterns classified correctly"}),
         "solved": ((), int(correct.all()), {"units": "1", "long_name": "all patterns classified correctly"}),
         "epochs_run": ((), int(epochs_run if tempotron else epoch),
                        {"units": "1", "long_name": "epochs (passes over the patterns)"}),
         "steps": ((), int(steps), {"units": "1", "long_name": "Adam steps taken (0 for the tempotron rule)"}),
         "polish_rounds": ((), int(polish_rounds if tempotron else 0),
                           {"units": "1", "long_name": "linear programmes solved after the rule (0: none needed)"}),
         "final_loss": ((), float(value), {"units": "1", "long_name": "mean hinge loss (theta)"}),
         "train_time": ((), wall, {"units": "s", "long_name": "wall-clock time of the run"}),
         "n_patterns": ((), n_patterns, {"units": "1", "long_name": "P"}),
         "weight": (("afferent",), w_final, {"units": "1", "long_name": "trained jump of I per spike (theta)"}),
         "delay": (("afferent",), d_final, {"units": "s", "long_name": "trained transmission delay"})},
        coords={"afferent": np.arange(n_afferents)})
    params = dict(n_afferents=n_afferents, load=float(load), learn=learn, duration=duration, tau_m=tau_m,
                  tau_s=tau_s, max_delay=max_delay, margin=margin, epochs=requested_epochs,
                  lr_weight=lr_weight, lr_delay=lr_delay, init_std=init_std, batch_size=batch_size, method=method,
                  momentum=float(momentum), polish=bool(polish))
    ds.attrs.update(n_afferents=n_afferents, duration=duration, tau_m=tau_m, tau_s=tau_s, max_delay=max_delay,
                    margin=margin, epochs=requested_epochs, theta=1.0, window=window, method=method)
    return with_provenance(ds, "expressivity.capacity", params, seed, engine)


def _readout_max(record) -> np.ndarray:
    from ..events.readout import max_voltage
    return max_voltage(record, _NEURON)[0][:, 0]


def capacity(n_afferents, loads, learn=LEARN_MODES, seeds=3, *, progress: bool = False, **kwargs) -> xr.Dataset:
    """Capacity curves: train one neuron on the tempotron task at each load, learn mode and seed.

    Parameters
    ----------
    n_afferents : int
        N, >= 1.
    loads : array of float
        alpha = P / N values (> 0).
    learn : str or sequence of str
        Learn modes among "weights", "delays", "both".
    seeds : int or sequence of int
        The seeds, or their number (then 0 .. seeds - 1).
    progress : bool
        Show a progress bar.
    **kwargs
        Passed to :func:`capacity_point` (duration, tau_m, tau_s, max_delay,
        margin, epochs, lr_weight, lr_delay, init_std, engine).

    Returns
    -------
    xarray.Dataset
        Dimensions ``load``, ``learn``, ``seed`` (and ``afferent``): the
        variables of :func:`capacity_point`.

    Examples
    --------
    >>> ds = capacity(20, [0.5], learn="weights", seeds=1, epochs=50)
    >>> float(ds.solved.sum()) >= 0
    True
    """
    n_afferents = check_int(n_afferents, "n_afferents")
    loads = check_grid(loads, "loads")
    if np.any(loads <= 0):
        raise ValueError(f"loads must be > 0, got {loads.tolist()}")
    modes = (learn,) if isinstance(learn, str) else tuple(learn)
    if not modes or any(m not in LEARN_MODES for m in modes):
        raise ValueError(f"learn must be one or more of {LEARN_MODES}, got {learn!r}")
    seed_list = list(range(check_int(seeds, "seeds"))) if np.ndim(seeds) == 0 else list(seeds)
    if not seed_list:
        raise ValueError("seeds is empty: give at least one seed")
    points = list(itertools.product(loads.tolist(), modes, seed_list))
    if progress:
        from tqdm.auto import tqdm
        points = tqdm(points, desc="capacity")
    parts = [capacity_point(n_afferents, a, m, s, **kwargs).expand_dims(load=[a], learn=[m], seed=[s])
             for a, m, s in points]
    out = xr.combine_by_coords(parts, combine_attrs="drop_conflicts")
    out["load"].attrs.update(units="1", long_name="alpha = P / N")
    params = dict(n_afferents=n_afferents, loads=loads.tolist(), learn=list(modes), seeds=seed_list,
                  **{k: v for k, v in kwargs.items() if k != "engine"})
    return with_provenance(out, "expressivity.capacity", params, seed_list, _engine(kwargs.get("engine", "auto")))


def critical_load(ds: xr.Dataset) -> xr.Dataset:
    """The critical load alpha_c per learn mode: where the fraction of runs solving all patterns crosses 1/2.

    Parameters
    ----------
    ds : xarray.Dataset
        A result of :func:`capacity` (variable ``solved`` over ``load``, ``learn``, ``seed``).

    Returns
    -------
    xarray.Dataset
        Over ``learn``: ``alpha_c`` (linear interpolation of the mean of
        ``solved`` over seeds where it first falls from above 1/2 to 1/2 or
        below; NaN if it never does in the loads given), ``alpha_c_seed``
        (``learn``, ``seed``: midpoint between the load before the first
        failure and that failure, per seed; NaN if the seed solves every load
        or fails the first), ``alpha_c_mean`` and ``alpha_c_std`` over seeds, and
        ``p_solved`` (``learn``, ``load``). All dimensionless (P / N).
    """
    if not isinstance(ds, xr.Dataset) or "solved" not in ds:
        raise ValueError("ds must be a capacity Dataset with a 'solved' variable")
    for dim in ("load", "learn", "seed"):
        if dim not in ds["solved"].dims:
            raise ValueError(f"ds: 'solved' has no dimension {dim!r}")
    solved = ds["solved"].transpose("learn", "load", "seed").sortby("load")
    loads = solved["load"].values
    p = solved.mean("seed", skipna=True)
    alpha_c = np.full(solved.sizes["learn"], np.nan)
    per_seed = np.full((solved.sizes["learn"], solved.sizes["seed"]), np.nan)
    for a in range(solved.sizes["learn"]):
        prob = p.values[a]
        for q in range(len(loads) - 1):
            if prob[q] > 0.5 >= prob[q + 1]:
                alpha_c[a] = loads[q] + (prob[q] - 0.5) / (prob[q] - prob[q + 1]) * (loads[q + 1] - loads[q])
                break
        for s in range(solved.sizes["seed"]):
            col = solved.values[a, :, s]
            fail = np.flatnonzero(col < 0.5)
            if fail.size and fail[0] > 0:
                per_seed[a, s] = 0.5 * (loads[fail[0] - 1] + loads[fail[0]])
    out = xr.Dataset(
        {"alpha_c": (("learn",), alpha_c, {"units": "1", "long_name": "critical load (P(all solved) = 1/2)"}),
         "alpha_c_seed": (("learn", "seed"), per_seed, {"units": "1", "long_name": "critical load per seed"}),
         "alpha_c_mean": (("learn",), _nanstat(per_seed, np.mean), {"units": "1", "long_name": "mean over seeds"}),
         "alpha_c_std": (("learn",), _nanstat(per_seed, lambda r: r.std(ddof=1) if r.size > 1 else 0.0),
                         {"units": "1", "long_name": "standard deviation over seeds"}),
         "p_solved": (("learn", "load"), p.values, {"units": "1", "long_name": "fraction of seeds solving all"})},
        coords={"learn": solved["learn"].values, "seed": solved["seed"].values, "load": loads})
    return with_provenance(out, "expressivity.critical_load", {"loads": loads.tolist()},
                           None, ds.attrs.get("engine", "events"))


def _nanstat(a: np.ndarray, stat) -> np.ndarray:
    """`stat` of the finite values of each row (NaN for a row without any)."""
    out = np.full(a.shape[0], np.nan)
    for i, row in enumerate(a):
        row = row[np.isfinite(row)]
        if row.size:
            out[i] = stat(row)
    return out
