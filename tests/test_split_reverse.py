"""The factored reverse pass split over lanes (:mod:`neurodelay.layered._split_reverse`, the GPU engine's reverse
kernel for LIF layers) against the serial one (:func:`~neurodelay.layered._kernels.reverse_factored`).

One LIF neuron with 40 presynaptic neurons of random spike trains, its own spikes at given times
(one at the exact time of an arrival, one whose end of refractoriness falls exactly on an arrival,
and a spike after the end of the trial), and time sensitivities sent back from downstream: the lanes
(1, 3 and 32 of them, run one after another) must give the serial pass's dL/dw, dL/dd, dL/dtheta,
time sensitivities of every spike and record check to rounding (1e-13 of the largest entry), and the
same result for any order in which the lanes run.
"""

from __future__ import annotations

import numpy as np
import pytest

from neurodelay.layered import _kernels as K
from neurodelay.layered import _split_reverse as S

T_END = 0.3
TM, TS = 20e-3, 5e-3


def _neuron(refractory: float, seed: int = 3):
    """Synapse table and spikes of one LIF neuron (index P) fed by P presynaptic neurons (one synapse each)."""
    rng = np.random.default_rng(seed)
    n_pre = 40
    trains = [np.sort(rng.uniform(0.0, T_END, rng.integers(0, 9))) for _ in range(n_pre)]
    d = rng.uniform(0.0, 0.05, n_pre)
    d[:2] = 0.0                                                    # arrivals at their spikes' own times
    trains[0] = np.sort(np.append(trains[0], 0.1))                 # an arrival at 0.1 s, when the neuron spikes
    own = np.array([0.02, 0.1, 0.1731, 0.25, T_END + 0.01])
    trains[1] = np.sort(np.append(trains[1], 0.1731 + refractory))  # an arrival when its refractoriness ends
    counts = np.array([len(t) for t in trains] + [len(own)])
    s_start = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    s_end = (s_start + counts).astype(np.int64)
    s_time = np.concatenate(trains + [own])
    n_spikes = len(s_time)
    s_id = rng.permutation(n_spikes).astype(np.int64)
    in_ptr = np.array([0] * (n_pre + 1) + [n_pre], np.int64)
    in_pre = rng.permutation(n_pre).astype(np.int64)               # synapses in any order of their sources
    in_d, in_w = d[in_pre], rng.normal(0.1, 0.3, n_pre)
    em, es = np.exp(np.minimum(s_time, T_END) / TM), np.exp(np.minimum(s_time, T_END) / TS)
    by_id = np.empty(n_spikes), np.empty(n_spikes)
    by_id[0][s_id], by_id[1][s_id] = em, es
    return dict(j=n_pre, in_ptr=in_ptr, in_pre=in_pre, in_d=in_d, in_w=in_w, s_start=s_start, s_end=s_end,
                s_time=s_time, s_id=s_id, dm=np.exp(in_d / TM), ds=np.exp(in_d / TS), em=by_id[0], es=by_id[1],
                sp_i_minus_theta=rng.uniform(0.2, 2.0, n_spikes), sp_source=rng.normal(0.0, 1.0, n_spikes),
                down=rng.normal(0.0, 1.0, (3, n_spikes)), refractory=refractory)


def _serial(nr: dict):
    j, n = nr["j"], len(nr["s_time"])
    bound = K.incoming_count(j, nr["in_ptr"], nr["in_pre"], nr["s_start"], nr["s_end"])
    counts, arr_t, arr_q, arr_s = np.zeros(bound + 1, np.int64), np.zeros(bound), np.zeros(bound, np.int64), \
        np.zeros(bound, np.int64)
    m = K.gather_sorted(j, nr["in_ptr"], nr["in_pre"], nr["in_d"], nr["s_start"], nr["s_end"], nr["s_time"],
                        nr["s_id"], T_END, True, counts, arr_t, arr_q, arr_s, 1)
    lo, hi = nr["s_start"][j], nr["s_end"][j]
    g_time = np.zeros((4, n))
    g_time[1:] = nr["down"]
    g_w, g_d, spike_grad = np.zeros(len(nr["in_w"])), np.zeros(len(nr["in_w"])), np.zeros(n)
    log = [np.zeros(2 * (hi - lo)), np.zeros(2 * (hi - lo), np.int64), np.zeros(2 * (hi - lo), np.int64),
           np.zeros(2 * (hi - lo)), np.zeros(2 * (hi - lo), np.int64)]
    g_th, worst = K.reverse_factored(m, arr_t, arr_q, arr_s, nr["in_w"], nr["dm"], nr["ds"], nr["em"], nr["es"],
                                     nr["s_time"][lo:hi], nr["s_id"][lo:hi], TM, TS, 1.0, 0.0, nr["refractory"], T_END,
                                     nr["sp_i_minus_theta"], nr["sp_source"], 0, g_time, 0, g_w, g_d, spike_grad, *log)
    return dict(g_w=g_w, g_d=g_d, g_time=g_time[0], spike_grad=spike_grad, g_th=g_th, worst=worst)


