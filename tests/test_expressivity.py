"""neurodelay.analysis.expressivity: Cover's count, shattering, tempotron capacity, the script and its figure.

Independent truths: Cover's closed form against LP feasibility on random
points in general position; Radon's theorem (a threshold gate on n inputs
shatters n + 1 points, never n + 2); every realisation the search claims is
re-simulated by the exact event engine in a fresh LIF network; trained
capacity neurons are re-simulated likewise; the hinge loss's exact gradients
against finite differences.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import xarray as xr
from scipy.optimize import linprog

from neurodelay.analysis import expressivity as ex
from neurodelay import simulate
from neurodelay.gradients import get_param, loss_and_grad, set_param
from neurodelay.losses import MaxVoltageHinge
from neurodelay.spikes import SpikeTrains


# ----------------------------------------------------------------------------------- Cover -----
@pytest.mark.parametrize("n", [1, 2, 5, 10, 50])
def test_cover_fraction_is_one_half_at_twice_the_dimension(n):
    assert float(ex.cover_fraction(2 * n, n)) == pytest.approx(0.5, abs=1e-12)
    assert float(ex.cover_fraction(n, n)) == 1.0


def homogeneous_separable(x: np.ndarray, y: np.ndarray) -> bool:
    """LP feasibility of y_k w.x_k >= 1 (a perceptron without bias)."""
    res = linprog(np.zeros(x.shape[1]), A_ub=-(y[:, None] * x), b_ub=-np.ones(len(y)),
                  bounds=[(None, None)] * x.shape[1], method="highs")
    return res.status == 0


@pytest.mark.parametrize("n, p", [(2, 4), (3, 6), (3, 7)])
def test_lp_count_on_random_points_matches_cover(n, p):
    """Points drawn from a Gaussian are in general position with probability 1: the number
    of LP-feasible dichotomies must equal C(P, N) = 2 sum_{k<N} binom(P-1, k) exactly."""
    x = np.random.default_rng(n * 10 + p).normal(size=(p, n))
    count = sum(homogeneous_separable(x, np.array(lab) * 2.0 - 1.0)
                for lab in itertools.product([0, 1], repeat=p))
    expected = 2 * sum(math.comb(p - 1, k) for k in range(n))
    assert count == expected
    assert float(ex.cover_fraction(p, n)) == pytest.approx(count / 2 ** p, abs=1e-12)


def test_cover_fraction_array_has_coords():
    da = ex.cover_fraction([1, 4, 8], 4)
    assert da.dims == ("n_patterns",) and da.attrs["units"] == "1"
    assert np.allclose(da["alpha"], [0.25, 1, 2]) and da.values[-1] == pytest.approx(0.5)


# ------------------------------------------------------------------------------ shattering -----
def resimulate(ds: xr.Dataset) -> None:
    """Every labelling of the shattered set, in a fresh LIF network per labelling: spikes iff label."""
    patterns = ds["patterns"].values
    k, n_in = patterns.shape
    trial, neuron = np.nonzero(patterns)
    inputs = SpikeTrains(trial, neuron, np.zeros(len(trial)), k, n_in)
    for lab in ds["labelling"].values:
        net = ex.single_neuron(ds["weight"].values[lab], ds["delay"].values[lab],
                               tau_m=ds.attrs["tau_m"], tau_s=ds.attrs["tau_s"], theta=1.0)
        rec = simulate(net, inputs, ds["delay"].values[lab].max() + 20 * ds.attrs["tau_m"])
        fired = rec.spikes("neuron").counts()[:, 0] > 0
        np.testing.assert_array_equal(fired, ds["label"].values[lab] == 1, err_msg=f"labelling {lab}")


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_weights_only_shatters_n_plus_one_with_bias(n):
    ds = ex.shattering(n, "weights", bias=True, seed=0)
    assert int(ds["largest"]) == n + 1 and ds.attrs["complete"] == 1
    assert ds["label"].shape == (2 ** (n + 1), n + 1)
    resimulate(ds)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_weights_only_shatters_n_without_bias(n):
    ds = ex.shattering(n, "weights", bias=False, seed=0)
    assert int(ds["largest"]) == n
    assert not np.any(ds["patterns"].values.sum(axis=1) == 0), "the silent pattern can never fire"
    resimulate(ds)


def test_exhaustive_weights_search_finds_no_larger_set():
    """n = 3: the level-wise search over all 256 subsets of the cube ends at 4 (Radon)."""
    ds = ex.shattering(3, "weights", search="exhaustive", seed=0)
    assert ds.attrs["search"] == "exhaustive" and ds.attrs["complete"] == 1 and int(ds["largest"]) == 4


def test_delays_only_realisations_resimulate():
    ds = ex.shattering(3, "delays", seed=0)
    assert ds.attrs["search"] == "exhaustive" and int(ds["largest"]) >= 1
    # the fixed weights were kept
    assert np.allclose(ds["weight"].values, ds["weight"].values[0])
    resimulate(ds)


@pytest.mark.parametrize("n", [1, 2])
def test_weights_and_delays_never_below_weights_only(n):
    both = ex.shattering(n, "both", seed=0, time_budget=60)
    weights = ex.shattering(n, "weights", seed=0)
    assert int(both["largest"]) >= int(weights["largest"])
    resimulate(both)


def test_max_free_voltage_matches_the_engine():
    """The closed-form maximum used by the search against the engine's readout maximum."""
    from neurodelay.events.readout import max_voltage
    rng = np.random.default_rng(4)
    w, d = rng.normal(0.5, 1.0, 5), rng.uniform(0, 0.03, 5)
    pats = ex.binary_patterns(4, bias=True)
    vmax, _ = ex._pattern_maxima(pats, w, d, 15e-3, 3.75e-3)
    trial, neuron = np.nonzero(pats)
    rec = simulate(ex.single_neuron(w, d, readout=True), SpikeTrains(trial, neuron, np.zeros(len(trial)), 16, 5), 0.3)
    np.testing.assert_allclose(vmax, max_voltage(rec, "neuron")[0][:, 0], rtol=1e-12, atol=1e-12)


