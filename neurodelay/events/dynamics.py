"""Closed-form LIF dynamics between events (compiled with numba).

Between events a neuron with state (V0, I0) evolves as::

    I(s) = I0 exp(-s/tau_s)
    V(s) = V0 exp(-s/tau_m) + I0 K (exp(-s/tau_m) - exp(-s/tau_s)),  K = tau_s / (tau_m - tau_s)

and with a constant bias current b (``tau_m dV/dt = -V + I + b``) the shifted
potential ``u = V - b`` follows exactly these dynamics, with threshold
``theta - b`` and reset ``reset - b`` (:func:`biased_state_at`,
:func:`biased_crossing`; with b = 0 they are bit-identical to the unbiased
helpers). So V has at most one extremum, which makes threshold detection exact: a cheap
upper bound on V rules most states out, the maximum is found in closed form,
the crossing on the rising branch by safeguarded Newton iteration to machine
precision (or in closed form when tau_m = 2 tau_s). Times in seconds.

The helpers are plain numba functions, compiled once and inlined by LLVM into
their callers; numba-level inlining (``inline="always"``) re-typed them in
every caller and made the first (cold-cache) compile of the engine about
twice as slow, for no speed at run time.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..flat import is_closed_form  # noqa: F401  (re-exported: where the engine's users found it)

__all__ = ["psp_kernel", "free_voltage", "state_at", "next_crossing", "peak_time", "voltage_bound",
           "is_closed_form", "biased_state_at", "biased_crossing"]


@njit(cache=True)
def psp_kernel(tau_m, tau_s, s):
    """exp(-s/tau_m) - exp(-s/tau_s), without cancellation for small s."""
    return -math.exp(-s / tau_m) * math.expm1(-s * (1.0 / tau_s - 1.0 / tau_m))


@njit(cache=True)
def free_voltage(v0, i0, tau_m, tau_s, s):
    """V after s seconds of free evolution from (v0, i0)."""
    return v0 * math.exp(-s / tau_m) + i0 * (tau_s / (tau_m - tau_s)) * psp_kernel(tau_m, tau_s, s)


@njit(cache=True)
def state_at(v, i, t_last, ref_end, reset, tau_m, tau_s, t):
    """(V, I) at time t >= t_last from the state (v, i) at t_last; V is clamped
    to `reset` until `ref_end` (end of the refractory period)."""
    if t <= t_last:
        return v, i
    if ref_end > t_last:
        if t <= ref_end:
            return reset, i * math.exp(-(t - t_last) / tau_s)
        i = i * math.exp(-(ref_end - t_last) / tau_s)
        v = reset
        t_last = ref_end
    s = t - t_last
    return free_voltage(v, i, tau_m, tau_s, s), i * math.exp(-s / tau_s)


@njit(cache=True)
def peak_time(v0, i0, tau_m, tau_s):
    """Time s > 0 of the maximum of V from (v0, i0), or -1 if V has no maximum ahead."""
    if i0 <= 0.0 or i0 <= v0:
        return -1.0
    den = v0 * (tau_m - tau_s) + i0 * tau_s
    if den <= 0.0:
        return -1.0
    return math.log1p((tau_m - tau_s) * (i0 - v0) / den) * tau_m * tau_s / (tau_m - tau_s)


@njit(cache=True)
def voltage_bound(v0, i0, tau_m, tau_s):
    """An upper bound on V(s) for all s >= 0 from (v0, i0) with no further input; no transcendentals.

    V rises only while I > V, and I(s) <= max(i0, 0), so V <= max(v0, i0, 0). For
    tau_m > tau_s it is tighter: where V has a maximum (i0 > v0, i0 > 0) dV/dt = 0
    there, so V_max = I(s_max) = i0 q**p with q = (tau_s i0 + (tau_m - tau_s) v0) / (tau_m i0)
    in (0, 1) and p = tau_m / (tau_m - tau_s) > 1, hence V_max < i0 q.
    """
    if tau_m > tau_s:
        return max(v0, (tau_s * i0 + (tau_m - tau_s) * v0) / tau_m, 0.0)
    return max(v0, i0, 0.0)


@njit(cache=True)
def _rising_root(u0, i0, tau_m, tau_s, theta, lo, hi):
    """The crossing of theta by u on [lo, hi], where u(lo) < theta <= u(hi) and u rises monotonically
    there (safeguarded Newton, to machine precision)."""
    u_lo = free_voltage(u0, i0, tau_m, tau_s, lo)
    u_hi = free_voltage(u0, i0, tau_m, tau_s, hi)
    s = lo + (hi - lo) * (theta - u_lo) / (u_hi - u_lo) if u_hi > u_lo else 0.5 * (lo + hi)
    for _ in range(400):
        v = free_voltage(u0, i0, tau_m, tau_s, s)
        f = v - theta
        if f == 0.0:
            return s
        if f < 0.0:
            lo = s
        else:
            hi = s
        slope = (i0 * math.exp(-s / tau_s) - v) / tau_m
        s_new = s - f / slope if slope > 0.0 else -1.0
        if not (lo < s_new < hi):
            s_new = 0.5 * (lo + hi)
        if abs(s_new - s) <= 4.4e-16 * s_new or hi - lo <= 4.4e-16 * hi:
            return s_new
        s = s_new
    return hi


@njit(cache=True)
def next_crossing(v0, i0, tau_m, tau_s, theta, closed_form):
    """Delay s >= 0 until V first reaches theta (> 0) with no further input, or inf."""
    if v0 >= theta:
        return 0.0
    if voltage_bound(v0, i0, tau_m, tau_s) < theta:
        return np.inf
    s_max = peak_time(v0, i0, tau_m, tau_s)
    if s_max < 0.0:
        return np.inf
    v_max = free_voltage(v0, i0, tau_m, tau_s, s_max)
    if v_max < theta:
        return np.inf
    if closed_form:
        # V = a x - i0 x^2 with x = exp(-s/tau_m), a = v0 + i0: the largest root below 1
        a = v0 + i0
        disc = max(a * a - 4.0 * i0 * theta, 0.0)
        x = (a + math.sqrt(disc)) / (2.0 * i0)
        return max(-tau_m * math.log(x), 0.0) if x < 1.0 else 0.0
    return _rising_root(v0, i0, tau_m, tau_s, theta, 0.0, s_max)


@njit(cache=True)
def biased_state_at(v, i, t_last, ref_end, reset, tau_m, tau_s, t, b):
    """:func:`state_at` with a constant bias current b: u = V - b follows the bias-free dynamics."""
    u, i_t = state_at(v - b, i, t_last, ref_end, reset - b, tau_m, tau_s, t)
    return u + b, i_t


@njit(cache=True)
def biased_crossing(v0, i0, tau_m, tau_s, theta, closed_form, b):
    """:func:`next_crossing` with a constant bias current b (delay s >= 0 to V = theta, or inf).

    With u = V - b and threshold theta - b > 0 it is the bias-free search. When
    b > theta (tonic firing) u tends to 0 > theta - b, so a crossing always exists: it lies
    before the maximum of u if u has one ahead (u then peaks above 0), else on the monotone rise
    after the minimum (or from now), bracketed by doubling and found by safeguarded Newton.
    """
    u0 = v0 - b
    th = theta - b
    if th >= 0.0:
        return next_crossing(u0, i0, tau_m, tau_s, th, closed_form)
    if u0 >= th:
        return 0.0
    s_max = peak_time(u0, i0, tau_m, tau_s)
    if s_max > 0.0:
        return _rising_root(u0, i0, tau_m, tau_s, th, 0.0, s_max)
    # no maximum ahead: u falls to a minimum (where dV/dt = 0 <=> I = u) or rises from now on
    lo = 0.0
    if i0 < 0.0 and i0 < u0:
        # minimum: u' = 0 at the s of peak_time's formula with the signs flipped
        den = u0 * (tau_m - tau_s) + i0 * tau_s
        ratio = (tau_m - tau_s) * (i0 - u0) / den if den != 0.0 else -1.0
        if ratio > -1.0:
            lo = max(math.log1p(ratio) * tau_m * tau_s / (tau_m - tau_s), 0.0)
    hi = lo + max(tau_m, tau_s)
    for _ in range(2000):
        if free_voltage(u0, i0, tau_m, tau_s, hi) >= th:
            break
        lo, hi = hi, hi + 2.0 * (hi - lo)
    return _rising_root(u0, i0, tau_m, tau_s, th, lo, hi)
