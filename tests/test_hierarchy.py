"""Temporal hierarchy: tau profiles, Moro et al.'s MTS-XOR, distribution fits, a tiny sweep end to end."""

import numpy as np
import pytest
from scipy import stats

from neurodelay.analysis.hierarchy import fit_tau_distribution, hierarchy_sweep, learned_taus, tau_profile
from neurodelay.data import mts_xor, mts_xor_moro


# ------------------------------------------------------------------------------------------ profiles
@pytest.mark.parametrize("profile", ["linear", "tanh"])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 6])
def test_profile_constant_at_zero_delta(profile, n):
    np.testing.assert_allclose(tau_profile(0.3, 0.0, n, profile), np.full(n, 0.3))


@pytest.mark.parametrize("profile", ["linear", "tanh"])
@pytest.mark.parametrize("delta", [-0.5, -0.1, 0.2, 0.5])
def test_profile_monotone_with_endpoints(profile, delta):
    tau = tau_profile(0.3, delta, 5, profile)
    d = np.diff(tau)
    assert np.all(d > 0) if delta > 0 else np.all(d < 0)
    # both profiles span exactly tau_center -+ delta / 2 and are symmetric about the centre
    np.testing.assert_allclose([tau[0], tau[-1]], [0.3 - delta / 2, 0.3 + delta / 2], atol=1e-12)
    np.testing.assert_allclose(tau + tau[::-1], 0.6, atol=1e-12)


def test_linear_and_tanh_agree_where_they_must():
    for n in (1, 2):
        np.testing.assert_allclose(tau_profile(0.3, 0.4, n, "linear"), tau_profile(0.3, 0.4, n, "tanh"))
    lin, th = tau_profile(0.3, 0.4, 5, "linear"), tau_profile(0.3, 0.4, 5, "tanh")
    assert np.all(np.abs(th[1:-1] - 0.3) > np.abs(lin[1:-1] - 0.3) - 1e-12)   # tanh: concave towards ends
    assert not np.allclose(lin, th)


def test_profile_clipped_and_spread():
    tau = tau_profile(0.1, -0.5, 3, "linear")
    assert tau.min() >= 1e-3 and tau[-1] == pytest.approx(1e-3)
    layers = tau_profile(0.3, 0.2, 3, spread=0.1, n_neurons=4000, seed=1)
    for t, mean in zip(layers, tau_profile(0.3, 0.2, 3)):
        assert abs(t.mean() - mean) < 4 * 0.1 * mean / np.sqrt(4000)
        assert abs(t.std() / mean - 0.1) < 0.01
    with pytest.raises(ValueError, match="profile"):
        tau_profile(0.3, 0.1, 3, "cubic")
    with pytest.raises(ValueError, match="n_neurons"):
        tau_profile(0.3, 0.1, 3, spread=0.1)


# ------------------------------------------------------------------------------------------ Moro's MTS-XOR
def _counts(data, neurons, t0, t1):
    tr = data.inputs
    m = (tr.neuron >= neurons[0]) & (tr.neuron < neurons[1]) & (tr.time >= t0) & (tr.time < t1)
    return np.bincount(tr.trial[m], minlength=tr.n_trials)


