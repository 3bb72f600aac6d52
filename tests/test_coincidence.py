"""neurodelay.analysis.coincidence: window, jitter curve, Rossant gain, Jeffress map; its script and figure.

Independent truths: the PSP formula summed on a dense time grid (window), the
instant-rise limit of König et al. 1996 (window), the Gaussian jitter law
(curve), the conserved input rate (Rossant), and a straight line vs a
staircase (Jeffress, exact vs Brian2 grid timing).
"""

from __future__ import annotations

import numpy as np
import pytest

from neurodelay.analysis import coincidence as C
from neurodelay import simulate


def psp(t, tau_m, tau_s, w):
    """The PSP of one spike of weight w at time 0, straight from the formula (0 before the spike)."""
    k = tau_s / (tau_m - tau_s)
    return np.where(t >= 0, w * k * (np.exp(-np.maximum(t, 0) / tau_m) - np.exp(-np.maximum(t, 0) / tau_s)), 0.0)


def window_by_brute_force(tau_m, tau_s, w, theta):
    """Largest Delta with max_t [PSP(t) + PSP(t - Delta)] >= theta: dense time grid, then bisection on Delta."""
    t = np.linspace(0.0, 12 * max(tau_m, tau_s), 200_001)

    def fires(delta):
        return (psp(t, tau_m, tau_s, w) + psp(t - delta, tau_m, tau_s, w)).max() >= theta

    lo, hi = 0.0, 4 * max(tau_m, tau_s)
    assert fires(lo) and not fires(hi)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if fires(mid) else (lo, mid)
    return lo


@pytest.mark.parametrize("tau_m, tau_s, w, theta", [
    (10e-3, 2.5e-3, 4.0, 1.0),
    (5e-3, 3e-3, 3.5, 1.2),
    (2e-3, 8e-3, 0.4, 0.3),      # tau_s > tau_m
    (20e-3, 1e-3, 1.3, 0.1),
])
def test_window_matches_the_psp_formula(tau_m, tau_s, w, theta):
    got = float(C.coincidence_window(tau_m, tau_s, w, theta))
    want = window_by_brute_force(tau_m, tau_s, w, theta)
    # dense-grid maximum: relative error of max V ~ (step / tau)^2 ~ 1e-9, which moves Delta by far below 1e-7 s
    assert got == pytest.approx(want, rel=1e-4, abs=1e-8)


@pytest.mark.parametrize("tau_m, tau_s", [(10e-3, 2.5e-3), (2e-3, 8e-3)])
def test_pair_maximum_never_grows_with_the_interval(tau_m, tau_s):
    """The window is an interval: max_t [PSP(t) + PSP(t - Delta)] is non-increasing in Delta (dense formula)."""
    t = np.linspace(0.0, 12 * max(tau_m, tau_s), 100_001)
    deltas = np.linspace(0.0, 4 * max(tau_m, tau_s), 41)
    m = np.array([(psp(t, tau_m, tau_s, 1.0) + psp(t - d, tau_m, tau_s, 1.0)).max() for d in deltas])
    assert np.all(np.diff(m) <= 1e-12)
    exact = np.array([C._pair_maximum(d, tau_m, tau_s, 1.0) for d in deltas])
    np.testing.assert_allclose(exact, m, rtol=1e-7)


def test_window_tends_to_koenig_instant_rise_formula():
    """tau_s -> 0: the PSP becomes a exp(-t/tau_m) with a = K w, window tau_m ln(a / (theta - a)).

    At finite tau_s the PSP rises during t_p = tau_s ln(tau_m/tau_s) and has lost a
    fraction of at most t_p/tau_m of its height by then; d(window)/da = tau_m theta / (a (theta - a)),
    so the window differs from the limit by at most about t_p theta / (theta - a)."""
    tau_m, theta, tau_s = 10e-3, 1.0, 1e-7
    t_p = tau_s * np.log(tau_m / tau_s)
    for a in (0.55, 0.7, 0.9):
        w = a * (tau_m - tau_s) / tau_s
        got = float(C.coincidence_window(tau_m, tau_s, w, theta))
        assert got == pytest.approx(tau_m * np.log(a / (theta - a)), abs=2 * t_p * theta / (theta - a))


