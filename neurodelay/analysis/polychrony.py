"""Polychronous groups (Izhikevich 2006): the network that stores them, and the search that finds them.

A network with axonal delays and STDP stores reproducible time-locked
spike patterns, *polychronous groups*: neurons fire in a precise order and
at precise lags because their spikes, travelling with different delays,
arrive together at the next neurons of the group.

This module provides

* :func:`izhikevich_connectivity` and :func:`simulate_izhikevich`: the
  network of "Polychronization: computation with spikes" (800 excitatory /
  200 inhibitory Izhikevich neurons, 100 synapses each, excitatory axonal
  delays 1..20 ms, inhibitory 1 ms, STDP on excitatory synapses, one random
  neuron driven with 20 mV each millisecond), simulated as plain Brian2 code
  on cpp_standalone in checkpointed chunks
  (:mod:`neurodelay.analysis._izhikevich_brian` has the model);
* :func:`find_polychronous_groups`: the activity-triggered search of the
  author's code, on that network (a connectivity Dataset, re-simulated with
  1 ms steps by a numba kernel) or on any :class:`~neurodelay.network.Network`
  of LIF neurons with delays of any kind (re-simulated exactly by the event
  engine, :func:`neurodelay.simulate`);
* the controls :func:`shuffle_weights` (excitatory weights permuted among
  excitatory-to-excitatory synapses, delays kept) and :func:`equal_delays`;
* :func:`group_stimulus`: the network and the anchor spikes that reproduce one
  group, for re-simulating it with any engine.

The search
----------
For every excitatory "mother" neuron, its *anchors* are its presynaptic
neurons whose synapse onto it is strong (weight > ``strong_fraction`` x the
maximum weight). For every triplet of anchors, the anchors fire so that their
spikes reach the mother together (anchor k at ``D - d_k``, D the largest of
the three delays d_k) and the network is re-simulated from rest without
noise. Anchors transmit on their strong synapses whose delay is at least
their delay to the mother; every other neuron on its strong excitatory and
all its inhibitory synapses. The run lasts until ``2 D_max + window`` and at
least until the last arrival of the spikes it produced (at most
``max_spikes`` spikes). The *layer* of a fired neuron is 1 + the largest
layer among the earlier group spikes of the excitatory neurons whose spikes
reached it in the ``window`` before it fired (anchors: layer 1); each such
arrival is a *link* (pre, post, delay, layer of the post spike). A group is
kept when it has more than ``2 n_anchors`` spikes, no anchor has exactly one
link onto an excitatory neuron, and the longest path has at least
``min_layers`` layers. Groups are counted per (mother, triplet), as in the
original.

Differences from the author's code: a group is cut at ``max_spikes`` spikes
(flagged ``truncated``) instead of overflowing its buffers; ``t_last`` is
extended by the largest delay a spike actually transmits on; links carry the
final layer of their postsynaptic spike.

References
----------
Izhikevich EM (2006) Polychronization: computation with spikes. Neural
Computation 18:245-282 (and the code of its ModelDB entry 100629).
Pauli R, Weidel P, Kunkel S, Plesser HE (2018) Reproducing polychronization:
a guide to maximizing the reproducibility of spiking network models.
Front. Neuroinform. 12:46.

Examples
--------
>>> conn = izhikevich_connectivity(seed=1)                          # doctest: +SKIP
>>> trained = simulate_izhikevich(3600.0, connectivity=conn, seed=1,
...                               checkpoint="build/izh")          # doctest: +SKIP
>>> groups = find_polychronous_groups(trained)                      # doctest: +SKIP
>>> control = find_polychronous_groups(shuffle_weights(trained, seed=2))  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from pathlib import Path

import numba
import numpy as np
import xarray as xr

from ..delays import Delays
from ..io import atomic_output
from ..network import LIF, Network, SpikeSource
from ..spikes import SpikeTrains
from ..units import as_seconds
from .common import check_int, check_positive, check_seconds, rng_from, with_provenance

__all__ = ["izhikevich_connectivity", "simulate_izhikevich", "find_polychronous_groups", "shuffle_weights",
           "equal_delays", "group_stimulus", "group_spikes", "MS"]

MS = 1e-3  #: one millisecond (s): the step of the Izhikevich model and of its group search
W_MAX = 10.0
W_EXC0, W_INH = 6.0, -5.0


# ---- the network -------------------------------------------------------------------------------

def izhikevich_connectivity(n_exc: int = 800, n_inh: int = 200, n_syn: int = 100, max_delay=20e-3, *,
                            seed) -> xr.Dataset:
    """Random connectivity of the Izhikevich (2006) network before learning.

    Every neuron has `n_syn` outgoing synapses, no self or duplicate
    connections. Excitatory neurons target any neuron, with delays
    1..max_delay ms spread evenly over their synapses (5 per value for 100
    synapses and 20 ms); inhibitory neurons target excitatory neurons only,
    with 1 ms. Initial weights +6 (excitatory) and -5 (inhibitory).

    Parameters
    ----------
    n_exc, n_inh : int
        Numbers of excitatory and inhibitory neurons (neurons 0..n_exc-1 are excitatory).
    n_syn : int
        Synapses per neuron (<= n_exc).
    max_delay : float or brian2 Quantity
        Largest excitatory delay, s (a whole number of ms).
    seed : int
        Seed of the random generator.

    Returns
    -------
    xarray.Dataset
        Dimension ``synapse``: ``pre``, ``post`` (neuron indices), ``weight``
        (mV), ``delay`` (s); attributes ``n_exc``, ``n_inh``, ``w_max``.
    """
    n_exc, n_inh = check_int(n_exc, "n_exc"), check_int(n_inh, "n_inh", minimum=0)
    n_syn = check_int(n_syn, "n_syn")
    n = n_exc + n_inh
    if n_syn > n_exc or n_syn > n - 1:
        raise ValueError(f"n_syn must be <= n_exc and < the number of neurons, got {n_syn}")
    d_max = _whole_ms(check_seconds(max_delay, "max_delay"), "max_delay")
    rng = rng_from(seed)
    pre, post, delay = [], [], []
    exc_delays = (np.arange(n_syn) * d_max) // n_syn + 1
    for i in range(n_exc):
        targets = rng.choice(n - 1, n_syn, replace=False)
        targets[targets >= i] += 1                     # no self connection
        pre.append(np.full(n_syn, i))
        post.append(targets)
        delay.append(exc_delays)
    for i in range(n_exc, n):
        pre.append(np.full(n_syn, i))
        post.append(rng.choice(n_exc, n_syn, replace=False))
        delay.append(np.ones(n_syn, np.int64))
    pre, post = np.concatenate(pre), np.concatenate(post)
    weight = np.where(pre < n_exc, W_EXC0, W_INH)
    return _connectivity_dataset(pre, post, weight, np.concatenate(delay) * MS, n_exc, n_inh)


def _whole_ms(value: float, name: str) -> int:
    steps = value / MS
    if abs(steps - round(steps)) > 1e-9 or round(steps) < 1:
        raise ValueError(f"{name} must be a whole number (>= 1) of milliseconds, got {value} s")
    return int(round(steps))


def _connectivity_dataset(pre, post, weight, delay, n_exc: int, n_inh: int, attrs: dict | None = None):
    ds = xr.Dataset(
        {"pre": ("synapse", np.asarray(pre, np.int64), {"long_name": "presynaptic neuron"}),
         "post": ("synapse", np.asarray(post, np.int64), {"long_name": "postsynaptic neuron"}),
         "weight": ("synapse", np.asarray(weight, float), {"units": "mV", "long_name": "synaptic weight"}),
         "delay": ("synapse", np.asarray(delay, float), {"units": "s", "long_name": "axonal delay"})},
        attrs={"n_exc": int(n_exc), "n_inh": int(n_inh), "w_max": W_MAX, "model": "izhikevich2006"})
    ds.attrs.update(attrs or {})
    return ds


def _check_connectivity(conn) -> tuple[int, int]:
    if not isinstance(conn, xr.Dataset) or any(k not in conn for k in ("pre", "post", "weight", "delay")):
        raise TypeError("connectivity must be a Dataset with pre, post, weight and delay "
                        "(from izhikevich_connectivity or simulate_izhikevich)")
    n_exc, n_inh = int(conn.attrs["n_exc"]), int(conn.attrs["n_inh"])
    n = n_exc + n_inh
    pre, post = conn["pre"].values, conn["post"].values
    if pre.size and (pre.min() < 0 or pre.max() >= n or post.min() < 0 or post.max() >= n):
        raise ValueError(f"connectivity: neuron indices out of range [0, {n})")
    return n_exc, n_inh


def _fingerprint(conn: xr.Dataset, seed, chunk_ms: int) -> str:
    h = hashlib.sha256(json.dumps([int(conn.attrs["n_exc"]), int(conn.attrs["n_inh"]), int(chunk_ms),
                                   np.asarray(seed).tolist()]).encode())
    for name in ("pre", "post", "weight", "delay"):
        h.update(np.ascontiguousarray(conn[name].values).tobytes())
    return h.hexdigest()[:20]


def _thalamic_input(seed, chunk: int, n: int, chunk_ms: int) -> np.ndarray:
    """Index of the neuron driven at each step of one chunk (depends only on the seed and the chunk)."""
    return np.random.default_rng([int(seed), int(chunk), 0x1234]).integers(0, n, chunk_ms).astype(float)


def simulate_izhikevich(duration, *, seed, connectivity: xr.Dataset | None = None, chunk=100.0,
                        checkpoint=None, snapshot_every: int | None = None, progress: bool = True,
                        **network) -> xr.Dataset:
    """Simulate the Izhikevich (2006) network with STDP (Brian2, cpp_standalone) and return its connectivity.

    The model is plain Brian2 code (see :mod:`neurodelay.analysis._izhikevich_brian`),
    compiled once per connectivity and chunk length and relaunched for every
    chunk with the previous chunk's state. With `checkpoint` the state is
    written there after every chunk, and a call with the same arguments (or a
    longer `duration`) resumes after the last finished chunk; a resumed run
    is identical to one that never stopped.

    Parameters
    ----------
    duration : float or brian2 Quantity
        Model time, s (a whole number of chunks; the paper: 18,000 s).
    seed : int
        Seed of the connectivity (when not given) and of the thalamic input.
    connectivity : xarray.Dataset, optional
        Initial connectivity (e.g. ``equal_delays(izhikevich_connectivity(seed=...))``);
        default ``izhikevich_connectivity(seed=seed, **network)``.
    chunk : float or brian2 Quantity
        Model time per chunk, s (a whole number of seconds).
    checkpoint : str or Path, optional
        Folder for the checkpoint file (``izhikevich_state.npz``).
    snapshot_every : int, optional
        Keep the weights every that many chunks (``weight_history``); default only at the end.
    progress : bool
        Show a progress bar over the chunks.
    **network
        n_exc, n_inh, n_syn, max_delay for :func:`izhikevich_connectivity`.

    Returns
    -------
    xarray.Dataset
        The connectivity at the end (``pre``, ``post``, ``weight`` in mV,
        ``delay`` in s), ``weight_history`` (snapshot, synapse) at
        ``snapshot_time`` (s), and per chunk ``chunk_end`` (s) and the
        numbers of spikes ``spikes_exc`` / ``spikes_inh``; attributes
        ``model_time`` (s), ``wall_seconds`` (of this call) and provenance.
    """
    duration = check_seconds(duration, "duration")
    chunk_s = check_seconds(chunk, "chunk")
    if abs(chunk_s - round(chunk_s)) > 1e-9:
        raise ValueError(f"chunk must be a whole number of seconds, got {chunk_s} s")
    chunk_ms = int(round(chunk_s * 1000))
    n_chunks = duration / chunk_s
    if abs(n_chunks - round(n_chunks)) > 1e-9:
        raise ValueError(f"duration ({duration} s) must be a whole number of chunks ({chunk_s} s)")
    n_chunks = int(round(n_chunks))
    rng_from(seed)  # checks the seed
    conn = izhikevich_connectivity(seed=seed, **network) if connectivity is None else connectivity
    if connectivity is not None and network:
        raise ValueError(f"give either connectivity or network sizes {sorted(network)}, not both")
    n_exc, n_inh = _check_connectivity(conn)
    n = n_exc + n_inh
    pre, post = conn["pre"].values, conn["post"].values
    weight, delay = conn["weight"].values, conn["delay"].values
    exc = pre < n_exc
    if np.any(weight[exc] < 0) or np.any(weight[~exc] > 0):
        raise ValueError("connectivity: excitatory weights must be >= 0 and inhibitory ones <= 0")
    if np.any(np.abs(delay[~exc] - MS) > 1e-12):
        raise ValueError("connectivity: inhibitory delays must be 1 ms (the model's)")
    inh_w = np.unique(weight[~exc])
    if inh_w.size > 1:
        raise ValueError("connectivity: the model has one inhibitory weight, got several")
    delay_ms = np.rint(delay[exc] / MS).astype(np.int64)
    if np.any(np.abs(delay_ms * MS - delay[exc]) > 1e-12) or np.any(delay_ms < 1):
        raise ValueError("connectivity: excitatory delays must be whole numbers (>= 1) of ms")
    snapshot_every = n_chunks if snapshot_every is None else check_int(snapshot_every, "snapshot_every")

    from ._izhikevich_brian import NEVER, ChunkRunner, end_of_second_update

    start_wall = time.perf_counter()
    fingerprint = _fingerprint(conn, seed, chunk_ms)
    path = None if checkpoint is None else Path(checkpoint) / "izhikevich_state.npz"
    state = dict(v=np.full(n, -65.0), u=np.full(n, -65.0 * 0.2), LTD=np.zeros(n), w=weight[exc].astype(float),
                 sd=np.zeros(exc.sum()), t_arrival=np.full(exc.sum(), NEVER))
    done, spikes, snaps, snap_times = 0, [], [], []
    if path is not None and path.exists():
        with np.load(path) as saved:
            if str(saved["fingerprint"]) != fingerprint:
                raise ValueError(f"checkpoint {path} belongs to another network, seed or chunk length; "
                                 f"use another checkpoint folder")
            state = {k: saved[k].copy() for k in state}
            done = int(saved["done"])
            spikes = [row for row in saved["spikes"]]
            snaps = [row for row in saved["snapshots"]]
            snap_times = list(saved["snapshot_times"])
    runner = None
    bar = None
    if progress and done < n_chunks:
        from tqdm.auto import tqdm
        bar = tqdm(total=n_chunks * chunk_s, initial=done * chunk_s, desc="Izhikevich network", unit="model s")
    try:
        for k in range(done, n_chunks):
            if runner is None:
                runner = ChunkRunner(n_exc, n_inh, pre[exc], post[exc], delay_ms, pre[~exc], post[~exc],
                                     chunk_ms, W_MAX, float(inh_w[0]) if inh_w.size else W_INH)
            out = runner.run(state, _thalamic_input(seed, k, n, chunk_ms))
            w, sd = end_of_second_update(out["w"], out["sd"], W_MAX)
            state = dict(v=out["v"], u=out["u"], LTD=out["LTD"], w=w, sd=sd,
                         t_arrival=np.maximum(out["t_arrival"] - chunk_ms, NEVER))
            spikes.append(np.array([out["n_spikes"][:n_exc].sum(), out["n_spikes"][n_exc:].sum()], np.int64))
            if (k + 1) % snapshot_every == 0 or k + 1 == n_chunks:
                snaps.append(w.astype(np.float32))
                snap_times.append((k + 1) * chunk_s)
            if path is not None:
                with atomic_output(path) as tmp:
                    with open(tmp, "wb") as fh:
                        np.savez(fh, fingerprint=fingerprint, done=k + 1, spikes=np.array(spikes, np.int64),
                                 snapshots=np.array(snaps, np.float32).reshape(len(snaps), int(exc.sum())),
                                 snapshot_times=np.array(snap_times, float), **state)
            if bar is not None:
                bar.update(chunk_s)
    finally:
        if bar is not None:
            bar.close()
    if done > n_chunks:
        raise ValueError(f"checkpoint {path} has {done} chunks, more than duration asks for ({n_chunks})")
    w_final = weight.astype(float).copy()
    w_final[exc] = state["w"]
    history = np.tile(weight.astype(np.float32), (len(snaps), 1))
    if snaps:
        history[:, exc] = np.array(snaps)
    spikes = np.array(spikes, np.int64).reshape(-1, 2)
    ds = _connectivity_dataset(pre, post, w_final, delay, n_exc, n_inh)
    ds["weight_history"] = (("snapshot", "synapse"), history, {"units": "mV"})
    ds["snapshot_time"] = ("snapshot", np.array(snap_times, float), {"units": "s"})
    ds["chunk_end"] = ("chunk", (np.arange(len(spikes)) + 1) * chunk_s, {"units": "s"})
    ds["spikes_exc"] = ("chunk", spikes[:, 0])
    ds["spikes_inh"] = ("chunk", spikes[:, 1])
    ds.attrs.update(model_time=n_chunks * chunk_s, chunk=chunk_s, wall_seconds=time.perf_counter() - start_wall,
                    build_seconds=getattr(runner, "build_seconds", 0.0))
    return with_provenance(ds, "polychrony.simulate_izhikevich",
                           dict(duration=duration, chunk=chunk_s, n_exc=n_exc, n_inh=n_inh), seed,
                           engine="brian2-cpp_standalone")


# ---- controls ----------------------------------------------------------------------------------

def shuffle_weights(network, *, seed):
    """Control: excitatory weights permuted at random, delays and connectivity kept.

    For a connectivity Dataset the excitatory-to-excitatory weights are
    permuted among themselves (the paper's shuffled control). For a
    :class:`~neurodelay.network.Network` the positive weights of each
    projection are permuted among that projection's positive-weight synapses.
    """
    rng = rng_from(seed)
    if isinstance(network, Network):
        out = network
        for proj in network.projections:
            w = proj.weight.copy()
            pos = np.flatnonzero(w > 0)
            w[pos] = w[rng.permutation(pos)]
            out = out.with_projection(proj.pre, proj.post, weight=w)
        return out
    n_exc, _ = _check_connectivity(network)
    ee = np.flatnonzero((network["pre"].values < n_exc) & (network["post"].values < n_exc))
    w = network["weight"].values.copy()
    w[ee] = w[rng.permutation(ee)]
    out = network.copy()
    out["weight"] = ("synapse", w, network["weight"].attrs)
    out.attrs["control"] = "shuffled"
    return out


def equal_delays(network, delay=None):
    """Control: every excitatory delay replaced by one value `delay` (s; default the mean, to the ms grid).

    For a connectivity Dataset the inhibitory 1 ms delays are kept. For a
    :class:`~neurodelay.network.Network` every synapse gets the total delay
    `delay` (as a synaptic delay; default the mean total delay).
    """
    if isinstance(network, Network):
        total = np.concatenate([p.total_delay() for p in network.projections] or [np.zeros(0)])
        value = float(total.mean()) if delay is None else check_seconds(delay, "delay", strictly=False)
        out = network
        for p in network.projections:
            out = out.with_projection(p.pre, p.post, axonal=None, dendritic=None, synaptic=np.full(p.n_syn, value))
        return out
    n_exc, _ = _check_connectivity(network)
    exc = network["pre"].values < n_exc
    d = network["delay"].values.copy()
    value = (np.rint(d[exc].mean() / MS) * MS) if delay is None else _whole_ms(check_seconds(delay, "delay"),
                                                                              "delay") * MS
    d[exc] = value
    out = network.copy()
    out["delay"] = ("synapse", d, network["delay"].attrs)
    out.attrs["control"] = "equal_delays"
    return out


# ---- the search on the Izhikevich network (numba, 1 ms steps) ----------------------------------

@numba.njit(nogil=True, cache=True)
def _grow(arr, n):
    if n < arr.shape[0]:
        return arr
    out = np.empty((2 * arr.shape[0] + 16, arr.shape[1]), arr.dtype)
    out[:arr.shape[0]] = arr
    return out


@numba.njit(nogil=True, cache=True)
def _search_izhikevich(mothers, n_exc, a, d, ptr, pre, post, w, dd, in_ptr, in_syn, c_rel, n_anchors, latency,
                       d_max, max_spikes, min_layers):
    """All kept groups of the given mothers. Delay indices dd = delay_ms - 1 (a spike at t arrives at t+dd+1).

    Returns (n_triplets, groups (k, 6): mother, n_spikes, n_layers, truncated, spike offset, link offset;
    anchors (k, n_anchors); spikes (m, 3): neuron, time step, layer; links (l, 4): pre, post, dd, layer).
    """
    n = a.shape[0]
    v = np.full(n, -70.0)
    u = np.full(n, 0.2 * -70.0)
    cur = np.zeros(n)
    touched = np.zeros(n, np.bool_)
    active = np.empty(n, np.int64)
    fired_now = np.empty(n, np.int64)
    horizon = max_spikes + 2 * d_max + latency + 4
    head = np.full(horizon, -1, np.int64)
    cap = (max_spikes + n_anchors) * (ptr[1:] - ptr[:-1]).max() + 1
    nxt = np.empty(cap, np.int64)
    e_pre = np.empty(cap, np.int64)
    e_post = np.empty(cap, np.int64)
    e_dd = np.empty(cap, np.int64)
    e_w = np.empty(cap)
    g_neuron = np.empty(max_spikes + n_anchors, np.int64)
    g_time = np.empty(max_spikes + n_anchors, np.int64)
    g_layer = np.zeros(max_spikes + n_anchors, np.int64)
    lk = np.empty((64, 4), np.int64)
    out_groups = np.empty((16, 6), np.int64)
    out_anchors = np.empty((16, n_anchors), np.int64)
    out_spikes = np.empty((256, 3), np.int64)
    out_links = np.empty((256, 4), np.int64)
    n_groups = 0
    n_sp = 0
    n_lk_out = 0
    n_triplets = 0
    anc = np.empty(n_anchors, np.int64)
    anc_dd = np.empty(n_anchors, np.int64)
    for m in mothers:
        # strong excitatory inputs of the mother, by presynaptic index
        cand = np.empty(in_ptr[m + 1] - in_ptr[m], np.int64)
        cand_dd = np.empty(in_ptr[m + 1] - in_ptr[m], np.int64)
        nc = 0
        for q in range(in_ptr[m], in_ptr[m + 1]):
            s = in_syn[q]
            if pre[s] < n_exc and w[s] > c_rel:
                cand[nc] = pre[s]
                cand_dd[nc] = dd[s]
                nc += 1
        if nc < n_anchors:
            continue
        order = np.argsort(cand[:nc], kind="mergesort")
        cand = cand[:nc][order]
        cand_dd = cand_dd[:nc][order]
        idx = np.arange(n_anchors)
        while True:
            n_triplets += 1
            dmax = 0
            for k in range(n_anchors):
                anc[k] = cand[idx[k]]
                anc_dd[k] = cand_dd[idx[k]]
                dmax = max(dmax, anc_dd[k])
            n_ev = 0
            used_head_max = 0
            for k in range(n_anchors):
                g_neuron[k] = anc[k]
                g_time[k] = dmax - anc_dd[k]
                g_layer[k] = 1
                for s in range(ptr[anc[k]], ptr[anc[k] + 1]):
                    if w[s] > c_rel and dd[s] >= anc_dd[k]:
                        tt = g_time[k] + dd[s] + 1
                        e_pre[n_ev] = anc[k]
                        e_post[n_ev] = post[s]
                        e_dd[n_ev] = dd[s]
                        e_w[n_ev] = w[s]
                        nxt[n_ev] = head[tt]
                        head[tt] = n_ev
                        n_ev += 1
                        used_head_max = max(used_head_max, tt)
            # neurons that received nothing stay exactly at rest (v = -70, u = -14 is the fixed point up to
            # ~1e-14 mV of rounding per step): only the touched ones are integrated
            n_act = 0
            for k in range(n_anchors):
                for s in range(ptr[anc[k]], ptr[anc[k] + 1]):
                    if w[s] > c_rel and dd[s] >= anc_dd[k] and not touched[post[s]]:
                        touched[post[s]] = True
                        active[n_act] = post[s]
                        n_act += 1
            n_fired = n_anchors
            truncated = 0
            t_last = 2 * d_max + latency + 1
            t = -1
            while t + 1 < t_last:
                t += 1
                e = head[t]
                while e >= 0:
                    cur[e_post[e]] += e_w[e]
                    e = nxt[e]
                n_new = 0
                for q in range(n_act):
                    i = active[q]
                    v[i] += 0.5 * ((0.04 * v[i] + 5.0) * v[i] + 140.0 - u[i] + cur[i])
                    v[i] += 0.5 * ((0.04 * v[i] + 5.0) * v[i] + 140.0 - u[i] + cur[i])
                    u[i] += a[i] * (0.2 * v[i] - u[i])
                    cur[i] = 0.0
                    if v[i] >= 30.0:
                        fired_now[n_new] = i
                        n_new += 1
                fired_now[:n_new].sort()          # in neuron order, as the author's loop over all neurons
                for q in range(n_new):
                    i = fired_now[q]
                    v[i] = -65.0
                    u[i] += d[i]
                    if n_fired - n_anchors >= max_spikes:
                        truncated = 1
                        continue
                    g_neuron[n_fired] = i
                    g_time[n_fired] = t
                    n_fired += 1
                    last = -1
                    for s in range(ptr[i], ptr[i + 1]):
                        if w[s] > c_rel or i >= n_exc:
                            tt = t + dd[s] + 1
                            e_pre[n_ev] = i
                            e_post[n_ev] = post[s]
                            e_dd[n_ev] = dd[s]
                            e_w[n_ev] = w[s]
                            nxt[n_ev] = head[tt]
                            head[tt] = n_ev
                            n_ev += 1
                            last = max(last, tt)
                            if not touched[post[s]]:
                                touched[post[s]] = True
                                active[n_act] = post[s]
                                n_act += 1
                    used_head_max = max(used_head_max, last)
                    if last + 1 > t_last:
                        t_last = min(last + 1, max_spikes + d_max + latency)
                if truncated:
                    break
            for q in range(n_act):
                i = active[q]
                touched[i] = False
                v[i] = -70.0
                u[i] = 0.2 * -70.0
                cur[i] = 0.0
            # layers and links (excitatory presynaptic spikes that arrived in the window before a spike)
            n_lk = 0
            l_max = 1
            if n_fired > 2 * n_anchors:
                for gi in range(n_anchors, n_fired):
                    g_layer[gi] = 0
                    lk_start = n_lk
                    p = g_time[gi]
                    while p > g_time[gi] - latency and p >= 0:
                        e = head[p]
                        while e >= 0:
                            if e_post[e] == g_neuron[gi] and e_pre[e] < n_exc:
                                for k in range(gi):
                                    if g_neuron[k] == e_pre[e] and g_layer[k] + 1 > g_layer[gi]:
                                        g_layer[gi] = g_layer[k] + 1
                                lk = _grow(lk, n_lk)
                                lk[n_lk, 0] = e_pre[e]
                                lk[n_lk, 1] = e_post[e]
                                lk[n_lk, 2] = e_dd[e]
                                n_lk += 1
                            e = nxt[e]
                        p -= 1
                    for q in range(lk_start, n_lk):
                        lk[q, 3] = g_layer[gi]
                    l_max = max(l_max, g_layer[gi])
                discard = False
                for k in range(n_anchors):
                    used = 0
                    for q in range(n_lk):
                        if lk[q, 0] == anc[k] and lk[q, 1] < n_exc:
                            used += 1
                    if used == 1:
                        discard = True
                if not discard and l_max >= min_layers:
                    out_groups = _grow(out_groups, n_groups)
                    out_anchors = _grow(out_anchors, n_groups)
                    out_groups[n_groups, 0] = m
                    out_groups[n_groups, 1] = n_fired
                    out_groups[n_groups, 2] = l_max
                    out_groups[n_groups, 3] = truncated
                    out_groups[n_groups, 4] = n_sp
                    out_groups[n_groups, 5] = n_lk_out
                    out_anchors[n_groups] = anc
                    n_groups += 1
                    for gi in range(n_fired):
                        out_spikes = _grow(out_spikes, n_sp)
                        out_spikes[n_sp, 0] = g_neuron[gi]
                        out_spikes[n_sp, 1] = g_time[gi]
                        out_spikes[n_sp, 2] = g_layer[gi]
                        n_sp += 1
                    for q in range(n_lk):
                        out_links = _grow(out_links, n_lk_out)
                        out_links[n_lk_out] = lk[q]
                        n_lk_out += 1
            for tt in range(used_head_max + 1):
                head[tt] = -1
            # next combination (lexicographic)
            k = n_anchors - 1
            while k >= 0 and idx[k] == nc - n_anchors + k:
                k -= 1
            if k < 0:
                break
            idx[k] += 1
            for j in range(k + 1, n_anchors):
                idx[j] = idx[j - 1] + 1
    return n_triplets, out_groups[:n_groups], out_anchors[:n_groups], out_spikes[:n_sp], out_links[:n_lk_out]


def _groups_dataset(groups, anchors, spikes, links, n_triplets: int, n_mothers: int, n_anchors: int,
                    attrs: dict) -> xr.Dataset:
    """The kept groups as flat tables (one row per group, per group spike, per link). Times in s."""
    groups, anchors = np.asarray(groups).reshape(-1, 6), np.asarray(anchors)
    spikes, links = np.asarray(spikes), np.asarray(links)
    n_sp = groups[:, 1] if len(groups) else np.zeros(0, np.int64)
    spike_group = np.repeat(np.arange(len(groups)), n_sp)
    offsets = groups[:, 5] if len(groups) else np.zeros(0, np.int64)
    n_links = np.diff(np.r_[offsets, len(links)]).astype(np.int64) if len(groups) else np.zeros(0, np.int64)
    link_group = np.repeat(np.arange(len(groups)), n_links)
    spike_time = spikes["time"] if spikes.dtype.names else np.zeros(0)
    ds = xr.Dataset(
        {"mother": ("group", groups[:, 0].astype(np.int64),
                    {"long_name": "neuron whose strong inputs are the anchors"}),
         "anchor": (("group", "anchor_index"), anchors.reshape(len(groups), n_anchors).astype(np.int64)),
         "n_spikes": ("group", n_sp.astype(np.int64)),
         "n_layers": ("group", groups[:, 2].astype(np.int64), {"long_name": "length of the longest path"}),
         "truncated": ("group", groups[:, 3].astype(bool)),
         "n_links": ("group", n_links),
         "spike_group": ("spike", spike_group.astype(np.int64)),
         "spike_neuron": ("spike", spikes["neuron"].astype(np.int64)),
         "spike_time": ("spike", np.asarray(spike_time, float), {"units": "s"}),
         "spike_layer": ("spike", spikes["layer"].astype(np.int64)),
         "link_group": ("link", link_group.astype(np.int64)),
         "link_pre": ("link", links["pre"].astype(np.int64)),
         "link_post": ("link", links["post"].astype(np.int64)),
         "link_delay": ("link", links["delay"].astype(float), {"units": "s"}),
         "link_layer": ("link", links["layer"].astype(np.int64))})
    starts = np.r_[0, np.cumsum(n_sp)[:-1]].astype(np.int64)
    last = np.maximum.reduceat(ds["spike_time"].values, starts) if len(groups) else np.zeros(0)
    first = np.minimum.reduceat(ds["spike_time"].values, starts) if len(groups) else np.zeros(0)
    ds["time_span"] = ("group", last - first, {"units": "s", "long_name": "last minus first spike time"})
    ds.attrs.update(n_groups=int(len(groups)), n_triplets=int(n_triplets), n_mothers=int(n_mothers), **attrs)
    return ds


def _search_connectivity(conn: xr.Dataset, strong_fraction, max_weight, min_layers, n_anchors, window,
                         max_spikes, mothers, n_threads, progress) -> xr.Dataset:
    n_exc, n_inh = _check_connectivity(conn)
    n = n_exc + n_inh
    pre, post = conn["pre"].values, conn["post"].values
    delay_ms = np.rint(conn["delay"].values / MS).astype(np.int64)
    if np.any(np.abs(delay_ms * MS - conn["delay"].values) > 1e-12) or np.any(delay_ms < 1):
        raise ValueError("connectivity: delays must be whole numbers (>= 1) of ms for the 1 ms re-simulation")
    order = np.lexsort((delay_ms, pre))
    pre, post, w, dd = pre[order], post[order], conn["weight"].values[order].astype(float), delay_ms[order] - 1
    ptr = np.r_[0, np.cumsum(np.bincount(pre, minlength=n))].astype(np.int64)
    in_syn = np.argsort(post, kind="mergesort").astype(np.int64)
    in_ptr = np.r_[0, np.cumsum(np.bincount(post, minlength=n))].astype(np.int64)
    w_max = float(conn.attrs.get("w_max", W_MAX)) if max_weight is None else max_weight
    c_rel = strong_fraction * w_max
    d_max = int(delay_ms.max()) if len(delay_ms) else 1
    latency = d_max if window is None else _whole_ms(window, "window")
    a = np.r_[np.full(n_exc, 0.02), np.full(n_inh, 0.1)]
    d = np.r_[np.full(n_exc, 8.0), np.full(n_inh, 2.0)]
    mothers = np.arange(n_exc) if mothers is None else np.asarray(mothers, np.int64)
    if mothers.size and (mothers.min() < 0 or mothers.max() >= n_exc):
        raise ValueError(f"mothers must be excitatory neurons (indices < {n_exc})")
    n_threads = max(1, min(int(n_threads or 1), len(mothers) or 1))
    parts = np.array_split(mothers, max(1, min(len(mothers), 8 * n_threads))) if len(mothers) else [mothers]

    def run(part):
        return _search_izhikevich(part, n_exc, a, d, ptr, pre, post, w, dd, in_ptr, in_syn, c_rel, n_anchors,
                                  latency, d_max, max_spikes, min_layers)

    results = [run(parts[0])]  # compiles (or loads the cache) once
    rest = parts[1:]
    if progress:
        from tqdm.auto import tqdm
        rest = tqdm(rest, desc="group search", unit="part", initial=1, total=len(parts))
    if n_threads > 1:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(n_threads) as pool:
            results += list(pool.map(run, rest))
    else:
        results += [run(p) for p in rest]
    n_triplets = sum(r[0] for r in results)
    groups, anchors, spikes, links = [], [], [], []
    sp_off = lk_off = 0
    for r in results:
        g = r[1].copy()
        g[:, 4] += sp_off
        g[:, 5] += lk_off
        groups.append(g)
        anchors.append(r[2])
        spikes.append(r[3])
        links.append(r[4])
        sp_off += len(r[3])
        lk_off += len(r[4])
    groups = np.concatenate(groups) if groups else np.zeros((0, 6), np.int64)
    anchors = np.concatenate(anchors) if anchors else np.zeros((0, n_anchors), np.int64)
    sp = np.concatenate(spikes) if spikes else np.zeros((0, 3), np.int64)
    lk = np.concatenate(links) if links else np.zeros((0, 4), np.int64)
    spikes = np.zeros(len(sp), dtype=[("neuron", np.int64), ("time", float), ("layer", np.int64)])
    spikes["neuron"], spikes["time"], spikes["layer"] = sp[:, 0], sp[:, 1] * MS, sp[:, 2]
    links = np.zeros(len(lk), dtype=[("pre", np.int64), ("post", np.int64), ("delay", float), ("layer", np.int64)])
    links["pre"], links["post"], links["delay"], links["layer"] = lk[:, 0], lk[:, 1], (lk[:, 2] + 1) * MS, lk[:, 3]
    strong_exc = (w > c_rel) & (pre < n_exc)
    n_with_anchors = sum(int(strong_exc[in_syn[in_ptr[m]:in_ptr[m + 1]]].sum()) >= n_anchors for m in mothers)
    return _groups_dataset(groups, anchors, spikes, links, n_triplets, n_with_anchors, n_anchors,
                           dict(engine="izhikevich-1ms", strong_threshold=c_rel, window=latency * MS))


# ---- the search on a neurodelay Network (exact event engine) -----------------------------------

def _synapse_table(net: Network):
    """All synapses of a Network with global indices: pre, post, weight, total delay (s)."""
    offs = net.offsets()
    pre, post, w, d = [], [], [], []
    for p in net.projections:
        pre.append(p.pre_idx + offs[p.pre])
        post.append(p.post_idx + offs[p.post])
        w.append(p.weight)
        d.append(p.total_delay())
    cat = (lambda x, dt: np.concatenate(x).astype(dt) if x else np.zeros(0, dt))
    return cat(pre, np.int64), cat(post, np.int64), cat(w, float), cat(d, float)


def _anchor_entries(net: Network, mother: int, c_rel: float):
    """(pre neuron, delay) of the strong synapses onto `mother` (global index), sorted by pre then delay."""
    pre, post, w, d = _synapse_table(net)
    sel = np.flatnonzero((post == mother) & (w > c_rel))
    order = np.lexsort((d[sel], pre[sel]))
    return pre[sel][order], d[sel][order]


def _trigger_network(net: Network, anchors: np.ndarray, anchor_delays: np.ndarray, c_rel: float) -> Network:
    """`net` with weak excitatory synapses removed and one spike source per anchor entry, which transmits on
    its anchor's strong synapses whose delay is at least the anchor's delay to the mother."""
    out = Network().add(*net.populations, SpikeSource("anchors__", max(1, len(anchors))))
    offs = net.offsets()
    for p in net.projections:
        keep = (p.weight < 0) | (p.weight > c_rel)
        d = p.total_delay()
        out = out.connect(p.pre, p.post, p.weight[keep], (p.pre_idx[keep], p.post_idx[keep]),
                          Delays(synaptic=d[keep]))
    pre, post, w, d = _synapse_table(net)
    for target in net.populations:
        if not isinstance(target, LIF):
            continue
        lo, hi = offs[target.name], offs[target.name] + target.n
        src, tgt, ws, ds = [], [], [], []
        for k, (g, dk) in enumerate(zip(anchors, anchor_delays)):
            sel = np.flatnonzero((pre == g) & (w > c_rel) & (d >= dk - 1e-15) & (post >= lo) & (post < hi))
            src.append(np.full(sel.size, k))
            tgt.append(post[sel] - lo)
            ws.append(w[sel])
            ds.append(d[sel])
        if sum(len(s) for s in src):
            out = out.connect("anchors__", target.name, np.concatenate(ws),
                              (np.concatenate(src).astype(np.int64), np.concatenate(tgt).astype(np.int64)),
                              Delays(synaptic=np.concatenate(ds)))
    return out


def _excitatory_neurons(net: Network) -> np.ndarray:
    """Neurons with at least one outgoing synapse and none of negative weight (global indices)."""
    pre, _, w, _ = _synapse_table(net)
    has = np.bincount(pre, minlength=net.n_neurons) > 0
    neg = np.bincount(pre[w < 0], minlength=net.n_neurons) > 0
    return has & ~neg


def _lif_groups_of_mother(net, mother, c_rel, n_anchors, window, d_max, max_spikes, min_layers, max_duration,
                          n_threads):
    from ..simulation import simulate

    anchors, anchor_d = _anchor_entries(net, mother, c_rel)
    if len(np.unique(anchors)) < n_anchors:
        return 0, []
    combos = [c for c in itertools.combinations(range(len(anchors)), n_anchors)
              if len(np.unique(anchors[list(c)])) == n_anchors]
    if not combos:
        return 0, []
    trig = _trigger_network(net, anchors, anchor_d, c_rel)
    n_src = trig["anchors__"].n
    src_off = trig.offsets()["anchors__"]
    pre_t, post_t, w_t, d_t = _synapse_table(trig)
    excit = _excitatory_neurons(net)
    ptr_order = np.argsort(pre_t, kind="mergesort")
    ptr = np.r_[0, np.cumsum(np.bincount(pre_t, minlength=trig.n_neurons))]
    trials, fire = [], []
    for c in combos:
        c = list(c)
        dmax = anchor_d[c].max()
        trials.append(c)
        fire.append(dmax - anchor_d[c])
    t_init = 2 * d_max + window
    duration = np.full(len(combos), t_init)
    results = [None] * len(combos)
    todo = np.arange(len(combos))
    while len(todo):
        lists = [[np.zeros(0)] * n_src for _ in todo]
        for r, k in enumerate(todo):
            for j, a_k in enumerate(trials[k]):
                lists[r][a_k] = np.array([fire[k][j]])
        inputs = {"anchors__": SpikeTrains.from_lists(lists, n_neurons=n_src)}
        for s in net.sources:
            inputs[s.name] = SpikeTrains.empty(len(todo), s.n)
        rec = simulate(trig, inputs, float(duration[todo].max()), n_threads=n_threads,
                       max_spikes_per_trial=max(10 * max_spikes, 1000))
        again = []
        for r, k in enumerate(todo):
            m = rec.trial == r
            t_sp, n_sp = rec.time[m], rec.neuron[m]
            order = np.lexsort((n_sp, t_sp))
            t_sp, n_sp = t_sp[order], n_sp[order]
            t_last, keep, truncated = t_init, 0, False
            for t, g in zip(t_sp, n_sp):
                if t >= t_last:
                    break
                if keep >= max_spikes:
                    truncated = True
                    break
                keep += 1
                out_d = d_t[ptr_order[ptr[g]:ptr[g + 1]]]
                if out_d.size:
                    t_last = min(max(t_last, t + out_d.max()), max_duration)
            if t_last > duration[k] + 1e-12 and duration[k] < max_duration and not truncated:
                duration[k] = min(max(t_last, 2 * duration[k]), max_duration)
                again.append(k)
                continue
            results[k] = (t_sp[:keep], n_sp[:keep], truncated)
        todo = np.array(again, np.int64)
    kept = []
    for k, (t_sp, n_sp, truncated) in enumerate(results):
        c = trials[k]
        g_neuron = np.r_[anchors[c], n_sp].astype(np.int64)
        g_time = np.r_[fire[k], t_sp]
        g_src = np.r_[src_off + np.array(c), n_sp]          # the neuron whose synapses carry the spike
        n_fired = len(g_neuron)
        if n_fired <= 2 * n_anchors:
            continue
        # arrivals of every group spike through the transmitted synapses
        a_pre, a_post, a_time, a_delay = [], [], [], []
        for gi in range(n_fired):
            sl = ptr_order[ptr[g_src[gi]]:ptr[g_src[gi] + 1]]
            a_pre.append(np.full(sl.size, g_neuron[gi]))
            a_post.append(post_t[sl])
            a_time.append(g_time[gi] + d_t[sl])
            a_delay.append(d_t[sl])
        a_pre, a_post = np.concatenate(a_pre), np.concatenate(a_post)
        a_time, a_delay = np.concatenate(a_time), np.concatenate(a_delay)
        layer = np.zeros(n_fired, np.int64)
        layer[:n_anchors] = 1
        links = []
        for gi in range(n_anchors, n_fired):
            sel = np.flatnonzero((a_post == g_neuron[gi]) & excit[a_pre] & (a_time <= g_time[gi] + 1e-12)
                                 & (a_time > g_time[gi] - window + 1e-12))
            for e in sel:
                earlier = layer[:gi][g_neuron[:gi] == a_pre[e]]
                if earlier.size:
                    layer[gi] = max(layer[gi], earlier.max() + 1)
            links += [(a_pre[e], a_post[e], a_delay[e], gi) for e in sel]
        links = [(p, q, dl, layer[gi]) for p, q, dl, gi in links]
        discard = any(sum(1 for p, q, _, _ in links if p == anchors[c][j] and excit[q]) == 1
                      for j in range(n_anchors))
        if discard or layer.max() < min_layers:
            continue
        kept.append((mother, anchors[c], g_neuron, g_time, layer, links, truncated))
    return len(combos), kept


def _search_network(net: Network, strong_fraction, max_weight, min_layers, n_anchors, window, max_spikes,
                    mothers, max_duration, n_threads, progress) -> xr.Dataset:
    lif = [p for p in net.populations if isinstance(p, LIF)]
    if not lif:
        raise ValueError("network: the search needs LIF neurons (mothers); the network has none")
    if any(p.name == "anchors__" for p in net.populations):
        raise ValueError("network: the population name 'anchors__' is reserved for the search")
    _, _, w, d = _synapse_table(net)
    if w.size == 0 or w.max() <= 0:
        raise ValueError("network: no excitatory (positive) weights, so no anchors")
    w_max = float(w.max()) if max_weight is None else max_weight
    c_rel = strong_fraction * w_max
    d_max = float(d.max())
    window = d_max if window is None else window
    if window <= 0:
        raise ValueError("window must be > 0 (the network has no delays; give window=)")
    max_duration = 1.0 if max_duration is None else check_seconds(max_duration, "max_duration")
    offs = net.offsets()
    excit = _excitatory_neurons(net)
    if mothers is None:
        mothers = np.concatenate([np.arange(p.n) + offs[p.name] for p in lif])
        mothers = mothers[excit[mothers] | (np.bincount(_synapse_table(net)[0], minlength=net.n_neurons)[mothers] == 0)]
    mothers = np.asarray(mothers, np.int64)
    lif_idx = np.concatenate([np.arange(p.n) + offs[p.name] for p in lif])
    if not np.all(np.isin(mothers, lif_idx)):
        raise ValueError("mothers must be global indices of LIF neurons")
    it = mothers
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(mothers, desc="group search", unit="mother")
    n_triplets, kept, n_with = 0, [], 0
    for m in it:
        nt, k = _lif_groups_of_mother(net, int(m), c_rel, n_anchors, window, d_max, max_spikes, min_layers,
                                      max_duration, n_threads)
        n_triplets += nt
        n_with += nt > 0
        kept += k
    groups = np.zeros((len(kept), 6), np.int64)
    anchors = np.zeros((len(kept), n_anchors), np.int64)
    spikes, links = [], []
    sp_off = lk_off = 0
    for r, (m, anc, gn, gt, gl, lk, trunc) in enumerate(kept):
        groups[r] = (m, len(gn), gl.max(), trunc, sp_off, lk_off)
        anchors[r] = anc
        s = np.zeros(len(gn), dtype=[("neuron", np.int64), ("time", float), ("layer", np.int64)])
        s["neuron"], s["time"], s["layer"] = gn, gt, gl
        spikes.append(s)
        lrec = np.zeros(len(lk), dtype=[("pre", np.int64), ("post", np.int64), ("delay", float),
                                        ("layer", np.int64)])
        for q, row in enumerate(lk):
            lrec[q] = row
        links.append(lrec)
        sp_off += len(gn)
        lk_off += len(lk)
    spikes = np.concatenate(spikes) if spikes else np.zeros(0, dtype=[("neuron", np.int64), ("time", float),
                                                                      ("layer", np.int64)])
    links = np.concatenate(links) if links else np.zeros(0, dtype=[("pre", np.int64), ("post", np.int64),
                                                                   ("delay", float), ("layer", np.int64)])
    return _groups_dataset(groups, anchors, spikes, links, n_triplets, n_with, n_anchors,
                           dict(engine="events", strong_threshold=c_rel, window=window))


def find_polychronous_groups(network, *, strong_fraction: float = 0.95, max_weight=None, min_layers: int = 7,
                             n_anchors: int = 3, window=None, max_spikes: int = 1000, mothers=None,
                             max_duration=None, n_threads: int | None = None, progress: bool = False) -> xr.Dataset:
    """Activity-triggered search for polychronous groups (Izhikevich 2006; see the module docstring).

    Parameters
    ----------
    network : xarray.Dataset or Network
        A connectivity Dataset of the Izhikevich model (from
        :func:`izhikevich_connectivity` / :func:`simulate_izhikevich`, or
        modified; re-simulated with 1 ms steps) or a neurodelay
        :class:`~neurodelay.network.Network` with LIF neurons (re-simulated
        exactly by the event engine; spike sources stay silent).
    strong_fraction : float
        A synapse is strong when its weight exceeds this fraction of `max_weight`.
    max_weight : float, optional
        Default: the model's w_max (10) for a Dataset, the largest weight of a Network.
    min_layers : int
        Shortest kept longest path (the paper: 7).
    n_anchors : int
        Anchors fired per group (3); a group needs more than ``2 n_anchors`` spikes.
    window : float or brian2 Quantity, optional
        How far back (s) arrivals count as causes of a spike; default the largest delay.
    max_spikes : int
        Group spikes simulated at most besides the anchors (guard of the original's overflow).
    mothers : array of int, optional
        Neurons to search (global indices); default every excitatory neuron.
    max_duration : float, optional
        Longest re-simulation of a Network, s (default 1 s).
    n_threads : int, optional
        Threads (Dataset: mothers in parallel; Network: trials of the event engine).
    progress : bool
        Show a progress bar.

    Returns
    -------
    xarray.Dataset
        Per ``group``: ``mother``, ``anchor`` (group, anchor_index), ``n_spikes``,
        ``n_layers``, ``n_links``, ``time_span`` (s), ``truncated``; per ``spike``:
        ``spike_group``, ``spike_neuron``, ``spike_time`` (s, anchors first),
        ``spike_layer``; per ``link``: ``link_group``, ``link_pre``, ``link_post``,
        ``link_delay`` (s), ``link_layer``. Attributes ``n_groups``,
        ``n_triplets`` (triplets tried), ``n_mothers`` (mothers with enough anchors).
    """
    strong_fraction = check_positive(strong_fraction, "strong_fraction")
    if max_weight is not None:
        max_weight = check_positive(max_weight, "max_weight")
    min_layers = check_int(min_layers, "min_layers")
    n_anchors = check_int(n_anchors, "n_anchors")
    max_spikes = check_int(max_spikes, "max_spikes")
    window = None if window is None else check_seconds(window, "window")
    params = dict(strong_fraction=strong_fraction, max_weight=max_weight, min_layers=min_layers,
                  n_anchors=n_anchors, window=window, max_spikes=max_spikes)
    start = time.perf_counter()
    if isinstance(network, Network):
        ds = _search_network(network, strong_fraction, max_weight, min_layers, n_anchors, window, max_spikes,
                             mothers, max_duration, n_threads, progress)
    elif isinstance(network, xr.Dataset):
        ds = _search_connectivity(network, strong_fraction, max_weight, min_layers, n_anchors, window,
                                  max_spikes, mothers, n_threads, progress)
    else:
        raise TypeError(f"network must be a connectivity Dataset or a neurodelay Network, "
                        f"got {type(network).__name__}")
    ds.attrs["search_seconds"] = time.perf_counter() - start
    engine = ds.attrs.pop("engine")
    return with_provenance(ds, "polychrony.find_polychronous_groups", params, None, engine=engine)


def group_spikes(groups: xr.Dataset, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(neuron, time in s, layer) of the spikes of group `index`, anchors first."""
    index = check_int(index, "index", minimum=0)
    if index >= groups.sizes.get("group", 0):
        raise ValueError(f"index {index} out of range: {groups.sizes.get('group', 0)} groups")
    m = groups["spike_group"].values == index
    return groups["spike_neuron"].values[m], groups["spike_time"].values[m], groups["spike_layer"].values[m]


def group_stimulus(network: Network, groups: xr.Dataset, index: int):
    """The re-simulation of one group found in a Network: (network, inputs, duration).

    The returned network is `network` with its weak excitatory synapses
    removed and a spike source ``anchors__`` that fires the group's anchors
    (transmitting on their strong synapses with delays at least their delay
    to the mother); `inputs` (a dict of SpikeTrains, one trial) fires them at
    the group's anchor times; `duration` (s) covers the group's last spike.
    Simulating it with any engine (the event engine, Brian2 in precise mode)
    reproduces the group's spikes.
    """
    if not isinstance(network, Network):
        raise TypeError(f"network must be a neurodelay Network, got {type(network).__name__}")
    neuron, time_, _ = group_spikes(groups, index)
    n_anchors = groups.sizes["anchor_index"]
    mother = int(groups["mother"].values[index])
    c_rel = float(groups.attrs["strong_threshold"])
    anchors, anchor_d = _anchor_entries(network, mother, c_rel)
    trig = _trigger_network(network, anchors, anchor_d, c_rel)
    lists = [np.zeros(0)] * trig["anchors__"].n
    # the anchor entries (pre, delay) whose spikes reach the mother together (a neuron may have several)
    first = np.flatnonzero(anchors == neuron[0])
    for arrival in time_[0] + anchor_d[first]:
        chosen = []
        for g, t in zip(neuron[:n_anchors], time_[:n_anchors]):
            k = np.flatnonzero((anchors == g) & (np.abs(t + anchor_d - arrival) < 1e-12))
            chosen.append(int(k[0]) if k.size else -1)
        if min(chosen) >= 0:
            break
    else:
        raise ValueError(f"group {index}: its anchors do not match the strong inputs of mother {mother}")
    for k, t in zip(chosen, time_[:n_anchors]):
        lists[k] = np.array([t])
    inputs = {"anchors__": SpikeTrains.from_lists([lists], n_neurons=trig["anchors__"].n)}
    for s in network.sources:
        inputs[s.name] = SpikeTrains.empty(1, s.n)
    return trig, inputs, float(time_.max() + as_seconds(groups.attrs["window"], "window"))