def test_moro_rates_windows_labels_noise():
    n = 2000
    d = mts_xor_moro(n, seed=3)
    assert d.duration == pytest.approx(1.0) and d.n_inputs == 40
    bits, seg = d.trial_meta["bits"], d.trial_meta["segment_labels"]
    assert bits.shape == (n, 7) and seg.shape == (n, 6)
    np.testing.assert_array_equal(seg, bits[:, :1] ^ bits[:, 1:])
    np.testing.assert_array_equal(d.labels, seg[:, -1])
    assert abs(bits.mean() - 0.5) < 4 * 0.5 / np.sqrt(bits.size)
    # per-neuron per-step firing probability: p OR noise = p + 0.01 - 0.01 p
    def prob(p):
        return p + 0.01 - 0.01 * p
    ch1, ch2 = (0, 20), (20, 40)
    for bit, p in ((0, 0.2), (1, 0.6)):
        sel = bits[:, 0] == bit
        cells = sel.sum() * 20 * 10
        k = _counts(d, ch1, 0.0, 0.1)[sel].sum()
        assert abs(k / cells - prob(p)) < 4 * np.sqrt(prob(p) * (1 - prob(p)) / cells)
    for s, (t0, t1) in enumerate(d.meta["active_windows"]):
        assert t1 - t0 == pytest.approx(0.1)
        for bit, p in ((0, 0.2), (1, 0.6)):
            sel = bits[:, 1 + s] == bit
            cells = sel.sum() * 20 * 10
            k = _counts(d, ch2, t0, t1)[sel].sum()
            assert abs(k / cells - prob(p)) < 4 * np.sqrt(prob(p) * (1 - prob(p)) / cells)
    # noise only: channel 1 after its window, channel 2 in the gaps and before segment 1
    cells = n * 20 * 90
    k = _counts(d, ch1, 0.1, 1.0).sum()
    assert abs(k / cells - 0.01) < 4 * np.sqrt(0.01 * 0.99 / cells)
    gaps = [(a, b) for (a, _), (b, _) in zip(d.meta["segment_windows"], d.meta["active_windows"])]
    k = sum(_counts(d, ch2, a, b).sum() for a, b in [(0.0, 0.1)] + gaps)
    cells = n * 20 * (10 + 5 * 6)
    assert abs(k / cells - 0.01) < 4 * np.sqrt(0.01 * 0.99 / cells)
    # at most one spike per neuron and step, times uniform inside the steps
    tr = d.inputs
    step = np.floor(tr.time / 0.01).astype(int)
    key = (tr.trial * 40 + tr.neuron) * 100 + step
    assert np.unique(key).size == key.size
    frac = tr.time / 0.01 - step
    assert stats.kstest(frac, "uniform").pvalue > 1e-4


def test_moro_grid_times_and_variant_option():
    d = mts_xor_moro(20, seed=0, jitter=False)
    np.testing.assert_allclose(d.inputs.time / 0.01, np.round(d.inputs.time / 0.01), atol=1e-9)
    e = mts_xor(20, seed=0, variant="moro", jitter=False)
    np.testing.assert_array_equal(d.inputs.time, e.inputs.time)
    np.testing.assert_array_equal(d.labels, e.labels)
    assert mts_xor(5, seed=0).name == "mts_xor"
    with pytest.raises(ValueError, match="variant"):
        mts_xor(5, variant="zheng")
    with pytest.raises(ValueError, match="p_noise"):
        mts_xor_moro(5, p_noise=1.5)


# ------------------------------------------------------------------------------------------ fits
@pytest.mark.parametrize("law", ["gamma", "lognormal"])
def test_fit_recovers_parameters(law):
    rng = np.random.default_rng(5)
    n = 4000
    if law == "gamma":
        x = rng.gamma(3.0, 0.02 / 3.0, n)           # shape 3, mean 20 ms (Perez-Nieves et al.'s init)
        true = (3.0, 0.02 / 3.0)
    else:
        x = rng.lognormal(np.log(0.05), 0.4, n)
        true = (0.4, 0.05)
    fit = fit_tau_distribution(x)
    row = fit.sel(distribution=law)
    np.testing.assert_allclose([row["shape"], row["scale"]], true, rtol=0.06)
    assert float(row["ks_pvalue"]) > 0.01
    other = "lognormal" if law == "gamma" else "gamma"
    # the true family has the better likelihood and AIC
    assert float(fit["aic"].sel(distribution=law)) < float(fit["aic"].sel(distribution=other))
    # independent check of the log-likelihood
    ref = stats.gamma(*true[:1], scale=true[1]) if law == "gamma" else stats.lognorm(true[0], scale=true[1])
    assert float(row["log_likelihood"]) >= float(np.sum(ref.logpdf(x))) - 1e-6   # MLE beats the truth
    with pytest.raises(ValueError, match="samples"):
        fit_tau_distribution([0.1, -0.2, 0.3])


def test_learned_taus_slope_and_quartiles():
    rng = np.random.default_rng(0)
    base = np.array([0.1, 0.2, 0.3])
    vals = base[None, :, None] + 0.01 * rng.standard_normal((4, 3, 200))
    out = learned_taus(vals)
    np.testing.assert_allclose(out["slope"], 0.1, atol=0.01)
    np.testing.assert_allclose(out["median"], np.broadcast_to(base, (4, 3)), atol=0.005)
    assert np.all(out["q25"] < out["median"]) and np.all(out["median"] < out["q75"])
    assert learned_taus(vals[:, ::-1])["slope"].max() < 0


