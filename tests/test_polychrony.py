"""Polychronous groups: the search on planted chains (Izhikevich model and LIF Network), the controls, and
the Izhikevich network in Brian2 (checkpointed chunks resume identically)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import xarray as xr

from neurodelay.analysis import polychrony as P
from neurodelay.delays import Delays
from neurodelay.network import LIF, Network

MS = 1e-3


# ---- a planted chain in an Izhikevich connectivity ----------------------------------------------

N_EXC, N_INH = 60, 10
ANCHORS = (50, 51, 52)
TO_MOTHER = (4, 7, 10)          # ms, anchor -> mother (layer 2, neuron 0)
TO_SECOND = (7, 10, 13)         # ms, anchor -> the other layer-2 neuron (>= TO_MOTHER: transmitted)
N_LAYERS = 8                    # anchors + 7 layers of two neurons


def izhikevich_latency(n_inputs: int, weight: float = 10.0) -> int:
    """Steps from a coincident arrival of `n_inputs` spikes at a resting Izhikevich RS neuron to its spike,
    with the group search's 1 ms step (input added, v in two half steps, u, then v >= 30 tested)."""
    v, u = -70.0, -14.0
    for step in range(100):
        current = n_inputs * weight if step == 0 else 0.0
        v += 0.5 * ((0.04 * v + 5) * v + 140 - u + current)
        v += 0.5 * ((0.04 * v + 5) * v + 140 - u + current)
        u += 0.02 * (0.2 * v - u)
        if v >= 30:
            return step
    raise AssertionError("no spike")


def planted_chain(seed: int = 3):
    """A connectivity Dataset with weak random synapses and one planted chain of strong ones.

    Returns (dataset, expected) where expected maps neuron -> (spike step, layer), from the
    latencies of a single neuron (izhikevich_latency) and the planted delays.
    """
    rng = np.random.default_rng(seed)
    l3, l2 = izhikevich_latency(3), izhikevich_latency(2)
    pre, post, delay = [], [], []
    fire = {a: max(TO_MOTHER) - d for a, d in zip(ANCHORS, TO_MOTHER)}
    expected = {a: (fire[a], 1) for a in ANCHORS}
    layer_neurons = [[0, 1]]
    for a, dm, ds in zip(ANCHORS, TO_MOTHER, TO_SECOND):
        pre += [a, a]
        post += [0, 1]
        delay += [dm, ds]
    expected[0] = (fire[ANCHORS[0]] + TO_MOTHER[0] + l3, 2)
    expected[1] = (fire[ANCHORS[0]] + TO_SECOND[0] + l3, 2)
    nxt = 2
    for layer in range(3, N_LAYERS + 1):
        prev = layer_neurons[-1]
        new = [nxt, nxt + 1]
        nxt += 2
        for j, target in enumerate(new):
            arrival = max(expected[p][0] for p in prev) + 3 + 4 * j
            for p in prev:
                pre.append(p)
                post.append(target)
                delay.append(arrival - expected[p][0])
            expected[target] = (arrival + l2, layer)
        layer_neurons.append(new)
    strong = len(pre)
    assert all(1 <= d <= 20 for d in delay)
    # the author's stopping rule: the run lasts until 2 D + latency + 1 = 61 steps and at least one step past
    # the last arrival of a spike fired before the end; later spikes are not part of the group
    t_last = 61
    for neuron, (step, _) in sorted(expected.items(), key=lambda kv: kv[1][0]):
        if neuron in ANCHORS:
            continue
        if step >= t_last:
            del expected[neuron]
            continue
        out = [step + d for p, d in zip(pre, delay) if p == neuron]
        t_last = max([t_last] + [x + 1 for x in out])
    # weak background: every neuron gets 15 random outgoing synapses (excitatory 0..5 mV, inhibitory -5)
    existing = set(zip(pre, post))
    for i in range(N_EXC + N_INH):
        targets = rng.choice(N_EXC if i >= N_EXC else N_EXC + N_INH, 15, replace=False)
        for j in targets:
            if j == i or (i, j) in existing:
                continue
            existing.add((i, j))
            pre.append(i)
            post.append(j)
            delay.append(int(rng.integers(1, 21)) if i < N_EXC else 1)
    pre, post = np.array(pre), np.array(post)
    weight = np.r_[np.full(strong, 10.0), np.where(pre[strong:] < N_EXC, rng.uniform(0, 5, len(pre) - strong),
                                                   -5.0)]
    ds = xr.Dataset({"pre": ("synapse", pre), "post": ("synapse", post), "weight": ("synapse", weight),
                     "delay": ("synapse", np.array(delay) * MS)},
                    attrs={"n_exc": N_EXC, "n_inh": N_INH, "w_max": 10.0})
    return ds, expected