def test_window_dims_and_limits():
    w = C.coincidence_window([10e-3, 15e-3, 20e-3], 1e-3, [12.0, 12.5], theta=1.0)
    assert w.dims == ("tau_m", "weight") and w.shape == (3, 2)
    assert w.attrs["units"] == "s" and w["tau_m"].attrs["units"] == "s"
    assert float(w["tau_s"]) == 1e-3
    assert np.all(np.isfinite(w.values))
    assert np.all(np.diff(w.values, axis=1) > 0), "a larger weight fires over a longer interval"
    for tm in (10e-3, 20e-3):  # each point is the scalar computation
        assert float(w.sel(tau_m=tm, weight=12.5)) == float(C.coincidence_window(tm, 1e-3, 12.5))
    peak = C.psp_peak(10e-3, 2e-3, 1.0)
    assert np.isinf(float(C.coincidence_window(10e-3, 2e-3, 1.01 / peak)))  # one spike suffices
    assert np.isnan(float(C.coincidence_window(10e-3, 2e-3, 0.49 / peak)))  # two never suffice
    assert C.psp_peak(10e-3, 2e-3, C.weight_for_psp_peak(0.6, 10e-3, 2e-3)) == pytest.approx(0.6)


def test_psp_peak_matches_the_simulated_peak():
    net = C._pair_network(10e-3, 2e-3, 3.0, 100.0, 0.0)
    from neurodelay.spikes import SpikeTrains
    t = np.linspace(0, 30e-3, 30001)
    rec = simulate(net, SpikeTrains(np.array([0]), np.array([0]), np.array([0.0]), 1, 2), 30e-3,
                   record=["out"], sample_times=t)
    assert rec.voltages("out")[0, :, 0].max() == pytest.approx(C.psp_peak(10e-3, 2e-3, 3.0), rel=1e-6)