# ------------------------------------------------------------------------------------------ sweep
def test_tiny_hierarchy_sweep_end_to_end(tmp_path):
    ds = hierarchy_sweep((-0.2, 0.2), (3,), seeds=1, folder=tmp_path / "sw", executor="serial",
                         epochs=1, n_train=24, n_test=24, batch_size=12, hidden=4)
    assert ds["accuracy"].dims[:2] == ("delta_tau", "n_layers") or set(ds["accuracy"].dims) >= {"delta_tau"}
    acc = ds["accuracy"].values
    assert np.all((acc >= 0) & (acc <= 1))
    assert (ds["status"] == "ok").all()
    # the initial profile is visible in the learned-tau record (weights only: unchanged)
    from neurodelay.analysis.hierarchy import NETWORK_OPTIONS
    memory = NETWORK_OPTIONS["memory"]                  # the time constant that carries the profile
    tau = ds[memory].sel(delta_tau=0.2, n_layers=3).isel(seed=0).mean("neuron").values
    assert tau[1] > tau[0]
    other = ds["tau_m" if memory == "tau_s" else "tau_s"].sel(delta_tau=0.2, n_layers=3).isel(seed=0).values
    np.testing.assert_allclose(other, other.flat[0])    # the other constant is homogeneous
    # resuming runs nothing new and returns the same numbers
    again = hierarchy_sweep((-0.2, 0.2), (3,), seeds=1, folder=tmp_path / "sw", executor="serial",
                            epochs=1, n_train=24, n_test=24, batch_size=12, hidden=4)
    np.testing.assert_array_equal(again["accuracy"].values, acc)


def test_sweep_and_budget_pass_task_and_activity_options_through(tmp_path):
    """hierarchy_sweep and budget_point give hierarchy_point every keyword (task and activity options): their
    results equal direct calls with the same arguments, and differ from calls without the options."""
    from neurodelay.analysis.hierarchy import ACTIVITY_OPTIONS, budget_point, hierarchy_point, matched_hidden
    tiny = dict(epochs=1, n_train=16, n_test=16, batch_size=8, n_segments=1, **ACTIVITY_OPTIONS)
    ds = hierarchy_sweep((0.2,), (3,), seeds=1, folder=tmp_path / "sw", executor="serial", hidden=4, **tiny)
    assert ds.sizes["segment"] == 1
    seed = int(ds["seed_value"].values[0])
    direct = hierarchy_point(0.2, 3, seed=seed, hidden=4, **tiny)
    np.testing.assert_array_equal(ds["accuracy"].sel(delta_tau=0.2, n_layers=3).values[0], direct["accuracy"].values)
    np.testing.assert_array_equal(ds["hidden_spikes"].sel(delta_tau=0.2, n_layers=3).values[0],
                                  direct["hidden_spikes"].values)
    plain = hierarchy_point(0.2, 3, seed=seed, hidden=4, epochs=1, n_train=16, n_test=16, batch_size=8, n_segments=1)
    assert not np.array_equal(plain["hidden_spikes"].values, direct["hidden_spikes"].values)   # calibrated start
    b = budget_point("both", 0.1, seed=3, budget=200, n_layers=3, **tiny)
    h = matched_hidden(200, 3, "weight,synaptic,tau_m,tau_s")
    ref = hierarchy_point(0.0, 3, seed=3, learn="weight,synaptic,tau_m,tau_s", hidden=h, d_max=0.1,
                          init_delay=0.1, **tiny)
    assert b.sizes["segment"] == 1 and int(b["hidden"]) == h
    np.testing.assert_array_equal(b["segment_accuracy"].values, ref["segment_accuracy"].values)