def test_planted_chain_is_found_with_its_members_layers_and_timing():
    """The chain fires exactly as computed from a single neuron's latency and the planted delays: one
    group (mother 0, the three anchors), every chain neuron once at its expected step and layer, links
    along the planted synapses with their delays; no other mother yields a group."""
    conn, expected = planted_chain()
    groups = P.find_polychronous_groups(conn)
    assert groups.attrs["n_groups"] == 1, groups.attrs
    assert int(groups["mother"][0]) == 0
    assert sorted(groups["anchor"].values[0]) == sorted(ANCHORS)
    neuron, time, layer = P.group_spikes(groups, 0)
    got = {int(n): (int(round(t / MS)), int(l)) for n, t, l in zip(neuron, time, layer)}
    assert len(neuron) == len(got) == len(expected), "every chain neuron fires once, nothing else"
    assert got == expected
    assert 13 not in got and 12 in expected and 13 not in expected, "the last spike comes after the end of the run"
    assert int(groups["n_layers"][0]) == N_LAYERS and not bool(groups["truncated"][0])
    m = groups["link_group"].values == 0
    planted = {(int(p), int(q)): d for p, q, d, w in zip(conn["pre"].values, conn["post"].values,
                                                        conn["delay"].values, conn["weight"].values) if w >= 10}
    for p, q, d in zip(groups["link_pre"].values[m], groups["link_post"].values[m],
                       groups["link_delay"].values[m]):
        assert (int(p), int(q)) in planted and abs(planted[int(p), int(q)] - d) < 1e-12
        # a link arrives before its postsynaptic spike, within the window
        assert 0 <= got[int(q)][0] * MS - (got[int(p)][0] * MS + d) < groups.attrs["window"]


def test_planted_chain_disappears_after_shuffling_and_with_equal_delays():
    conn, _ = planted_chain()
    shuffled = P.shuffle_weights(conn, seed=5)
    ee = (conn["pre"].values < N_EXC) & (conn["post"].values < N_EXC)
    np.testing.assert_array_equal(np.sort(shuffled["weight"].values[ee]), np.sort(conn["weight"].values[ee]))
    np.testing.assert_array_equal(shuffled["delay"].values, conn["delay"].values)
    assert P.find_polychronous_groups(shuffled).attrs["n_groups"] == 0
    same = P.equal_delays(conn)
    assert np.ptp(same["delay"].values[conn["pre"].values < N_EXC]) == 0
    assert P.find_polychronous_groups(same).attrs["n_groups"] == 0


def test_search_refuses_bad_arguments():
    conn, _ = planted_chain()
    with pytest.raises(ValueError, match="strong_fraction"):
        P.find_polychronous_groups(conn, strong_fraction=-1)
    with pytest.raises(TypeError, match="network"):
        P.find_polychronous_groups({"pre": 1})
    bad = conn.copy()
    bad["delay"] = bad["delay"] + 0.3 * MS
    with pytest.raises(ValueError, match="whole numbers"):
        P.find_polychronous_groups(bad)


