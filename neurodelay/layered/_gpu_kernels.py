"""The CUDA kernels of :mod:`neurodelay.layered.gpu` (imported only when that engine runs: it imports numba.cuda).

Each thread runs the CPU engine's per-neuron functions (:mod:`neurodelay.layered._kernels`) compiled for the
GPU from the same source by :func:`device_function`.
"""

from __future__ import annotations

import math
import types

import numpy as np

if not hasattr(np, "row_stack"):
    # numba-cuda 0.30.4 (the CUDA target of numba >= 0.61) registers an overload of np.row_stack, which
    # NumPy 2.5 removed: without the alias its array overloads fail to load and no kernel compiles
    # (seen with NumPy 2.5.2 and 2.5.5). np.row_stack was np.vstack.
    np.row_stack = np.vstack

from numba import cuda  # noqa: E402
from numba.core.dispatcher import Dispatcher  # noqa: E402

from . import _kernels as K
from . import _split_reverse as S

_DEVICE: dict = {}


def device_function(kernel):
    """The CUDA device function compiled from the Python source of a CPU kernel.

    kernel: a numba ``njit`` function; the functions it calls that are themselves
    ``njit`` functions are retargeted the same way (its globals are copied with
    those names rebound), so the GPU runs the same source as the CPU.
    """
    py = kernel.py_func
    hit = _DEVICE.get(py)
    if hit is not None:
        return hit
    names = dict(py.__globals__)
    for name in py.__code__.co_names:
        if isinstance(names.get(name), Dispatcher):
            names[name] = device_function(names[name])
    fn = types.FunctionType(py.__code__, names, py.__name__, py.__defaults__, py.__closure__)
    fn.__qualname__ = py.__qualname__
    _DEVICE[py] = dev = cuda.jit(device=True)(fn)
    return dev


gather = device_function(K.gather_sorted)
scan = device_function(K.scan_forward)
neuron_adjoint = device_function(K.adjoint_neuron)
split_events = device_function(S.split_events)
split_arrivals = device_function(S.split_arrivals)
split_reduce = device_function(S.split_reduce)
split_costate = device_function(S.split_costate)


@cuda.jit
def forward_layer(off, size, k0, n_k, spiking, tau_m, tau_s, theta, reset, refractory, closed, in_ptr, in_pre, in_d,
                  in_w, s_start, s_end, s_time, s_g, t_end, cap, ws_ptr, counts, arr_t, arr_q, no_ids, sample_times,
                  col_of, samples, u_init, i_init, v_off, n_out):
    """Thread (trial k0 + tid // size, neuron off + tid % size): its arrivals, then its exact scan
    (scan_forward: theta, reset as theta - bias, reset - bias; u_init = V(0) - bias, i_init = I(0) per
    trial and neuron; v_off = bias) into its slot of s_time / s_g (I - theta) and its column of the
    trial's sampled voltages; n_out[tid]: its spike count (-1: slot too small)."""
    tid = cuda.grid(1)
    if tid >= n_k * size:
        return
    kl = tid // size
    k = k0 + kl
    j = off + tid - kl * size
    a0 = ws_ptr[tid]
    a1 = ws_ptr[tid + 1]
    st = s_start[k]
    m = gather(j, in_ptr, in_pre, in_d, st, s_end[k], s_time, no_ids, t_end, False,
               counts[a0 + tid: a1 + tid + 1], arr_t[a0:a1], arr_q[a0:a1], no_ids, 1)
    base = st[j]
    n_out[tid] = scan(m, arr_t[a0:a1], arr_q[a0:a1], in_w, tau_m[j], tau_s[j], theta[j], reset[j], refractory[j],
                      closed[j], spiking[j], t_end, sample_times, col_of[j], samples[k], s_time[base: base + cap],
                      s_g[base: base + cap], u_init[k, j], i_init[k, j], v_off[j])


@cuda.jit
def adjoint_layer(off, size, n_k, in_ptr, in_pre, in_d, in_w, tau_m, tau_s, theta, reset, refractory,
                  s_start, s_end, s_time, s_id, t_end, sp_i_minus_theta, sp_source, ps_ptr, ps_time, ps_value,
                  cs_ptr, cs_coef, cs_rate, want_tau, g_w, g_d, g_tm, g_ts, g_th, g_time, spike_grad, ws_ptr,
                  sp_ptr, counts, arr_t, arr_q, arr_s, ev_t, ev_q, ev_s, ev_v, ev_i, sp_t, sp_k, factored, in_dm,
                  in_ds, s_em, s_es, ev_pos, worst):
    """Thread (trial tid // size of the group, neuron off + tid % size): the neuron's reverse pass
    (adjoint_neuron) over the group's spikes (s_*, ids local to the group; ps_ptr, cs_ptr: the group's
    rows), its gradients into row tid // size of g_*, its presynaptic spikes' time sensitivities into
    row tid % size of g_time; worst[tid]: max |V - theta| at its spikes. factored: the layer's reverse
    pass may use factored exponentials (in_dm, in_ds: exp(d/tau) per synapse; s_em, s_es: exp(t/tau) per
    spike id; ev_pos: 2 entries per spike of the thread's neuron), as on the CPU."""
    tid = cuda.grid(1)
    if tid >= n_k * size:
        return
    kl = tid // size
    row = tid - kl * size
    a0 = ws_ptr[tid]
    a1 = ws_ptr[tid + 1]
    p0 = sp_ptr[tid]
    p1 = sp_ptr[tid + 1]
    e0 = a0 + 2 * p0
    e1 = a1 + 2 * p1
    worst[tid] = neuron_adjoint(
        off + row, row, in_ptr, in_pre, in_d, in_w, tau_m, tau_s, theta, reset, refractory, s_start[kl],
        s_end[kl], s_time, s_id, t_end, 0, sp_i_minus_theta, sp_source, ps_ptr[kl], ps_time, ps_value, cs_ptr[kl], cs_coef,
        cs_rate, want_tau, g_w[kl], g_d[kl], g_tm[kl], g_ts[kl], g_th[kl], g_time, spike_grad, factored, in_dm,
        in_ds, s_em, s_es, counts[a0 + tid: a1 + tid + 1], arr_t[a0:a1], arr_q[a0:a1], arr_s[a0:a1], ev_t[e0:e1],
        ev_q[e0:e1], ev_s[e0:e1], ev_v[e0:e1], ev_i[e0:e1], ev_pos[2 * p0: 2 * p1], sp_t[p0:p1], sp_k[p0:p1])