# ------------------------------------------------------------------------------------------ script + figure
def test_script_quick_and_figure(quick_analysis, draw_offline):
    import json

    from neurodelay.analysis.hierarchy import ACTIVITY_OPTIONS
    module, ds, results = quick_analysis("temporal_hierarchy")
    assert ds["sweep_accuracy"].dims == ("delta_tau", "n_layers", "seed")
    assert set(ds["memory"].values) == {"delays", "taus", "both"}
    # every part ran on the recorded task (one segment) with the activity options
    assert ds.attrs["n_segments"] == 1 and ds.sizes["segment"] == 1
    assert json.loads(ds.attrs["task"]) == dict(module.TASK) and module.TASK["n_segments"] == 1
    assert all(module.TASK[k] == v for k, v in ACTIVITY_OPTIONS.items())
    # calibrated to 20 Hz before training: no hidden layer silent after one epoch
    assert np.all(ds["sweep_hidden_spikes"].values > 0)
    # learned taus: paired with the sweep's fixed homogeneous network, and only the trained constant moved
    np.testing.assert_array_equal(ds["baseline_accuracy"].values,
                                  ds["sweep_accuracy"].sel(delta_tau=0.0, n_layers=3).values)
    only_s = ds.sel(learn="weight,tau_s")
    assert np.any(np.abs(only_s["learned_tau_s"].values - 5e-3) > 1e-6)
    both = ds.sel(learn="weight,tau_m,tau_s")
    assert not np.allclose(both["learned_tau_m"].values, only_s["learned_tau_m"].values)
    np.testing.assert_allclose(ds["learned_median"].sel(learn="weight,tau_s", constant="tau_m").values,
                               np.median(only_s["learned_tau_m"].values, axis=-1))
    # the time-constant memory has no delays: one run repeated over d_max
    taus = ds["budget_accuracy"].sel(memory="taus")
    assert np.all(taus == taus.isel(d_max=0))
    # the budget is respected and the memories are matched to it
    assert np.all(ds["budget_n_params"].values <= ds.attrs["budget"])
    assert np.all((ds["sweep_accuracy"] >= 0) & (ds["sweep_accuracy"] <= 1))
    draw_offline("fig_hierarchy.py", results, "hierarchy", min_png_bytes=20_000)


def test_committed_result_is_the_learnable_task_and_draws(draw_offline):
    """The committed default-scale result: every part on the one-segment task with the activity options,
    the learned taus paired with the sweep's fixed homogeneous networks, and the figure drawn from it."""
    import json
    from pathlib import Path

    from neurodelay.analysis.hierarchy import ACTIVITY_OPTIONS
    from neurodelay.io import read_netcdf
    results = Path(__file__).resolve().parents[1] / "analyses" / "results"
    ds = read_netcdf(results / "temporal_hierarchy.nc")
    assert ds.attrs["scale"] == "default" and ds.attrs["n_segments"] == 1 and ds.sizes["segment"] == 1
    task = json.loads(ds.attrs["task"])
    assert all(task[k] == v for k, v in ACTIVITY_OPTIONS.items())
    np.testing.assert_array_equal(ds["baseline_accuracy"].values,
                                  ds["sweep_accuracy"].sel(delta_tau=0.0, n_layers=3).values)
    assert np.all(np.isfinite(ds["sweep_accuracy"].values)) and np.all(np.isfinite(ds["budget_accuracy"].values))
    draw_offline("fig_hierarchy.py", results, "hierarchy", min_png_bytes=20_000)


def test_param_count_matches_the_network():
    from neurodelay.analysis.hierarchy import hierarchy_network, matched_hidden, param_count
    net, names = hierarchy_network([0.2, 0.3, 0.4], hidden=7, seed=0)
    n = param_count(4, 7, "weight")
    assert n == 40 * 7 + 2 * 49 + 14
    assert sum(np.size(p.weight) for p in net.projections) == n
    assert param_count(4, 7, "weight,tau_m") == n + 21
    h = matched_hidden(1040, 3, "weight,tau_m,tau_s")
    assert param_count(3, h, "weight,tau_m,tau_s") <= 1040 < param_count(3, h + 1, "weight,tau_m,tau_s")


def test_mts_xor_recipe_time_constant_options():
    from neurodelay.train import RunConfig, build_model
    base = build_model(RunConfig(task="mts_xor", learn=["weight", "tau_s"]))
    assert {k for k in base.keys if k[1] == "tau_s"} == {("hidden", "tau_s"), ("output", "tau_s")}
    only = build_model(RunConfig(task="mts_xor", learn=["weight", "tau_s"],
                                 model_options=dict(tau_populations=["hidden"])))
    assert {k for k in only.keys if k[1] == "tau_s"} == {("hidden", "tau_s")}
    het = build_model(RunConfig(task="mts_xor", learn=["weight", "tau_s"],
                                model_options=dict(hidden_tau_s_range=[0.002, 0.5])))
    t = np.asarray(het.network["hidden"].tau_s)
    assert t.min() >= 0.002 and t.max() <= 0.5 and t.std() > 0
    assert np.all(np.abs(t - 0.02) >= 0.1 * 0.02 - 1e-12)      # kept away from tau_m = 20 ms
    np.testing.assert_allclose(np.asarray(het.network["output"].tau_s), 5e-3)
    biased = build_model(RunConfig(task="mts_xor", learn=["weight"], model_options=dict(readout_bias=True)))
    assert ("output", "bias") in biased.keys and ("output", "bias") not in base.keys
    assert not any(k[1] == "bias" and k[0] != "output" for k in biased.keys)