# ---- a planted chain in a LIF Network ----------------------------------------------------------

W_STRONG = 9.0   # one input peaks at 0.70 theta (tau_m 10 ms, tau_s 1 ms), two fire; reset -1: once each


def lif_chain(seed: int = 4) -> Network:
    """LIF neurons 0..16 with a planted chain (anchors 14, 15, 16 -> 0; pairs of layers beyond), weak random
    synapses elsewhere, delays of all three kinds (the planted totals are what matter)."""
    rng = np.random.default_rng(seed)
    n = 24
    anchors, to_mother, to_second = (14, 15, 16), (2e-3, 3.5e-3, 5e-3), (3e-3, 4.5e-3, 6e-3)
    pre, post, total = [], [], []
    for a, dm, ds in zip(anchors, to_mother, to_second):
        pre += [a, a]
        post += [0, 1]
        total += [dm, ds]
    prev, nxt = [0, 1], 2
    for layer in range(3, 9):
        new = [nxt, nxt + 1]
        nxt += 2
        for j, target in enumerate(new):
            for k, p in enumerate(prev):
                pre.append(p)
                post.append(target)
                total.append(2e-3 + 1e-3 * j + 0.7e-3 * k)   # delays differ: the spikes are not synchronous
        prev = new
    strong = len(pre)
    for _ in range(60):
        i, j = rng.integers(0, n, 2)
        if i != j and (i, j) not in set(zip(pre, post)):
            pre.append(int(i))
            post.append(int(j))
            total.append(float(rng.uniform(1e-3, 8e-3)))
    pre, post, total = np.array(pre), np.array(post), np.array(total)
    weight = np.r_[np.full(strong, W_STRONG), rng.uniform(0.0, 2.0, len(pre) - strong)]
    axonal = rng.uniform(0, 0.5e-3, n)
    dendritic = rng.uniform(0, 0.5e-3, n)
    synaptic = total - axonal[pre] - dendritic[post] + 1e-3
    net = Network().add(LIF("exc", n, tau_m=10e-3, tau_s=1e-3, reset=-1.0))
    return net.connect("exc", "exc", weight, (pre, post), Delays(axonal, dendritic, synaptic))


def test_lif_chain_is_found_and_agrees_with_brian2_precise():
    """The search on a LIF Network (exact event engine) finds the planted chain; re-simulating the group's
    anchors with Brian2 in precise mode (dt = 10 us) gives the same spikes within 20 us."""
    from neurodelay.brian import simulate as brian_simulate

    net = lif_chain()
    groups = P.find_polychronous_groups(net, n_threads=1)
    assert groups.attrs["n_groups"] == 1, groups.attrs
    assert int(groups["mother"][0]) == 0 and sorted(groups["anchor"].values[0]) == [14, 15, 16]
    neuron, time, layer = P.group_spikes(groups, 0)
    # neuron 13 would fire after the last arrival of the spikes before it: the run ends there (author's rule)
    assert sorted(neuron[3:]) == list(range(13))
    np.testing.assert_array_equal(layer[3:][np.argsort(neuron[3:])], np.repeat(np.arange(2, 9), 2)[:13])
    trig, inputs, duration = P.group_stimulus(net, groups, 0)
    duration = np.ceil(duration / 1e-5) * 1e-5
    record = brian_simulate(trig, inputs, duration, mode="precise", dt=1e-5, device="runtime")
    spikes = record.spikes("exc")
    # the group ends at its last spike (later spikes, such as neuron 13's, are outside the search's run)
    early = spikes.time <= time.max() + 2e-5
    got_neuron, got_time = spikes.neuron[early], spikes.time[early]
    assert sorted(got_neuron) == sorted(neuron[3:]), "Brian2 fires the same neurons, once each"
    order = np.argsort(got_neuron)
    mine = time[3:][np.argsort(neuron[3:])]
    assert np.max(np.abs(got_time[order] - mine)) < 2e-5
    assert P.find_polychronous_groups(P.shuffle_weights(net, seed=1)).attrs["n_groups"] == 0


