"""Closed-form LIF dynamics between events (compiled with numba).

Between events a neuron with state (V0, I0) evolves as::

    I(s) = I0 exp(-s/tau_s)
    V(s) = V0 exp(-s/tau_m) + I0 K (exp(-s/tau_m) - exp(-s/tau_s)),  K = tau_s / (tau_m - tau_s)

so V has at most one extremum, which makes threshold detection exact: a cheap
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
           "is_closed_form"]


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
    lo, hi = 0.0, s_max
    s = s_max * (theta - v0) / (v_max - v0)
    for _ in range(200):
        v = free_voltage(v0, i0, tau_m, tau_s, s)
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