# -------------------------------------------------------------------------------- capacity -----
def test_hinge_loss_gradients_match_finite_differences():
    pat, lab = ex.tempotron_task(8, 5, 0.08, seed=2)
    rng = np.random.default_rng(1)
    net = ex.single_neuron(rng.normal(2.0, 2.0, 8), rng.uniform(0, 0.01, 8), readout=True)
    loss = MaxVoltageHinge("neuron", 1.0, 0.1)
    keys = [("inputs->neuron", "weight"), ("inputs->neuron", "synaptic")]
    res = loss_and_grad(net, pat, 0.15, loss, lab, keys)
    assert res.loss > 0
    for key, h in zip(keys, (1e-6, 1e-8)):
        p = get_param(net, key)
        fd = np.array([(loss_and_grad(set_param(net, key, p + h * e), pat, 0.15, loss, lab).loss
                        - loss_and_grad(set_param(net, key, p - h * e), pat, 0.15, loss, lab).loss) / (2 * h)
                       for e in np.eye(len(p))])
        np.testing.assert_allclose(res.grads[key], fd, rtol=1e-4, atol=1e-6 * np.abs(fd).max())


@pytest.mark.parametrize("learn, method, batch_size", [
    ("weights", "adam", None), ("weights", "adam", 10), ("delays", "adam", 10), ("both", "adam", 10),
    ("weights", "tempotron", None), ("delays", "tempotron", None), ("both", "tempotron", None)])