# ---- the Izhikevich network in Brian2 ----------------------------------------------------------

IZHIKEVICH_SIZES = dict(n_exc=100, n_inh=25, n_syn=20, max_delay=20e-3)   # a reduced network


@pytest.fixture(scope="module")
def two_chunks(tmp_path_factory):
    """The reduced network (seed 2) for 2 chunks of 1 s with a checkpoint: (result, checkpoint folder).
    Shared by the resume test (which resumes from a copy of the folder) and the author's-loop test."""
    folder = tmp_path_factory.mktemp("izhikevich") / "b"
    result = P.simulate_izhikevich(2.0, seed=2, chunk=1.0, checkpoint=folder, progress=False, **IZHIKEVICH_SIZES)
    return result, folder


@pytest.mark.slow
def test_izhikevich_network_runs_and_resumes_identically(tmp_path, two_chunks):
    """A reduced network (100 + 25 neurons, 20 synapses each) for 3 chunks of 1 s: running it in one
    call, or 2 chunks then (after a 'crash') a third from the checkpoint, gives identical weights and
    spike counts; STDP moved the weights, inhibitory ones stayed; everything stays within [0, 10]."""
    sizes = IZHIKEVICH_SIZES
    whole = P.simulate_izhikevich(3.0, seed=2, chunk=1.0, checkpoint=tmp_path / "a", progress=False, **sizes)
    shutil.copytree(two_chunks[1], tmp_path / "b")        # the 2-chunk run's checkpoint, resumed here
    assert two_chunks[0]["chunk_end"].values.tolist() == [1.0, 2.0]
    resumed = P.simulate_izhikevich(3.0, seed=2, chunk=1.0, checkpoint=tmp_path / "b", progress=False, **sizes)
    np.testing.assert_array_equal(whole["weight"].values, resumed["weight"].values)
    np.testing.assert_array_equal(whole["spikes_exc"].values, resumed["spikes_exc"].values)
    exc = whole["pre"].values < 100
    w = whole["weight"].values
    assert np.all((w[exc] >= 0) & (w[exc] <= 10)) and np.all(w[~exc] == -5)
    assert np.abs(w[exc] - 6).max() > 0.5, "STDP changed the excitatory weights"
    assert np.all(whole["spikes_exc"].values > 0) and np.all(whole["spikes_inh"].values > 0)
    with pytest.raises(ValueError, match="another network"):
        P.simulate_izhikevich(3.0, seed=3, chunk=1.0, checkpoint=tmp_path / "b", progress=False, **sizes)