@cuda.jit
def split_reverse_layer(off, size, n_k, in_ptr, in_pre, in_d, in_w, tau_m, tau_s, theta, reset, refractory, s_start,
                        s_end, s_time, s_id, t_end, sp_i_minus_theta, sp_source, g_w, g_d, g_th, g_time, g_down,
                        spike_grad, sp_ptr, in_dm, in_ds, s_em, s_es, ev_t, ev_c, ev_s, ev_i, seg_s, seg_m, coef_m,
                        coef_s, part_s, part_m, n_ev, worst):
    """Block b: the factored reverse pass of (trial b // size of the group, neuron off + b % size) split over
    the block's threads (:mod:`neurodelay.layered._split_reverse`; a LIF neuron reached only through its
    spike times, at most one synapse from each presynaptic neuron). Arguments as adjoint_layer's; g_down:
    (1, spikes), the rows of g_time added up (the time sensitivities sent back by the layers downstream);
    ev_* (2 entries per spike of the block's neuron, from 2 sp_ptr[b]), seg_*, coef_* (2 per spike + 1,
    from 2 sp_ptr[b] + b), part_* (as many times the threads per block), n_ev (one per block): workspaces;
    worst[b]: max |V - theta| at its spikes."""
    blk = cuda.blockIdx.x
    lane = cuda.threadIdx.x
    n_lanes = cuda.blockDim.x
    if blk >= n_k * size:
        return
    kl = blk // size
    row = blk - kl * size
    j = off + row
    st = s_start[kl]
    en = s_end[kl]
    lo = st[j]
    hi = en[j]
    if hi == lo:                    # no spike and no loss term: a zero costate
        if lane == 0:
            worst[blk] = 0.0
        return
    e0 = 2 * sp_ptr[blk]
    e1 = 2 * sp_ptr[blk + 1]
    g0 = e0 + blk
    g1 = e1 + blk + 1
    p0 = n_lanes * g0
    p1 = n_lanes * g1
    if lane == 0:
        n_ev[blk] = split_events(lo, hi, s_time, s_id, 0, refractory[j], t_end, ev_t[e0:e1], ev_c[e0:e1],
                                 ev_s[e0:e1])
    cuda.syncthreads()
    ne = n_ev[blk]
    split_arrivals(False, lane, n_lanes, j, row, in_ptr, in_pre, in_d, in_w, st, en, s_time, s_id, t_end, in_dm, in_ds,
                   s_em, s_es, tau_m[j], tau_s[j], ne, ev_t[e0:e1], ev_c[e0:e1], part_s[p0:p1], part_m[p0:p1],
                   g_w[kl], g_d[kl], g_time)
    cuda.syncthreads()
    split_reduce(lane, n_lanes, ne, part_s[p0:p1], part_m[p0:p1], seg_s[g0:g1], seg_m[g0:g1])
    cuda.syncthreads()
    if lane == 0:
        d_th, w = split_costate(ne, ev_t[e0:e1], ev_c[e0:e1], ev_s[e0:e1], ev_i[e0:e1], seg_s[g0:g1], seg_m[g0:g1],
                                tau_m[j], tau_s[j], theta[j], reset[j], refractory[j], 0, g_down, sp_source,
                                sp_i_minus_theta, spike_grad, coef_m[g0:g1], coef_s[g0:g1])
        g_th[kl, j] += d_th
        worst[blk] = w
    cuda.syncthreads()
    split_arrivals(True, lane, n_lanes, j, row, in_ptr, in_pre, in_d, in_w, st, en, s_time, s_id, t_end, in_dm, in_ds,
                   s_em, s_es, tau_m[j], tau_s[j], ne, ev_t[e0:e1], ev_c[e0:e1], coef_s[g0:g1], coef_m[g0:g1],
                   g_w[kl], g_d[kl], g_time)


@cuda.jit
def add_rows(rows, n_rows, total):
    """total[i] += sum of rows[r, i] for r < n_rows, in row order."""
    i = cuda.grid(1)
    if i < total.shape[0]:
        acc = total[i]
        for r in range(n_rows):
            acc += rows[r, i]
        total[i] = acc


@cuda.jit
def exp_factor(t, t_max, tau, out):
    """out[i] = exp(min(t[i], t_max) / tau): the factored reverse pass's factor of each spike (as the CPU
    engine's ``_scan_factors``)."""
    i = cuda.grid(1)
    if i < out.shape[0]:
        out[i] = math.exp(min(t[i], t_max) / tau)


@cuda.jit
def zero(a):
    i = cuda.grid(1)
    if i < a.shape[0]:
        a[i] = 0.0


KERNELS = {"forward_layer": forward_layer, "adjoint_layer": adjoint_layer, "split_reverse_layer": split_reverse_layer,
           "add_rows": add_rows, "exp_factor": exp_factor, "zero": zero}