def test_trained_neuron_resimulated_classifies_as_reported(learn, method, batch_size):
    """N = 50 afferents, alpha = 1: the trained weights and delays in a fresh LIF neuron
    spike on exactly the patterns the run counts as 'fire'."""
    n, load, duration = 50, 1.0, 0.2
    ds = ex.capacity_point(n, load, learn, 3, duration=duration, epochs=60, batch_size=batch_size, method=method)
    pat, lab = ex.tempotron_task(n, int(ds["n_patterns"]), duration, seed=3)
    net = ex.single_neuron(ds["weight"].values, ds["delay"].values, tau_m=ds.attrs["tau_m"],
                           tau_s=ds.attrs["tau_s"], theta=1.0)
    rec = simulate(net, pat, ds.attrs["window"])
    fired = rec.spikes("neuron").counts()[:, 0] > 0
    assert np.mean(fired == (lab == 1)) == pytest.approx(float(ds["fraction_correct"]), abs=1e-12)
    assert int(ds["solved"]) == int(np.all(fired == (lab == 1)))
    untrained = ex.capacity_point(n, load, learn, 3, duration=duration, epochs=0, method=method).squeeze()
    assert float(ds["fraction_correct"]) >= float(untrained["fraction_correct"])
    if learn != "delays":   # delays alone learn slowly (see the report); weights clearly beat chance
        assert float(ds["fraction_correct"]) > 0.75, "training should beat chance clearly at alpha = 1"
    if learn == "weights":
        assert np.all(ds["delay"].values == 0)
    else:
        d = ds["delay"].values
        assert d.min() >= 0 and d.max() <= ds.attrs["max_delay"]
    if learn == "delays":
        np.testing.assert_array_equal(ds["weight"].values, untrained["weight"].values)


@pytest.mark.parametrize("learn", ["weights", "both"])
def test_linear_programme_finishes_what_the_rule_left_and_a_fresh_neuron_agrees(learn):
    """3 epochs of the rule leave errors at alpha = 1.5; the cutting-plane LP on the
    weights then classifies every pattern, which a fresh LIF neuron on the event
    engine confirms spike by spike; without it the same run stays unsolved."""
    n, load, duration = 40, 1.5, 0.2
    kw = dict(duration=duration, epochs=3)
    raw = ex.capacity_point(n, load, learn, 3, polish=False, **kw)
    assert int(raw["solved"]) == 0 and int(raw["polish_rounds"]) == 0
    ds = ex.capacity_point(n, load, learn, 3, **kw)
    assert int(ds["polish_rounds"]) > 0 and int(ds["solved"]) == 1
    pat, lab = ex.tempotron_task(n, int(ds["n_patterns"]), duration, seed=3)
    net = ex.single_neuron(ds["weight"].values, ds["delay"].values, tau_m=ds.attrs["tau_m"],
                           tau_s=ds.attrs["tau_s"], theta=1.0)
    fired = simulate(net, pat, ds.attrs["window"]).spikes("neuron").counts()[:, 0] > 0
    np.testing.assert_array_equal(fired, lab == 1)
    np.testing.assert_array_equal(ds["delay"].values, raw["delay"].values)   # the LP holds the delays


def test_capacity_merges_points_and_critical_load():
    ds = ex.capacity(10, [0.5, 1.0], learn=("weights", "both"), seeds=2, duration=0.1, epochs=20)
    assert dict(ds["solved"].sizes) == {"load": 2, "learn": 2, "seed": 2}
    assert "neurodelay_version" in ds.attrs and ds.attrs["analysis"] == "expressivity.capacity"
    crit = ex.critical_load(ds)
    assert set(crit["learn"].values) == {"weights", "both"}


def test_critical_load_on_a_known_curve():
    solved = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0], [0, 0, 0]], float)   # (load, seed)
    ds = xr.Dataset({"solved": (("load", "learn", "seed"), solved[:, None, :])},
                    coords={"load": [1.0, 2.0, 3.0, 4.0], "learn": ["weights"], "seed": [0, 1, 2]})
    crit = ex.critical_load(ds).sel(learn="weights")
    # p = 1, 2/3, 1/3, 0: crosses 1/2 half-way between 2 and 3
    assert float(crit["alpha_c"]) == pytest.approx(2.5)
    np.testing.assert_allclose(crit["alpha_c_seed"].values, [3.5, 2.5, 1.5])
    assert float(crit["alpha_c_std"]) == pytest.approx(1.0)