def author_loop(conn: xr.Dataset, thalamic: list[np.ndarray], chunk_ms: int):
    """The model as the author's C++ main loop states it, in numpy, chunk after chunk (spikes in flight at a
    chunk boundary dropped, like the Brian2 runner): per chunk (excitatory, inhibitory) spike counts, and the
    excitatory weights at the end. LTP is read from a per-neuron trace history through the delay."""
    n_exc, n = int(conn.attrs["n_exc"]), int(conn.attrs["n_exc"] + conn.attrs["n_inh"])
    pre, post, w = conn["pre"].values, conn["post"].values, conn["weight"].values.astype(float).copy()
    dd = np.rint(conn["delay"].values / MS).astype(int) - 1
    exc = pre < n_exc
    sd = np.zeros(len(pre))
    a = np.where(np.arange(n) < n_exc, 0.02, 0.1)
    dpar = np.where(np.arange(n) < n_exc, 8.0, 2.0)
    v = np.full(n, -65.0)
    u = 0.2 * v
    ltd = np.zeros(n)
    total = chunk_ms * len(thalamic)
    D = dd.max() + 1
    ltp = np.zeros((total + D + 2, n))          # ltp[x + D] = trace of each neuron at step x
    incoming = [np.flatnonzero((post == i) & exc) for i in range(n)]
    by_delay = {(j, k): np.flatnonzero((pre == j) & (dd == k)) for j in range(n) for k in range(D)}
    firings, counts = [], []
    for c, thal in enumerate(thalamic):
        firings = []                            # in-flight spikes are not carried over
        n_e = n_i = 0
        for step in range(chunk_ms):
            t = c * chunk_ms + step
            current = np.zeros(n)
            current[int(thal[step])] = 20.0
            for i in np.flatnonzero(v >= 30):
                v[i] = -65.0
                u[i] += dpar[i]
                ltp[t + D, i] = 0.1
                ltd[i] = 0.12
                s = incoming[i]
                sd[s] += ltp[t + D - dd[s] - 1, pre[s]]
                firings.append((t, i))
                n_e += i < n_exc
                n_i += i >= n_exc
            for tf, j in firings:
                if 0 <= t - tf < D:
                    s = by_delay[j, t - tf]
                    np.add.at(current, post[s], w[s])
                    if j < n_exc:
                        sd[s] -= ltd[post[s]]
            firings = [(tf, j) for tf, j in firings if t - tf < D]
            v += 0.5 * ((0.04 * v + 5) * v + 140 - u + current)
            v += 0.5 * ((0.04 * v + 5) * v + 140 - u + current)
            u += a * (0.2 * v - u)
            ltp[t + D + 1] = 0.95 * ltp[t + D]
            ltd *= 0.95
            if (t + 1) % 1000 == 0:
                sd[exc] *= 0.9
                w[exc] = np.clip(w[exc] + 0.01 + sd[exc], 0, 10)
        counts.append((n_e, n_i))
    return np.array(counts), w[exc]


@pytest.mark.slow
def test_brian2_model_follows_the_authors_loop(two_chunks):
    """Two 1 s chunks of a reduced network in Brian2 against the author's loop in numpy (same connectivity and
    thalamic input): the same numbers of spikes in both chunks (the network is chaotic: one different spike
    would change them), and the same weights after 2 s except where the LTP of a spike in flight at the chunk
    boundary is read differently (the loop reads the presynaptic trace, Brian2 the last arrival)."""
    conn = P.izhikevich_connectivity(seed=2, **IZHIKEVICH_SIZES)
    brian = two_chunks[0]          # simulate_izhikevich(2.0, seed=2, chunk=1.0, ...) with a checkpoint
    thal = [P._thalamic_input(2, k, 125, 1000) for k in range(2)]
    counts, w = author_loop(conn, thal, 1000)
    np.testing.assert_array_equal(np.c_[brian["spikes_exc"].values, brian["spikes_inh"].values], counts)
    mine = brian["weight"].values[conn["pre"].values < 100]
    close = np.abs(mine - w) < 1e-9
    assert close.mean() > 0.97, close.mean()
    assert np.abs(mine - w).max() < 0.5


# ---- the analysis script's helpers (analyses/polychrony.py) ------------------------------------

