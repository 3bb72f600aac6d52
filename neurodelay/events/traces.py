"""Eligibility-trace bookkeeping of the three-factor rule inside the event loop (numba helpers).

The event loop (:mod:`.kernel`) calls these hooks when it is given a plastic state
``plast`` (a tuple, :data:`PLAST_FIELDS`); with ``plast=None`` numba prunes the calls and
compiles the plain loop. The derivation (traces p, q; integrals A, B; lazy settling
against per-neuron cumulative integrals G) is in :mod:`neurodelay.plasticity`.

Per synapse c (rows of ``syn``, float64 (S, 12)): ``P, Q`` traces at the settle time,
``t_set``, ``t_arr`` (last arrival), ``A, B`` (integrals of the pseudo-derivative times
p, q up to t_set), ``SP, SQ`` (p, q at the running maximum of the neuron's V, just before
an arrival there, see :func:`on_arrival`), ``gm, gs`` (the neuron's G at t_set), ``t_kink``
(time of the arrival of c at which SP, SQ were taken, if the maximum was there) and ``kink``
(at the end: the slope dV/dt just before the maximum if the maximum is a kink made by an
arrival of c, else 0).
Per neuron j (rows of ``neu``, float64 (N, 6)): ``t_ref`` (time origin of G), ``Gm, Gs``
(``int_{t_ref}^t psi(V(u)) exp(-(u - t_ref)/tau) du``, or the exact-mode spike sums), ``vmax,
tmax, vslope`` (running maximum of V, its time, and dV/dt just before it: 0 at a smooth
peak, > 0 at a kink where an arrival turns V down).

A maximum at a kink moves with the arrival that makes it, so for that synapse
``dVmax/dd = dV/dt(tmax-) + eps^d(tmax-)`` (the envelope theorem, ``dVmax/dd = eps^d``,
holds at smooth peaks only); weights are unaffected (an arrival adds nothing to V at its
own time).
``neu_mode[j]``: 0 untouched, 1 running maximum only (readouts), 2 also the pseudo-derivative.
``par``: (mode: 1 exact / 2 gaussian, sigma in units of theta).

Bump :data:`neurodelay.events.kernel.TRACES_REVISION` with every change to this file: the loop
that inlines these hooks is cached by numba under kernel.py's own time stamp.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .dynamics import free_voltage

__all__ = ["PLAST_FIELDS", "SYN_COLUMNS", "NEU_COLUMNS", "MODE_EXACT", "MODE_GAUSSIAN", "new_state",
           "on_interval", "on_arrival", "on_spike", "finish"]

PLAST_FIELDS = ("syn", "neu", "in_ptr", "in_syn", "syn_on", "neu_mode", "par")
SYN_COLUMNS = ("P", "Q", "t_set", "t_arr", "A", "B", "SP", "SQ", "gm", "gs", "t_kink", "kink")
NEU_COLUMNS = ("t_ref", "Gm", "Gs", "vmax", "tmax", "vslope")
_P, _Q, _TSET, _TARR, _A, _B, _SP, _SQ, _GM, _GS, _TKINK, _KINK = range(12)
_TREF, _GMN, _GSN, _VMAX, _TMAX, _VSLOPE = range(6)
MODE_EXACT, MODE_GAUSSIAN = 1.0, 2.0

#: G is re-based (all incoming synapses settled, t_ref moved on) once t - t_ref exceeds this many tau_s:
#: the settle step multiplies differences of G by exp((t_set - t_ref)/tau), so this bounds the rounding
#: error amplification by exp(8) ~ 3e3 (relative error ~1e-13)
REBASE_SPAN = 8.0
#: V below theta - BAND sigma theta does not contribute to the Gaussian integrals (psi < 2e-14 psi(theta))
BAND = 8.0
#: a quadrature piece spans at most this many sigma theta of V and tau_s of time
PIECE_SIGMAS = 1.5
PIECE_TAUS = 1.0
MAX_PIECES = 256

# 16-point Gauss-Legendre nodes and weights on [-1, 1]
_GL_X, _GL_W = np.polynomial.legendre.leggauss(16)


def new_state(n_syn: int, n_neurons: int):
    """Fresh (syn, neu) arrays of one trial (see the module docstring)."""
    syn = np.zeros((n_syn, len(SYN_COLUMNS)))
    syn[:, _TARR] = -np.inf
    syn[:, _TKINK] = -np.inf
    neu = np.zeros((n_neurons, len(NEU_COLUMNS)))
    return syn, neu


@njit(cache=True)
def _settle(syn, neu, c, j, t, tau_m, tau_s):
    """Bring synapse c (onto j) to time t: add the integrals since its settle time, decay its traces."""
    dt_ref = syn[c, _TSET] - neu[j, _TREF]
    dgm = neu[j, _GMN] - syn[c, _GM]
    dgs = neu[j, _GSN] - syn[c, _GS]
    if dgm != 0.0 and syn[c, _P] != 0.0:
        syn[c, _A] += syn[c, _P] * math.exp(dt_ref / tau_m) * dgm
    if dgs != 0.0 and syn[c, _Q] != 0.0:
        syn[c, _B] += syn[c, _Q] * math.exp(dt_ref / tau_s) * dgs
    span = t - syn[c, _TSET]
    syn[c, _P] *= math.exp(-span / tau_m)
    syn[c, _Q] *= math.exp(-span / tau_s)
    syn[c, _TSET] = t
    syn[c, _GM] = neu[j, _GMN]
    syn[c, _GS] = neu[j, _GSN]


@njit(cache=True)
def _rebase(syn, neu, in_ptr, in_syn, j, t, tau_m, tau_s):
    for q in range(in_ptr[j], in_ptr[j + 1]):
        c = in_syn[q]
        _settle(syn, neu, c, j, t, tau_m, tau_s)
        syn[c, _GM] = 0.0
        syn[c, _GS] = 0.0
    neu[j, _TREF] = t
    neu[j, _GMN] = 0.0
    neu[j, _GSN] = 0.0


@njit(cache=True)
def _psi(v, theta, width):
    """One-sided Gaussian surrogate 2 N(v; theta, width^2) for v <= theta, 0 above."""
    if v > theta:
        return 0.0
    z = (v - theta) / width
    return 0.7978845608028654 / width * math.exp(-0.5 * z * z)


@njit(cache=True)
def _level_time(v0, i0, tau_m, tau_s, level, lo, hi, rising):
    """Time in [lo, hi] where the monotone V(s) from (v0, i0) reaches `level` (bisection to rounding)."""
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        above = free_voltage(v0, i0, tau_m, tau_s, mid) >= level
        if above == rising:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


@njit(cache=True)
def _gauss_piece(v0, i0, tau_m, tau_s, theta, width, x0, x1, t_from, t_ref):
    """int_{x0}^{x1} psi(V(s)) exp(-(t_from + s - t_ref)/tau) ds for tau = tau_m and tau_s."""
    gm, gs = 0.0, 0.0
    if x1 <= x0:
        return gm, gs
    va = free_voltage(v0, i0, tau_m, tau_s, x0)
    vb = free_voltage(v0, i0, tau_m, tau_s, x1)
    n = int(max(abs(vb - va) / (PIECE_SIGMAS * width), (x1 - x0) / (PIECE_TAUS * min(tau_m, tau_s)))) + 1
    n = min(n, MAX_PIECES)
    h = (x1 - x0) / n
    for k in range(n):
        a = x0 + k * h
        for q in range(_GL_X.shape[0]):
            s = a + 0.5 * h * (_GL_X[q] + 1.0)
            f = 0.5 * h * _GL_W[q] * _psi(free_voltage(v0, i0, tau_m, tau_s, s), theta, width)
            if f != 0.0:
                u = t_from + s - t_ref
                gm += f * math.exp(-u / tau_m)
                gs += f * math.exp(-u / tau_s)
    return gm, gs


@njit(cache=True)
def _gauss_free(v0, i0, tau_m, tau_s, theta, width, span, t_from, t_ref):
    """The Gaussian integrals over a free-evolution interval [t_from, t_from + span] from (v0, i0),
    on its monotone pieces (V has at most one extremum), where V >= theta - BAND width."""
    level = theta - BAND * width
    gm, gs = 0.0, 0.0
    cut = span
    a = v0 + i0 * tau_s / (tau_m - tau_s)           # V = a e^{-s/tau_m} + b e^{-s/tau_s}
    b = -i0 * tau_s / (tau_m - tau_s)
    if a != 0.0:
        r = -b * tau_m / (a * tau_s)
        if r > 0.0:
            s_ext = math.log(r) / (1.0 / tau_s - 1.0 / tau_m)
            if 0.0 < s_ext < span:
                cut = s_ext
    for piece in range(2):
        x0, x1 = (0.0, cut) if piece == 0 else (cut, span)
        if x1 <= x0:
            continue
        va = free_voltage(v0, i0, tau_m, tau_s, x0)
        vb = free_voltage(v0, i0, tau_m, tau_s, x1)
        if max(va, vb) < level:
            continue
        if va < level:        # rising through the level
            x0 = _level_time(v0, i0, tau_m, tau_s, level, x0, x1, True)
        elif vb < level:      # falling through it
            x1 = _level_time(v0, i0, tau_m, tau_s, level, x0, x1, False)
        pm, ps = _gauss_piece(v0, i0, tau_m, tau_s, theta, width, x0, x1, t_from, t_ref)
        gm += pm
        gs += ps
    return gm, gs


@njit(cache=True)
def on_interval(plast, j, v, i, t_last, ref_end, reset, tau_m, tau_s, theta, t):
    """Neuron j evolves freely from its state (v, i) at t_last to t (before its next event at t):
    update its running maximum and (LIF) the pseudo-derivative integrals G."""
    syn, neu, in_ptr, in_syn, neu_mode, par = plast[0], plast[1], plast[2], plast[3], plast[5], plast[6]
    mode_j = neu_mode[j]
    if mode_j == 0 or t <= t_last:
        return
    t0, v0, i0 = t_last, v, i
    width = par[1] * theta
    gauss = mode_j == 2 and par[0] == MODE_GAUSSIAN
    if ref_end > t_last:                              # clamped at reset until ref_end
        t_clamp = min(ref_end, t)
        if gauss:
            p = _psi(reset, theta, width)
            if p > 0.0:
                tr = neu[j, _TREF]
                neu[j, _GMN] += p * tau_m * (math.exp(-(t0 - tr) / tau_m) - math.exp(-(t_clamp - tr) / tau_m))
                neu[j, _GSN] += p * tau_s * (math.exp(-(t0 - tr) / tau_s) - math.exp(-(t_clamp - tr) / tau_s))
        i0 = i * math.exp(-(t_clamp - t_last) / tau_s)
        v0 = reset
        t0 = t_clamp
    span = t - t0
    if span > 0.0:
        # running maximum (the same candidates as neurodelay.events.readout: interior peak, end point)
        if i0 > 0.0 and i0 > v0:
            den = v0 * (tau_m - tau_s) + i0 * tau_s
            if den > 0.0:
                s_pk = math.log1p((tau_m - tau_s) * (i0 - v0) / den) * tau_m * tau_s / (tau_m - tau_s)
                if 0.0 < s_pk < span:
                    vp = free_voltage(v0, i0, tau_m, tau_s, s_pk)
                    if vp > neu[j, _VMAX]:
                        neu[j, _VMAX], neu[j, _TMAX], neu[j, _VSLOPE] = vp, t0 + s_pk, 0.0
        v_end = free_voltage(v0, i0, tau_m, tau_s, span)
        if v_end > neu[j, _VMAX]:
            neu[j, _VMAX], neu[j, _TMAX] = v_end, t
            neu[j, _VSLOPE] = (i0 * math.exp(-span / tau_s) - v_end) / tau_m
        if gauss:
            gm, gs = _gauss_free(v0, i0, tau_m, tau_s, theta, width, span, t0, neu[j, _TREF])
            neu[j, _GMN] += gm
            neu[j, _GSN] += gs
    if mode_j == 2 and t - neu[j, _TREF] > REBASE_SPAN * min(tau_m, tau_s):
        _rebase(syn, neu, in_ptr, in_syn, j, t, tau_m, tau_s)


@njit(cache=True)
def on_arrival(plast, c, j, t, tau_m, tau_s):
    """An arrival on synapse c onto j at t (after on_interval up to t): snapshot, settle, p, q += 1."""
    syn, neu, syn_on = plast[0], plast[1], plast[4]
    if not syn_on[c]:
        return
    tmax = neu[j, _TMAX]
    # no arrival on c between the maximum and now: p, q there are the decayed traces (at a maximum
    # exactly at an arrival of c, the value just before it, here and in finish)
    if tmax > syn[c, _TARR]:
        syn[c, _SP] = syn[c, _P] * math.exp(-(tmax - syn[c, _TSET]) / tau_m)
        syn[c, _SQ] = syn[c, _Q] * math.exp(-(tmax - syn[c, _TSET]) / tau_s)
        syn[c, _TKINK] = t if tmax == t else -np.inf
    _settle(syn, neu, c, j, t, tau_m, tau_s)
    syn[c, _P] += 1.0
    syn[c, _Q] += 1.0
    syn[c, _TARR] = t


@njit(cache=True)
def on_spike(plast, j, t, i_minus_theta, tau_m, tau_s):
    """Exact mode: a spike of j at t with tau_m dV/dt = I - theta adds exp(-(t - t_ref)/tau) / Vdot to G."""
    neu, neu_mode, par = plast[1], plast[5], plast[6]
    if neu_mode[j] != 2 or par[0] != MODE_EXACT:
        return
    inv = tau_m / i_minus_theta
    neu[j, _GMN] += inv * math.exp(-(t - neu[j, _TREF]) / tau_m)
    neu[j, _GSN] += inv * math.exp(-(t - neu[j, _TREF]) / tau_s)


@njit(cache=True)
def finish(plast, kind, tau_m, tau_s, theta, reset, out_post, v, cur, t_last, ref_end, t_end):
    """End of the trial: every tracked neuron evolves to t_end, every tracked synapse is settled and
    its snapshot at the final maximum fixed (the decayed trace where no arrival came after the maximum)."""
    syn, neu, neu_mode, syn_on = plast[0], plast[1], plast[5], plast[4]
    for j in range(kind.shape[0]):
        if neu_mode[j] != 0:
            on_interval(plast, j, v[j], cur[j], t_last[j], ref_end[j], reset[j], tau_m[j], tau_s[j], theta[j], t_end)
    for c in range(out_post.shape[0]):
        if not syn_on[c]:
            continue
        j = out_post[c]
        tmax = neu[j, _TMAX]
        if tmax > syn[c, _TARR]:
            syn[c, _SP] = syn[c, _P] * math.exp(-(tmax - syn[c, _TSET]) / tau_m[j])
            syn[c, _SQ] = syn[c, _Q] * math.exp(-(tmax - syn[c, _TSET]) / tau_s[j])
            syn[c, _TKINK] = -np.inf
        syn[c, _KINK] = neu[j, _VSLOPE] if syn[c, _TKINK] == tmax else 0.0
        _settle(syn, neu, c, j, t_end, tau_m[j], tau_s[j])