# ------------------------------------------------------------------------------ bad inputs -----
@pytest.mark.parametrize("call, match", [
    (lambda: ex.cover_fraction(0, 3), "n_patterns"),
    (lambda: ex.cover_fraction([], 3), "n_patterns"),
    (lambda: ex.cover_fraction(4, 0), "n_inputs"),
    (lambda: ex.shattering(0), "n_inputs"),
    (lambda: ex.shattering(2, "magic"), "mode"),
    (lambda: ex.shattering(2, search="dfs"), "search"),
    (lambda: ex.shattering(2, tau_m=-1.0), "tau_m"),
    (lambda: ex.shattering(2, tau_s=20e-3), "tau_s"),
    (lambda: ex.shattering(2, "delays", delay_grid=[]), "delay_grid"),
    (lambda: ex.shattering(2, "delays", weights=[1.0]), "weights"),
    (lambda: ex.shattering(2, margin=1.5), "margin"),
    (lambda: ex.shattering(2, time_budget=-1), "time_budget"),
    (lambda: ex.shattering(2, seed=-3), "seed"),
    (lambda: ex.shattering(2, engine="gpu"), "engine"),
    (lambda: ex.capacity_point(10, -1.0, "weights", 0), "load"),
    (lambda: ex.capacity_point(0, 1.0, "weights", 0), "n_afferents"),
    (lambda: ex.capacity_point(10, 1.0, "axons", 0), "learn"),
    (lambda: ex.capacity_point(10, 1.0, "weights", None), "seed"),
    (lambda: ex.capacity_point(10, 1.0, "weights", 0, duration=0), "duration"),
    (lambda: ex.capacity_point(10, 1.0, "delays", 0, max_delay=0.0), "max_delay"),
    (lambda: ex.capacity_point(10, 1.0, "weights", 0, margin=-0.1), "margin"),
    (lambda: ex.capacity_point(10, 1.0, "weights", 0, batch_size=0, method="adam"), "batch_size"),
    (lambda: ex.capacity_point(10, 1.0, "weights", 0, batch_size=10), "batch_size"),
    (lambda: ex.capacity_point(10, 1.0, "weights", 0, method="perceptron"), "method"),
    (lambda: ex.capacity_point(10, 1.0, "weights", 0, momentum=1.0), "momentum"),
    (lambda: ex.capacity(10, [], seeds=1), "loads"),
    (lambda: ex.capacity(10, [1.0, -2.0], seeds=1), "loads"),
    (lambda: ex.capacity(10, [1.0], seeds=[]), "seeds"),
    (lambda: ex.capacity(10, [1.0], learn=(), seeds=1), "learn"),
    (lambda: ex.critical_load(xr.Dataset()), "ds"),
    (lambda: ex.tempotron_task(5, 0, 0.1, seed=0), "n_patterns"),
    (lambda: MaxVoltageHinge("neuron", margin=-1), "margin"),
])
def test_bad_inputs_are_refused_naming_the_argument(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


# ----------------------------------------------------------------------- script and figure -----
@pytest.fixture(scope="module")
def quick(quick_analysis):
    return quick_analysis("expressivity")


def test_quick_script_result(quick):
    _, ds, _ = quick
    table = ds["shatter_largest"]
    for n in (1, 2, 3):
        assert int(table.sel(shatter_mode="weights", n_inputs=n)) == n + 1
        assert int(table.sel(shatter_mode="weights_nobias", n_inputs=n)) == n
    both = table.sel(shatter_mode="both").values
    weights = table.sel(shatter_mode="weights").values
    assert np.all(both[both >= 0] >= weights[both >= 0])
    assert set(ds["learn"].values) == set(ex.LEARN_MODES)
    assert np.all((ds["p_solved"] >= 0) & (ds["p_solved"] <= 1))
    assert ds["alpha_c"].attrs["units"] == "1"


def test_figure_is_drawn_from_the_result_alone(quick, draw_offline):
    draw_offline("fig_expressivity.py", quick[2], "expressivity", min_png_bytes=20_000)