def test_script_counts_whole_groups_per_mother_with_a_bootstrap_over_mothers(load_script):
    """The estimate is (groups per searched mother) x n_exc, truncated groups (runaway cascades cut at the
    cap) left out; the 95 % interval resamples mothers, so it lies between the smallest and the largest
    per-mother count (x n_exc), and collapses to the estimate when every mother has the same count."""
    script = load_script("analyses/polychrony.py")
    groups = xr.Dataset({"mother": ("group", np.array([0, 0, 0, 2, 2])),
                         "truncated": ("group", np.array([False, False, False, False, True]))})
    n_exc = 8
    est, low, high = script.bootstrap_count(groups, np.array([0, 1, 2, 3]), n_exc, seed=1)
    assert est == (3 + 1) / 4 * n_exc                      # per-mother counts 3, 0, 1, 0
    assert 0 <= low < est < high <= 3 * n_exc
    even = xr.Dataset({"mother": ("group", np.array([0, 1, 2, 3])), "truncated": ("group", np.zeros(4, bool))})
    assert script.bootstrap_count(even, np.array([0, 1, 2, 3]), n_exc, seed=1) == (n_exc, n_exc, n_exc)
    # several searches of the same mothers (shuffles): per-mother counts averaged, (3+1)/2 and (0+1)/2 ...
    both = script.bootstrap_count([groups, even], np.array([0, 1, 2, 3]), n_exc, seed=1)
    assert both[0] == np.mean([(3 + 1) / 2, (0 + 1) / 2, (1 + 1) / 2, (0 + 1) / 2]) * n_exc
    assert 0.5 * n_exc <= both[1] < both[0] < both[2] <= 2 * n_exc


def test_script_reuses_a_finished_search_and_redoes_a_changed_one(load_script, tmp_path, monkeypatch):
    """A search is cached under a hash of what it depends on: the same call again reads the file (the search
    is not called), a changed weight searches again; the cached groups equal the fresh ones."""
    script = load_script("analyses/polychrony.py")
    conn, _ = planted_chain()
    cfg = dict(min_layers=7, strong_fraction=0.95)
    first, _ = script.count(conn, np.arange(N_EXC), cfg, 1, 1000, tmp_path)
    assert first.attrs["n_groups"] == 1 and len(list(tmp_path.glob("groups_*.nc"))) == 1

    def no_search(*args, **kwargs):
        raise AssertionError("searched again")
    real_search = script.P.find_polychronous_groups
    monkeypatch.setattr(script.P, "find_polychronous_groups", no_search)
    again, _ = script.count(conn, np.arange(N_EXC), cfg, 1, 1000, tmp_path)
    for name in ("mother", "anchor", "spike_neuron", "spike_time", "spike_layer", "link_pre", "link_delay"):
        np.testing.assert_array_equal(again[name].values, first[name].values)
    changed = conn.copy()
    w = changed["weight"].values.copy()
    w[0] = 0.0                                             # cut the first planted synapse
    changed["weight"] = ("synapse", w)
    with pytest.raises(AssertionError, match="searched again"):
        script.count(changed, np.arange(N_EXC), cfg, 1, 1000, tmp_path)
    monkeypatch.setattr(script.P, "find_polychronous_groups", real_search)
    assert script.count(changed, np.arange(N_EXC), cfg, 1, 1000, tmp_path)[0].attrs["n_groups"] == 0