def test_curve_without_jitter_is_a_step_at_the_window():
    tau_m, tau_s, w = 8e-3, 2e-3, None
    ds = C.coincidence_curve([0.0], [0.0], tau_m=tau_m, tau_s=tau_s, n_trials=1, seed=0)
    wc = float(ds["window"])
    delta = np.array([-1.5 * wc, -wc * (1 + 1e-6), -wc * (1 - 1e-6), 0.0, 0.5 * wc, wc * (1 - 1e-6),
                      wc * (1 + 1e-6), 2 * wc])
    ds = C.coincidence_curve(delta, [0.0], tau_m=tau_m, tau_s=tau_s, weight=w, n_trials=3, seed=0)
    np.testing.assert_array_equal(ds["p_fire"].values[:, 0], [0, 0, 1, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(ds["p_fire_analytic"].values[:, 0], [0, 0, 1, 1, 1, 1, 0, 0])


def test_curve_with_jitter_follows_the_gaussian_law():
    """P(fire) = P(|Delta + e2 - e1| <= window), e1 - e2 ~ N(0, 2 sigma^2); erf(window / 2 sigma) at Delta = 0."""
    n = 1500
    ds = C.coincidence_curve([0.0, 3e-3, 6e-3], [1e-3, 3e-3], tau_m=10e-3, tau_s=2.5e-3, n_trials=n, seed=3)
    from scipy.special import erf
    wc = float(ds["window"])
    np.testing.assert_allclose(ds["p_fire_analytic"].sel(delta_t=0.0).values, erf(wc / (2 * ds["jitter"].values)))
    p, q = ds["p_fire"].values, ds["p_fire_analytic"].values
    se = np.sqrt(np.maximum(q * (1 - q), 1e-3) / n)
    assert np.all(np.abs(p - q) < 4.5 * se), (p, q)
    assert ds.attrs["analysis"] == "coincidence_curve" and "seed" in ds.attrs


def test_rossant_inputs_keep_the_total_rate_and_synchronise():
    n_exc, n_inh, duration, trials = 400, 100, 5.0, 4
    ss = np.random.SeedSequence(5)
    base = C._rossant_inputs(0, n_exc, n_inh, 1.0, 1.0, 40.0, duration, trials, ss)
    sync = C._rossant_inputs(8, n_exc, n_inh, 1.0, 1.0, 40.0, duration, trials, ss)
    for st in (base, sync):
        counts = st.counts()
        exc, inh = counts[:, :n_exc].sum(), counts[:, n_exc:].sum()
        # Poisson totals: mean rate * N * T * trials, SD sqrt(mean)
        assert abs(exc - n_exc * duration * trials) < 5 * np.sqrt(n_exc * duration * trials)
        assert abs(inh - n_inh * duration * trials) < 5 * np.sqrt(n_inh * duration * trials)
    # the 8 synchronous inputs share their extra spikes: times common to all 8 in the same trial
    mask = sync.neuron < 8
    pairs = set(zip(sync.trial[mask], sync.time[mask]))
    shared = sum(np.sum(mask & (sync.trial == k) & (sync.time == t)) == 8 for k, t in pairs)
    assert abs(shared - 40.0 * duration * trials) < 5 * np.sqrt(40.0 * duration * trials)


def test_gain_rises_with_a_few_synchronous_inputs():
    ds = C.coincidence_gain([0, 20], duration=4.0, n_trials=4, seed=2)
    assert ds["rate"].attrs["units"] == "Hz" and float(ds["sync_fraction"][-1]) == 20 / 4000
    r, se = ds["rate"].sel(timing="exact").values, ds["rate_stderr"].sel(timing="exact").values
    assert r[0] > 0, "the balanced background alone should make the neuron fire"
    assert r[1] - r[0] > 4 * np.hypot(*se), (r, se)
    assert float(ds["gain"].sel(timing="exact", n_sync=20)) > 1.5
    # the mean input is balanced: sum over inputs of rate x weight = 0
    assert ds.attrs["w_exc"] * 4000 + ds.attrs["w_inh"] * 1000 == pytest.approx(0.0, abs=1e-12)


def test_merged_afferents_give_the_same_exact_result():
    """Relabelling spikes among sources of identical, undelayed synapses leaves the neuron's input unchanged."""
    kw = dict(n_exc=800, n_inh=200, duration=2.0, n_trials=2, seed=9)
    one = C.coincidence_gain([0, 6], afferents_per_source=1, **kw)
    merged = C.coincidence_gain([0, 6], afferents_per_source=16, **kw)
    np.testing.assert_array_equal(one["count"].values, merged["count"].values)
    assert one["count"].values.sum() > 0
    source, n_exc_sources = C._merge_afferents(800, 200, 6, 16)
    assert n_exc_sources == 6 + 50 and source.max() + 1 == 6 + 50 + 13
    np.testing.assert_array_equal(source[:6], np.arange(6))


def test_jeffress_exact_map_is_linear():
    itd = np.linspace(-0.4e-3, 0.4e-3, 33)
    ds = C.jeffress(itd)
    est = ds["estimated_itd"].sel(timing="exact").values
    slope, intercept = np.polyfit(itd, est, 1)
    assert abs(slope - 1) < 0.05 and abs(intercept) < 5e-6
    assert np.all(np.diff(est) > 0), "exact timing: the estimate moves with every change of ITD"
    assert ds.attrs["n_detectors"] == 21 and ds.attrs["delay_step"] == pytest.approx(0.05e-3)
    pref = ds["preferred_itd"].values
    np.testing.assert_allclose(np.diff(pref), 2 * 0.05e-3)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="tau_m"):
        C.coincidence_window(-1e-3, 1e-3, 2.0)
    with pytest.raises(ValueError, match="tau_m must differ"):
        C.coincidence_window(2e-3, 2e-3, 2.0)
    with pytest.raises(ValueError, match="weight"):
        C.coincidence_window(10e-3, 1e-3, 0.0)
    with pytest.raises(ValueError, match="theta"):
        C.coincidence_window(10e-3, 1e-3, 2.0, [])
    with pytest.raises(ValueError, match="jitter"):
        C.coincidence_curve([0.0], [-1e-3], seed=0)
    with pytest.raises(ValueError, match="delta_t"):
        C.coincidence_curve([], [0.0], seed=0)
    with pytest.raises(ValueError, match="seed"):
        C.coincidence_curve([0.0], [0.0], seed=None)
    with pytest.raises(ValueError, match="n_trials"):
        C.coincidence_curve([0.0], [0.0], n_trials=0, seed=0)
    with pytest.raises(ValueError, match="engine"):
        C.coincidence_curve([0.0], [0.0], seed=0, engine="nest")
    with pytest.raises(ValueError, match="n_sync"):
        C.coincidence_gain([-1], seed=0)
    with pytest.raises(ValueError, match="background rates would be negative"):
        C.coincidence_gain([200], seed=0)
    with pytest.raises(ValueError, match="timings"):
        C.coincidence_gain([0], seed=0, timings=("exact", "approximate"))
    with pytest.raises(ValueError, match="n_detectors"):
        C.jeffress([0.0], n_detectors=1)
    with pytest.raises(ValueError, match="itd"):
        C.jeffress([-3e-3])


# ---- script and figure -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def result(quick_analysis):
    """analyses/coincidence.py --quick: (module, dataset, results folder); includes small Brian2 grid runs."""
    return quick_analysis("coincidence")


def test_script_jeffress_exact_is_linear_grid_is_a_staircase(result):
    _, ds, _ = result
    itd = ds["itd"].values
    est = ds["jeffress_estimated_itd"]
    slope, _ = np.polyfit(itd, est.sel(jeffress_timing="exact").values, 1)
    assert abs(slope - 1) < 0.05
    grid = est.sel(jeffress_timing="grid").values
    assert len(np.unique(np.round(grid, 12))) < 0.6 * len(itd), "grid timing gives a staircase"
    assert np.max(np.abs(grid - itd)) > 5 * np.max(np.abs(est.sel(jeffress_timing="exact").values - itd))


def test_script_result_is_consistent(result):
    _, ds, _ = result
    # the stored window curve: each point is the library's window
    a, tm = float(ds["peak"][1]), float(ds["tau_m"][7])
    ts = ds.attrs["window_tau_s"]
    assert float(ds["window"].sel(peak=a, tau_m=tm)) == float(
        C.coincidence_window(tm, ts, C.weight_for_psp_peak(a, tm, ts)))
    assert np.all(np.diff(ds["window"].values, axis=1) > 0), "at a fixed PSP peak the window grows with tau_m"
    # grid timing moves spikes by less than a step: counts of exact and grid runs stay close
    exact, grid = (ds["gain_count"].sel(timing=t).values for t in ("exact", "grid"))
    assert np.abs(exact - grid).sum() <= 0.1 * exact.sum() + 2
    assert ds["curve_p_fire"].sel(jitter=0.0).values[0] == 1.0


def test_figure_is_drawn_from_the_result_alone(result, draw_offline, monkeypatch):
    import neurodelay.brian
    monkeypatch.setattr(neurodelay.brian, "BrianSimulator", None)  # figures never simulate
    draw_offline("fig_coincidence.py", result[2], "coincidence", min_png_bytes=50_000)


def test_brian_quantities_are_accepted():
    from brian2 import ms
    a = float(C.coincidence_window(10 * ms, 2 * ms, 5.0))
    assert np.isfinite(a) and a == float(C.coincidence_window(10e-3, 2e-3, 5.0))