# ------------------------------------------------------------------------------------------ ablation targets
def test_relabel_targets_and_spike_counts():
    from neurodelay.analysis.hierarchy import hierarchy_network, relabel, spikes_per_neuron
    from neurodelay.data import mts_xor_moro
    from neurodelay.engines import get_engine
    data = mts_xor_moro(40, seed=3)
    bits = data.trial_meta["bits"]
    assert relabel(data, "xor") is data
    ch2, ch1 = relabel(data, "channel2"), relabel(data, "channel1")
    np.testing.assert_array_equal(ch2.trial_meta["segment_labels"], bits[:, 1:])
    np.testing.assert_array_equal(ch1.trial_meta["segment_labels"], np.repeat(bits[:, :1], 6, axis=1))
    np.testing.assert_array_equal(ch2.labels, bits[:, -1])
    # the two ablations' labels XOR to the task's labels, and the inputs are untouched
    np.testing.assert_array_equal(ch1.trial_meta["segment_labels"] ^ ch2.trial_meta["segment_labels"],
                                  data.trial_meta["segment_labels"])
    assert ch1.inputs is data.inputs
    with pytest.raises(ValueError, match="labels"):
        relabel(data, "bit3")
    net, names = hierarchy_network([0.05, 0.1], hidden=4, seed=0)
    mean, silent = spikes_per_neuron(net, data, names, chunk=15)
    rec = get_engine("auto", net).simulate(net, data.inputs, data.duration)
    for i, name in enumerate(names):
        counts = rec.spikes(name).counts()                       # (trial, neuron)
        assert mean[i] == pytest.approx(counts.mean())
        assert silent[i] == pytest.approx(np.mean(counts.sum(axis=0) == 0))


def test_memory_constant_option():
    from neurodelay.analysis.hierarchy import hierarchy_network
    net, names = hierarchy_network([0.1, np.array([0.3, 0.021, 0.019, 0.5])], hidden=4, memory="tau_s",
                                   fast_tau=0.02, seed=0)
    np.testing.assert_allclose(net["h1"].tau_s, 0.1)
    np.testing.assert_allclose(net["h2"].tau_s, [0.3, 0.022, 0.018, 0.5])    # kept 10 % away from tau_m
    for n in names:
        np.testing.assert_allclose(net[n].tau_m, 0.02)
    lit, _ = hierarchy_network([0.1], hidden=4, memory="tau_m", seed=0)
    np.testing.assert_allclose(lit["h1"].tau_m, 0.1)
    np.testing.assert_allclose(lit["h1"].tau_s, 5e-3)
    mixed, _ = hierarchy_network([0.3], hidden=4, memory="mixed", fast_tau=0.02, seed=0)
    np.testing.assert_allclose(mixed["h1"].tau_m, [0.3, 0.3, 0.02, 0.02])
    np.testing.assert_allclose(mixed["h1"].tau_s, [5e-3, 5e-3, 0.3, 0.3])
    with pytest.raises(ValueError, match="memory"):
        hierarchy_network([0.1], hidden=4, memory="theta")


def test_initial_delays_option():
    """delay_max spreads the hidden layers' input delays over [0, delay_max] s and leaves the weights alone."""
    from neurodelay.analysis.hierarchy import hierarchy_network, hierarchy_point
    plain, names = hierarchy_network([0.1, 0.2], hidden=6, seed=3)
    spread, _ = hierarchy_network([0.1, 0.2], hidden=6, seed=3, delay_max=0.5)
    for p, q in zip(plain.projections, spread.projections):
        np.testing.assert_array_equal(p.weight, q.weight)
        d = q.total_delay()
        if q.post in names:
            assert d.min() >= 0 and d.max() <= 0.5 and d.std() > 0.1   # uniform on [0, 0.5]: std 0.144
        else:
            assert np.all(d == 0)                                         # the readout keeps none
        assert np.all(p.total_delay() == 0)
    with pytest.raises(ValueError, match="delay_max"):
        hierarchy_network([0.1], hidden=2, delay_max=-0.1)
    with pytest.raises(ValueError, match="exceeds d_max"):
        hierarchy_point(seed=0, learn="weight,synaptic", init_delay=0.5, d_max=0.2, epochs=1, n_train=2, n_test=2)
    with pytest.raises(ValueError, match="init_delay"):
        hierarchy_point(seed=0, init_delay=-1.0, epochs=1, n_train=2, n_test=2)