def test_script_weight_statistics_against_a_direct_count(load_script):
    """Strong / weak fractions, mean weight and anchor triplets of every mother over E->E synapses, checked
    against a plain loop over synapses."""
    script = load_script("analyses/polychrony.py")
    conn, _ = planted_chain()
    rng = np.random.default_rng(4)
    hist = np.where(conn["pre"].values < N_EXC, rng.uniform(0, 10, (3, conn.sizes["synapse"])), -5.0)
    trained = conn.assign(weight_history=(("snapshot", "synapse"), hist))
    stats = script.weight_statistics(trained, 10.0, 0.95)
    pre, post = conn["pre"].values, conn["post"].values
    for k in range(3):
        ee = [s for s in range(len(pre)) if pre[s] < N_EXC and post[s] < N_EXC]
        w = hist[k, ee]
        assert stats["strong"][k] == np.mean(w > 9.5) and stats["weak"][k] == np.mean(w < 0.5)
        assert abs(stats["mean"][k] - w.mean()) < 1e-12
        n_in = {}
        for s in ee:
            if hist[k, s] > 9.5:
                n_in[post[s]] = n_in.get(post[s], 0) + 1
        assert stats["triplets"][k] == sum(n * (n - 1) * (n - 2) // 6 for n in n_in.values())


def test_script_end_window_estimate_resamples_times_and_mothers(load_script):
    """The end estimate averages per-mother counts over times and mothers: the point values are the plain
    means (x n_exc) and their ratio; the intervals collapse when nothing varies, widen when only the times
    differ (the times are resampled, not only the mothers), and contain the point values."""
    script = load_script("analyses/polychrony.py")
    n_exc = 10
    flat = script.window_estimate(np.full((3, 5), 2.0), np.full((3, 5), 0.5), n_exc, seed=1, n_boot=300)
    assert flat["real"] == 20.0 and flat["shuffled"] == 5.0 and flat["ratio"] == 4.0
    assert flat["ratio_low"] == flat["ratio_high"] == 4.0 and flat["real_low"] == flat["real_high"] == 20.0
    # every mother equal within a time, times different: a bootstrap over mothers alone would give no width
    by_time = np.repeat(np.array([[1.0], [3.0], [8.0]]), 6, axis=1)
    est = script.window_estimate(by_time, np.ones((3, 6)), n_exc, seed=2, n_boot=500)
    assert est["real"] == by_time.mean() * n_exc and est["ratio"] == by_time.mean()
    assert 1.0 * n_exc <= est["real_low"] < est["real"] < est["real_high"] <= 8.0 * n_exc
    assert est["ratio_low"] < est["ratio"] < est["ratio_high"]
    rng = np.random.default_rng(3)
    real, shuffled = rng.poisson(3.0, (4, 30)).astype(float), rng.poisson(1.0, (4, 30)).astype(float)
    est = script.window_estimate(real, shuffled, n_exc, seed=3, n_boot=500)
    assert abs(est["ratio"] - real.mean() / shuffled.mean()) < 1e-12
    assert est["ratio_low"] < est["ratio"] < est["ratio_high"]
    with pytest.raises(ValueError, match="same non-empty"):
        script.window_estimate(real, shuffled[:, :5], n_exc, seed=3)


def test_script_strong_overlap_against_a_direct_count(load_script):
    """The persistence of strong E->E synapses (fraction of those strong at t still strong at t + lag, mean
    over t; snapshots after `skip`) against a loop over snapshot pairs and synapses; chance is the fraction
    strong; unequal snapshot spacing is refused."""
    script = load_script("analyses/polychrony.py")
    conn, _ = planted_chain()
    rng = np.random.default_rng(5)
    n_snap = 6
    hist = np.where(conn["pre"].values < N_EXC, rng.uniform(0, 10, (n_snap, conn.sizes["synapse"])), -5.0)
    hist[:, :40] = 10.0                                          # some synapses strong throughout
    times = 100.0 * (np.arange(n_snap) + 1)
    trained = conn.assign(weight_history=(("snapshot", "synapse"), hist), snapshot_time=("snapshot", times))
    lag, overlap, chance = script.strong_overlap(trained, 10.0, 0.9, skip=150.0)
    pre, post = conn["pre"].values, conn["post"].values
    ee = [s for s in range(len(pre)) if pre[s] < N_EXC and post[s] < N_EXC]
    used = [k for k in range(n_snap) if times[k] > 150.0]
    np.testing.assert_allclose(lag, 100.0 * np.arange(1, len(used)))
    for j, d in enumerate(range(1, len(used))):
        fractions = []
        for a, b in zip(used[:-d], used[d:]):
            strong_a = [s for s in ee if hist[a, s] > 9.0]
            fractions.append(sum(hist[b, s] > 9.0 for s in strong_a) / len(strong_a))
        assert abs(overlap[j] - np.mean(fractions)) < 1e-12
    assert abs(chance - np.mean([hist[k, s] > 9.0 for k in used for s in ee])) < 1e-12
    uneven = trained.assign(snapshot_time=("snapshot", times ** 1.1))
    with pytest.raises(ValueError, match="equally spaced"):
        script.strong_overlap(uneven, 10.0, 0.9, skip=0.0)


# ---- several networks (analyses/polychrony_networks.py) ------------------------------------------

def _fake_result(seed, real, shuffled, scale="full"):
    """A polychrony.py result reduced to what the pooling reads (end estimate of one network)."""
    ds = xr.Dataset({"group_count": (("condition", "time"), np.array([[real], [shuffled], [np.nan], [0.0]]))},
                    coords=dict(condition=["real", "shuffled", "equal_delays", "delays_equalised"], time=[18000.0],
                                end_time=[17400.0, 18000.0]))
    ds.attrs.update(seed=seed, scale=scale, model_time=18000.0, end_real=real, end_real_low=real / 2,
                    end_real_high=real * 2, end_shuffled=shuffled, end_shuffled_low=shuffled / 2,
                    end_shuffled_high=shuffled * 2, end_ratio=real / shuffled, end_ratio_low=1.0,
                    end_ratio_high=9.0, ratio_end=real / shuffled)
    return ds


def test_networks_are_pooled_by_their_mean_counts(load_script):
    script = load_script("analyses/polychrony_networks.py")
    pooled = script.pool_networks({3: _fake_result(3, 2000.0, 400.0), 1: _fake_result(1, 1000.0, 400.0)})
    assert list(pooled["network"].values) == [1, 3]
    np.testing.assert_allclose(pooled["end_ratio"].values, [2.5, 5.0])
    assert pooled.attrs["pooled_ratio"] == pytest.approx(1500.0 / 400.0)        # not the mean of the ratios
    assert pooled.attrs["mean_ratio"] == pytest.approx(3.75)
    assert pooled.attrs["std_ratio"] == pytest.approx(np.std([2.5, 5.0], ddof=1))
    assert (pooled.attrs["min_ratio"], pooled.attrs["max_ratio"]) == (2.5, 5.0)
    assert list(pooled["delays_equalised_max"].values) == [0.0, 0.0]
    with pytest.raises(ValueError, match="different scales"):
        script.pool_networks({1: _fake_result(1, 1.0, 1.0), 2: _fake_result(2, 1.0, 1.0, scale="reduced")})
    old = _fake_result(1, 1.0, 1.0)
    del old.attrs["end_ratio"]
    with pytest.raises(ValueError, match="no end estimate"):
        script.pool_networks({1: old})


def test_network_results_are_reused_only_under_the_same_protocol(load_script, tmp_path, monkeypatch):
    script = load_script("analyses/polychrony_networks.py")
    from neurodelay.io import write_netcdf
    kept = _fake_result(2, 10.0, 5.0)
    kept.attrs["protocol"] = " ".join(script.PROTOCOL["full"])
    write_netcdf(kept, tmp_path / "seed2.nc")
    monkeypatch.setattr(script, "_polychrony_script", lambda: pytest.fail("a matching result must be reused"))
    assert script.network_result("full", 2, tmp_path).attrs["end_real"] == 10.0
    kept.attrs["protocol"] = "--full --mothers 50"                             # another protocol: rerun
    write_netcdf(kept, tmp_path / "seed2.nc")
    with pytest.raises(pytest.fail.Exception):
        script.network_result("full", 2, tmp_path)


def test_inconsistent_network_results_end_in_one_line_and_exit_2(load_script, tmp_path, monkeypatch, capsys):
    script = load_script("analyses/polychrony_networks.py")
    fakes = {1: _fake_result(1, 1.0, 1.0), 2: _fake_result(2, 1.0, 1.0, scale="reduced")}
    monkeypatch.setattr(script, "ROOT", tmp_path)
    monkeypatch.setattr(script, "network_result", lambda scale, seed, folder: fakes[seed])
    assert script.main(["--full", "--seeds", "1,2", "--out", str(tmp_path / "out.nc")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "different scales" in err and "\n" not in err
    assert not (tmp_path / "out.nc").exists()