def _split(nr: dict, n_lanes: int, lane_order):
    j, n = nr["j"], len(nr["s_time"])
    lo, hi = nr["s_start"][j], nr["s_end"][j]
    ev_t, ev_c, ev_s, ev_i = (np.zeros(2 * (hi - lo)), np.zeros(2 * (hi - lo), np.int64),
                              np.zeros(2 * (hi - lo), np.int64), np.zeros(2 * (hi - lo)))
    ne = S.split_events(lo, hi, nr["s_time"], nr["s_id"], 0, nr["refractory"], T_END, ev_t, ev_c, ev_s)
    part_s, part_m = np.full(n_lanes * (ne + 1), np.nan), np.full(n_lanes * (ne + 1), np.nan)
    grads = np.zeros(len(nr["in_w"])), np.zeros(len(nr["in_w"])), np.zeros((1, n))     # g_w, g_d, g_time
    seg_s, seg_m, coef_m, coef_s = (np.full(ne + 1, np.nan) for _ in range(4))
    table = (j, nr["in_ptr"], nr["in_pre"], nr["in_d"], nr["in_w"], nr["s_start"], nr["s_end"], nr["s_time"],
             nr["s_id"], T_END, nr["dm"], nr["ds"], nr["em"], nr["es"])
    for lane in lane_order:
        S.split_arrivals(False, lane, n_lanes, j, 0, *table[1:], TM, TS, ne, ev_t, ev_c, part_s, part_m, *grads)
    for lane in lane_order:
        S.split_reduce(lane, n_lanes, ne, part_s, part_m, seg_s, seg_m)
    spike_grad = np.zeros(n)
    g_th, worst = S.split_costate(ne, ev_t, ev_c, ev_s, ev_i, seg_s, seg_m, TM, TS, 1.0, 0.0, nr["refractory"], 0,
                                  nr["down"].sum(axis=0, keepdims=True), nr["sp_source"], nr["sp_i_minus_theta"],
                                  spike_grad, coef_m, coef_s)
    for lane in lane_order:
        S.split_arrivals(True, lane, n_lanes, j, 0, *table[1:], TM, TS, ne, ev_t, ev_c, coef_s, coef_m, *grads)
    g_w, g_d, g_time = grads
    return dict(g_w=g_w, g_d=g_d, g_time=g_time[0], spike_grad=spike_grad, g_th=g_th, worst=worst), ne


@pytest.mark.parametrize("refractory", [0.0, 2e-3])
def test_split_reverse_equals_serial(refractory):
    nr = _neuron(refractory)
    want = _serial(nr)
    assert np.count_nonzero(want["g_w"]) > 20 and np.count_nonzero(want["g_time"]) > 60
    ref = None
    for n_lanes in (1, 3, 32):
        for order in (range(n_lanes), range(n_lanes - 1, -1, -1)):
            got, ne = _split(nr, n_lanes, order)
            assert ne == (8 if refractory else 4)           # the spike after the end of the trial is no event
            for key, value in want.items():
                scale = max(float(np.max(np.abs(value))), 1e-300)
                # the same sums in another order: ~2e-16 of the largest entry seen, so 1e-13 leaves a
                # margin for cancellation while a misplaced arrival (a wrong tie rule) moves them by far more
                assert np.max(np.abs(got[key] - value)) <= 1e-13 * scale, (n_lanes, key)
            if n_lanes == 3:                                # the lanes' order does not change a bit
                if ref is None:
                    ref = got
                else:
                    for key in want:
                        assert np.array_equal(got[key], ref[key]), key


def test_gpu_split_needs_one_synapse_per_pair():
    """The GPU engine takes the split kernel only for layers where no presynaptic neuron has two synapses onto one
    neuron (two lanes would add to one time sensitivity): a second projection between the same populations
    (index pairs with a repeated pair) makes it fall back to one thread per neuron."""
    from neurodelay.flat import flatten
    from neurodelay.layered.gpu import _one_synapse_per_pair
    from neurodelay.layered.plan import _plan
    from neurodelay.network import LIF, Network, SpikeSource

    base = Network().add(SpikeSource("a", 3), LIF("h", 2), LIF("o", 2)).connect("h", "o", 0.2)
    once = base.connect("a", "h", 0.5, connectivity=([0, 1, 2, 0], [0, 0, 1, 1]))
    twice = base.connect("a", "h", 0.5, connectivity=([0, 1, 2, 0], [0, 0, 1, 0]))     # 0 -> 0 twice
    for model, want in ((once, (True, True)), (twice, (False, True))):
        plan = _plan(model, flatten(model))
        got = tuple(_one_synapse_per_pair(plan, off, size) for off, size, _, _ in plan.layers)
        assert got == want
