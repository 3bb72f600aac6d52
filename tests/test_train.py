"""Training: optimiser, constraints, initialisation, checkpoints, the training loop, task recipes.

Independent references: closed-form properties of Adam (the first step has
length lr exactly), finite differences of the sigmoid parametrisation, a
dense numerical maximum of the PSP kernel, the event engine (a network that
went through a checkpoint file spikes identically), scikit-learn's logistic
regression (the trainer must optimise a softmax model as well), and the
training runs themselves (straight vs interrupted-and-resumed: bit-identical).
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from neurodelay.data import yinyang
from neurodelay.delays import Delays
from neurodelay import simulate
from neurodelay.network import LIF, Network, Readout, SpikeSource
from neurodelay.spikes import SpikeTrains
from neurodelay.train.checkpoint import load_checkpoint
from neurodelay.train.config import RunConfig, load_config_file
from neurodelay.train.constraints import Constraint, constraint_for, quantise_delays
from neurodelay.train.init import init_delays, init_weights, psp_peak
from neurodelay.train.model import BatchResult, Evaluation
from neurodelay.train.network_state import network_from_dataset, network_to_dataset
from neurodelay.train.optim import Adam, Schedule, key_name, param_kind
from neurodelay.train.recipes import (build_model, digits_matched_hidden, get_recipe, make_constraints,
                                      make_optimiser, resolve_config)
from neurodelay.train.trainer import BEST, LAST, fit
from neurodelay.io import read_netcdf, write_netcdf


# ------------------------------------------------------------------------------------------ optimiser
def test_first_adam_step_has_length_lr_per_key_and_kind():
    """After one step m_hat = g and v_hat = g^2, so every element moves by lr * sign(g) (up to eps)."""
    rng = np.random.default_rng(0)
    keys = [("a->b", "weight"), ("a->b", "synaptic"), ("b->c", "synaptic")]
    params = {k: rng.normal(size=5) for k in keys}
    grads = {k: rng.normal(size=5) * 10.0 ** rng.integers(-3, 3) for k in keys}
    opt = Adam(lr=0.01, lr_by={"synaptic": 1e-4, "b->c.synaptic": 3e-4}, eps=1e-30)
    new = opt.step(params, grads, epoch=0)
    expected_lr = {keys[0]: 0.01, keys[1]: 1e-4, keys[2]: 3e-4}
    for k in keys:
        np.testing.assert_allclose(params[k] - new[k], expected_lr[k] * np.sign(grads[k]), rtol=1e-12)


def test_adam_minimises_a_badly_scaled_quadratic():
    scales = np.array([1e-3, 1.0, 1e3])
    target = np.array([0.3, -2.0, 5.0])
    opt = Adam(lr=0.05)
    x = {("q", "weight"): np.zeros(3)}
    for _ in range(3000):
        g = scales * (x[("q", "weight")] - target)
        x = opt.step(x, {("q", "weight"): g}, epoch=0)
    np.testing.assert_allclose(x[("q", "weight")], target, atol=1e-3)


def test_schedules_follow_their_definitions():
    step = Schedule("step", gamma=0.5, step_size=3)
    assert [step.factor(e) for e in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    cosine = Schedule("cosine", epochs=10, floor=0.2)
    assert cosine.factor(0) == 1.0
    assert cosine.factor(10) == pytest.approx(0.2) and cosine.factor(20) == pytest.approx(0.2)
    assert cosine.factor(5) == pytest.approx(0.6)
    opt = Adam(lr=1.0, lr_by={"synaptic": 2.0}, schedule_by={"synaptic": {"kind": "exponential", "gamma": 0.5}})
    assert opt.learning_rate(("p", "synaptic"), 2) == pytest.approx(0.5)
    assert opt.learning_rate(("p", "weight"), 2) == 1.0
    with pytest.raises(ValueError, match="unknown learning-rate schedule"):
        Schedule("linear")


def test_adam_refuses_bad_gradients():
    opt = Adam()
    with pytest.raises(FloatingPointError, match="NaN or inf"):
        opt.step({("a", "weight"): np.zeros(2)}, {("a", "weight"): np.array([np.nan, 0.0])}, 0)
    with pytest.raises(ValueError, match="shape"):
        opt.step({("a", "weight"): np.zeros(2)}, {("a", "weight"): np.zeros(3)}, 0)
    with pytest.raises(KeyError, match="unknown parameters"):
        opt.step({}, {("a", "weight"): np.zeros(3)}, 0)


def test_key_names_and_kinds():
    assert key_name(("in->hid", "synaptic")) == "in->hid.synaptic"
    assert param_kind(("hid", "tau_m", "shared")) == "tau_m"
    assert param_kind("in->hid.axonal") == "axonal"


# ------------------------------------------------------------------------------------------ constraints
@pytest.mark.parametrize("c", [Constraint("sigmoid", 0.0, 0.01), Constraint("log", 1e-3, 1.0)])
def test_parametrisation_gradient_matches_finite_differences(c):
    raw = np.linspace(-4, 4, 9) if c.mode == "sigmoid" else np.log(np.linspace(2e-3, 0.5, 9))
    g_value = np.linspace(-1, 1, 9)
    h = 1e-6
    numeric = g_value * (c.value(raw + h) - c.value(raw - h)) / (2 * h)
    np.testing.assert_allclose(c.raw_gradient(raw, g_value), numeric, rtol=1e-7, atol=1e-14)
    values = np.array([0.001, 0.005, 0.0099])
    np.testing.assert_allclose(c.value(c.raw(values)), values, rtol=1e-12)
    extreme = c.value(c.project(np.array([-50.0, 50.0])))
    assert np.all((extreme >= c.low) & (extreme <= c.high))


def test_clip_constraint_keeps_delays_in_bounds_and_refuses_bad_starts():
    c = constraint_for(("a->b", "dendritic"), d_max=0.02)
    assert (c.mode, c.low, c.high) == ("clip", 0.0, 0.02)
    np.testing.assert_array_equal(c.project(np.array([-1e-3, 0.01, 0.5])), [0.0, 0.01, 0.02])
    with pytest.raises(ValueError, match=r"must lie in \[0.0, 0.02\]"):
        c.raw(np.array([0.03]), "a->b.dendritic")
    with pytest.raises(ValueError, match="d_max"):
        constraint_for(("a->b", "axonal"), d_max=None)
    assert constraint_for(("a->b", "weight"), None).mode == "none"


def test_quantised_delays_lie_on_the_grid_within_half_a_step():
    rng = np.random.default_rng(1)
    values = {("a->b", "synaptic"): rng.uniform(0, 0.01, 50), ("a->b", "weight"): rng.normal(size=50)}
    q = quantise_delays(values, 1e-4)
    d = q[("a->b", "synaptic")]
    np.testing.assert_allclose(d / 1e-4, np.round(d / 1e-4), atol=1e-9)
    assert np.max(np.abs(d - values[("a->b", "synaptic")])) <= 0.5e-4 + 1e-15
    np.testing.assert_array_equal(q[("a->b", "weight")], values[("a->b", "weight")])


# ------------------------------------------------------------------------------------------ init
@pytest.mark.parametrize("ratio", [1.0, 2.0, 4.0, 0.5])
def test_psp_peak_is_the_maximum_of_the_kernel(ratio):
    """Dense sampling of V(t) after a unit jump of I (tau_m = tau_s: the limit V = (t/tau) exp(-t/tau))."""
    tau_s, tau_m = 1.0, ratio
    t = np.linspace(0, 20, 2_000_001)
    if ratio == 1.0:
        kernel = t * np.exp(-t)
    else:
        kernel = (np.exp(-t / tau_m) - np.exp(-t / tau_s)) * tau_s / (tau_m - tau_s)
    assert psp_peak(ratio * tau_s, tau_s) == pytest.approx(kernel.max(), rel=1e-8)


def test_initialisers_draw_the_requested_distributions():
    rng = np.random.default_rng(2)
    w = init_weights("fan_in", 100, 200_000, rng, mean=0.5)
    assert abs(w.mean() - 0.5) < 0.003 and abs(w.std() - 0.1) < 0.003
    w = init_weights("normal", 3, 200_000, rng, mean=1.5, std=0.8)
    assert abs(w.mean() - 1.5) < 0.01 and abs(w.std() - 0.8) < 0.01
    d = init_delays("uniform", 100_000, rng, low=1e-3, high=2e-3)
    assert d.min() >= 1e-3 and d.max() <= 2e-3 and abs(d.mean() - 1.5e-3) < 1e-5
    with pytest.raises(ValueError, match="unknown weight initialisation"):
        init_weights("xavier", 3, 3, rng)
    with pytest.raises(ValueError, match=">= 0 s"):
        init_delays("uniform", 3, rng, low=-1.0, high=1.0)


# ------------------------------------------------------------------------------------------ network state
def test_network_survives_a_netcdf_round_trip_and_spikes_identically(tmp_path):
    rng = np.random.default_rng(3)
    net = Network().add(SpikeSource("inp", 6), LIF("hid", 5, tau_m=rng.uniform(8e-3, 12e-3, 5), tau_s=4e-3,
                                                   theta=1.2, reset=-0.1, refractory=2e-3),
                        Readout("out", 2, tau_m=20e-3, tau_s=5e-3))
    net = net.connect("inp", "hid", rng.normal(1.0, 0.5, 30),
                      delays=Delays(axonal=rng.uniform(0, 2e-3, 6), synaptic=rng.uniform(0, 1e-3, 30)))
    net = net.connect("hid", "hid", 0.3, connectivity=0.4, rng=4, delays=Delays(dendritic=rng.uniform(0, 1e-3, 5)))
    net = net.connect("hid", "out", rng.normal(0, 1, 10))
    write_netcdf(network_to_dataset(net), tmp_path / "net.nc")
    back = network_from_dataset(read_netcdf(tmp_path / "net.nc"))
    for a, b in zip(net.projections, back.projections):
        np.testing.assert_array_equal(a.total_delay(), b.total_delay())
        np.testing.assert_array_equal(a.weight, b.weight)
    inputs = SpikeTrains(np.repeat(np.arange(20), 24), np.tile(np.arange(6), 80), rng.uniform(0, 0.05, 480), 20, 6)
    r1, r2 = simulate(net, inputs, 0.06, n_threads=1), simulate(back, inputs, 0.06, n_threads=1)
    assert len(r1.time) > 20
    np.testing.assert_array_equal(r1.time, r2.time)
    np.testing.assert_array_equal(r1.neuron, r2.neuron)


# ------------------------------------------------------------------------------------------ trainer (toy model)
class SoftmaxRegression:
    """Multinomial logistic regression on the Yin-Yang input latencies (a cheap Model for loop tests)."""

    keys = (("linear", "weight"),)
    network = Network().add(SpikeSource("inp", 5))

    def __init__(self, w):
        self.w = np.asarray(w, float).reshape(6, 3)

    @staticmethod
    def features(data):
        x = np.zeros((len(data), 6))
        x[data.inputs.trial, data.inputs.neuron] = data.inputs.time / 5e-3
        x[:, 5] = 1.0
        return x

    def values(self):
        return {self.keys[0]: self.w.ravel().copy()}

    def with_values(self, values):
        return SoftmaxRegression(values[self.keys[0]])

    def _probabilities(self, data):
        z = self.features(data) @ self.w
        p = np.exp(z - z.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True)

    def loss_and_grad(self, batch, rng):
        p, y = self._probabilities(batch), batch.labels
        rows = np.arange(len(y))
        g = p.copy()
        g[rows, y] -= 1
        return BatchResult(float(-np.mean(np.log(p[rows, y]))),
                           {self.keys[0]: (self.features(batch).T @ g / len(y)).ravel()},
                           int(np.sum(p.argmax(1) == y)), len(y))

    def evaluate(self, data):
        p, y = self._probabilities(data), data.labels
        return Evaluation(float(-np.mean(np.log(p[np.arange(len(y)), y]))), float(np.mean(p.argmax(1) == y)),
                          p.argmax(1))


@pytest.fixture(scope="module")
def yy_small():
    return yinyang("train", 400), yinyang("validation", 200)


def toy_fit(data, **kw):
    train, val = data
    model = SoftmaxRegression(np.zeros(18))
    args = dict(epochs=4, batch_size=40, optimiser=Adam(lr=0.05), validation=val, seed=5, progress=False)
    args.update(kw)
    return fit(model, train, **args)


def test_trainer_fits_a_softmax_model_as_well_as_scikit_learn(yy_small):
    from sklearn.linear_model import LogisticRegression
    train, val = yy_small
    result = toy_fit(yy_small, epochs=60, optimiser=Adam(lr=0.05, schedule=Schedule("cosine", epochs=60)))
    x = SoftmaxRegression.features(train)[:, :5]
    reference = LogisticRegression(C=1e6, max_iter=5000).fit(x, train.labels)
    ref_loss = -np.mean(np.log(reference.predict_proba(x)[np.arange(len(train)), train.labels]))
    ours = result.model.evaluate(train)
    assert ours.loss < ref_loss + 0.01, (ours.loss, ref_loss)
    h = result.history
    assert h.sizes["epoch"] == 60 and list(h["epoch"].values) == list(range(1, 61))
    assert h["train_loss"].values[-1] < h["train_loss"].values[0]
    assert np.all(np.isfinite(h["validation_accuracy"].values))


def test_training_is_deterministic_given_the_seed(yy_small):
    a, b, c = toy_fit(yy_small), toy_fit(yy_small), toy_fit(yy_small, seed=6)
    np.testing.assert_array_equal(a.model.w, b.model.w)
    assert not np.array_equal(a.model.w, c.model.w)


def test_history_layout_and_learning_rates(yy_small):
    result = toy_fit(yy_small, optimiser=Adam(lr=0.1, schedule=Schedule("step", gamma=0.5, step_size=2)))
    h = result.history
    assert set(h.data_vars) >= {"train_loss", "train_accuracy", "validation_loss", "validation_accuracy",
                                "epoch_time", "elapsed", "learning_rate"}
    np.testing.assert_allclose(h["learning_rate"].sel(param="linear.weight").values, [0.1, 0.1, 0.05, 0.05])
    assert np.all(np.diff(h["elapsed"].values) > 0)


def test_early_stopping_stops_after_patience_epochs_without_improvement(yy_small):
    # lr = 0: the validation accuracy never improves after epoch 1
    result = toy_fit(yy_small, epochs=20, optimiser=Adam(lr=0.0), patience=3)
    assert result.stop_reason == "early_stopping" and result.epoch == 4 and result.best_epoch == 1


def test_interrupted_run_keeps_the_last_checkpoint_and_resumes_exactly(yy_small, tmp_path):
    straight = toy_fit(yy_small, epochs=6, out_dir=tmp_path / "straight")

    def interrupt(event, info):
        if event == "batch" and info["epoch"] == 4 and info["batch"] == 3:
            raise KeyboardInterrupt

    stopped = toy_fit(yy_small, epochs=6, out_dir=tmp_path / "run", callbacks=(interrupt,))
    assert stopped.stop_reason == "interrupted" and stopped.epoch == 3
    assert stopped.history.sizes["epoch"] == 3
    ckpt = load_checkpoint(tmp_path / "run" / LAST)
    assert ckpt.epoch == 3 and ckpt.history.sizes["epoch"] == 3
    np.testing.assert_array_equal(ckpt.raw[("linear", "weight")], stopped.model.w.ravel())
    assert not list((tmp_path / "run").glob(".*tmp*")), "a temporary file was left behind"
    resumed = toy_fit(yy_small, epochs=6, out_dir=tmp_path / "run", resume=True)
    np.testing.assert_array_equal(resumed.model.w, straight.model.w)
    np.testing.assert_array_equal(resumed.history["train_loss"].values, straight.history["train_loss"].values)
    assert (tmp_path / "run" / BEST).exists()


# ------------------------------------------------------------------------------------------ config
def test_config_files_and_overrides(tmp_path):
    (tmp_path / "c.toml").write_text('task = "sequence"\nlearn = ["synaptic", "weight"]\nepochs = 3\n'
                                     '[schedule]\nkind = "step"\n')
    cfg = RunConfig.from_dict(load_config_file(tmp_path / "c.toml")).merged({"epochs": 5, "seed": None})
    assert cfg.epochs == 5 and cfg.learn == ("synaptic", "weight") and cfg.schedule == {"kind": "step"}
    full = resolve_config(cfg)
    assert full.batch_size == get_recipe("sequence").defaults["batch_size"] and full.epochs == 5
    with pytest.raises(ValueError, match="unknown configuration key"):
        RunConfig.from_dict({"epoch": 3})
    with pytest.raises(ValueError, match="cannot learn"):
        RunConfig(learn="weights")
    with pytest.raises(ValueError, match="unknown task"):
        resolve_config(RunConfig(task="mnist"))


# ------------------------------------------------------------------------------------------ spiking runs
def tiny_yinyang(**kw):
    args = dict(task="yinyang", hidden=8, learn=["weight", "synaptic"], epochs=4, batch_size=25, n_train=100,
                n_validation=50, n_test=50, seed=3)
    args.update(kw)
    return resolve_config(RunConfig(**args))


def spiking_fit(cfg, **kw):
    model = build_model(cfg)
    train, val, _ = get_recipe(cfg.task).splits(cfg)
    return fit(model, train, epochs=cfg.epochs, batch_size=cfg.batch_size, optimiser=make_optimiser(cfg),
               constraints=make_constraints(cfg, model.keys), validation=val, seed=cfg.seed, progress=False,
               config=cfg.to_dict(), **kw)


def test_spiking_run_resumed_from_a_checkpoint_is_bit_identical(tmp_path):
    """The recipe's own (cosine) schedule: a run interrupted during epoch 3 and resumed equals a straight run."""
    cfg = tiny_yinyang(delay_mode="sigmoid")
    assert cfg.schedule["kind"] == "cosine"
    straight = spiking_fit(cfg, out_dir=tmp_path / "a")

    def interrupt(event, info):
        if event == "batch" and info["epoch"] == 3 and info["batch"] == 1:
            raise KeyboardInterrupt

    half = spiking_fit(cfg, out_dir=tmp_path / "b", callbacks=(interrupt,))
    assert half.epoch == 2 and half.stop_reason == "interrupted"
    resumed = spiking_fit(cfg, out_dir=tmp_path / "b", resume=True)
    assert resumed.epoch == 4 and resumed.history.sizes["epoch"] == 4
    np.testing.assert_array_equal(resumed.history["train_loss"].values, straight.history["train_loss"].values)
    for key in straight.model.keys:
        a = straight.model.values()[key]
        b = resumed.model.values()[key]
        np.testing.assert_array_equal(a, b)
    start = build_model(cfg).values()
    assert any(not np.array_equal(start[k], straight.model.values()[k]) for k in start), "nothing was trained"
    d = straight.model.values()[("input->hidden", "synaptic")]
    assert d.min() >= 0 and d.max() <= cfg.d_max


def test_yinyang_training_lowers_the_loss():
    result = spiking_fit(tiny_yinyang(epochs=6, n_train=300))
    loss = result.history["train_loss"].values
    assert loss[-1] < 0.8 * loss[0], loss


def test_trained_time_constants_never_meet():
    """An update that makes tau_s equal tau_m (which the Network refuses) keeps them TAU_SEPARATION apart
    on tau_s's side; tau_m and tau_s are set together, so a swap passes through no refused pair."""
    from neurodelay.train.classifier import TAU_SEPARATION

    model = build_model(resolve_config(RunConfig(task="mts_xor", learn=["weight", "tau_m", "tau_s"], hidden=4)))
    tau_m = model.values()[("hidden", "tau_m")]
    equal = model.with_values({("hidden", "tau_s"): tau_m.copy()})
    ts = equal.values()[("hidden", "tau_s")]
    np.testing.assert_allclose(ts, tau_m * (1 - TAU_SEPARATION), rtol=1e-12)
    old_s = model.values()[("hidden", "tau_s")]
    swapped = model.with_values({("hidden", "tau_m"): old_s, ("hidden", "tau_s"): tau_m})
    np.testing.assert_array_equal(swapped.values()[("hidden", "tau_m")], old_s)
    np.testing.assert_array_equal(swapped.values()[("hidden", "tau_s")], tau_m)
    with pytest.raises(ValueError, match="expected"):
        model.with_values({("hidden", "tau_s"): tau_m[:2]})


def test_recipes_train_the_requested_kinds_with_matched_budgets():
    xor = build_model(resolve_config(RunConfig(task="mts_xor", learn=["weight", "tau_m"], hidden=7)))
    assert set(xor.keys) == {("input->hidden", "weight"), ("hidden->output", "weight"), ("hidden", "tau_m"),
                             ("output", "tau_m")}
    digits_cfg = resolve_config(RunConfig(task="digits", learn=["weight", "synaptic"], hidden=10))
    rec = build_model(digits_cfg)
    assert ("hidden->hidden", "synaptic") in rec.keys and ("input->hidden", "synaptic") not in rec.keys
    d = rec.values()[("hidden->hidden", "synaptic")]
    assert d.shape == (100,) and d.min() >= 0 and d.max() <= digits_cfg.d_max
    with_delays = sum(v.size for v in rec.values().values())
    h = digits_matched_hidden(10)
    plain = build_model(resolve_config(RunConfig(task="digits", learn=["weight"], hidden=h)))
    without = sum(v.size for v in plain.values().values())
    smaller = build_model(resolve_config(RunConfig(task="digits", learn=["weight"], hidden=h - 1)))
    assert sum(v.size for v in smaller.values().values()) < with_delays <= without


def test_sequence_task_reaches_100_percent_from_the_worst_delays():
    """Only delays can solve it (weights are fixed at 1); the start is built to be 0 % correct."""
    cfg = resolve_config(RunConfig(task="sequence", seed=0, epochs=30))
    model = build_model(cfg)
    train, val, test = get_recipe("sequence").splits(cfg)
    assert model.evaluate(test).accuracy == 0.0
    result = spiking_fit(cfg)
    assert result.model.evaluate(test).accuracy == 1.0


# ------------------------------------------------------------------------------------------ analysis and figure
def _script(name: str):
    import importlib.util
    import sys
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / name
    spec = importlib.util.spec_from_file_location(f"_test_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_decision_grid_encoding_matches_the_yinyang_data():
    analysis = _script("analyses/train_results.py")
    test = yinyang("test", 50)
    inputs = analysis.encode_points(test.trial_meta["points"], test.meta)
    np.testing.assert_array_equal(inputs.trial, test.inputs.trial)
    np.testing.assert_array_equal(inputs.neuron, test.inputs.neuron)
    np.testing.assert_array_equal(inputs.time, test.inputs.time)
    grid, x, y = analysis.yinyang_grid_inputs(test.meta, n=5)
    assert grid.n_trials == 25 and x[0] == 0 and x[-1] == 1


def test_analysis_result_draws_the_figure_without_simulating(tmp_path, monkeypatch):
    analysis = _script("analyses/train_results.py")
    spec = analysis.RunSpec
    runs = [analysis.run_one(spec("yy-w", "weight", dict(task="yinyang", hidden=30, learn=["weight"], epochs=1,
                                                         n_train=150, n_validation=50, n_test=50, seed=0)),
                             tmp_path / "runs", None, False),
            analysis.run_one(spec("yy-s", "weight+synaptic", dict(task="yinyang", hidden=30,
                                                                  learn=["weight", "synaptic"], epochs=2, n_train=150,
                                                                  n_validation=50, n_test=50, seed=0)),
                             tmp_path / "runs", None, False),
            analysis.run_one(spec("seq", "synaptic", dict(task="sequence", learn=["synaptic"], epochs=3, seed=0)),
                             tmp_path / "runs", None, False)]
    ds = analysis.collect(runs, "test", 1.0)
    assert ds.sizes["run"] == 3 and ds.sizes["epoch"] == 3
    # each run travels through the sweep as a point file: the result assembled from the files is identical
    files = [write_netcdf(analysis.point_dataset(r), tmp_path / "points" / f"{r['name']}.nc") for r in runs]
    again = analysis.collect([analysis.point_result(read_netcdf(f)) for f in files], "test", 1.0)
    xr.testing.assert_identical(again.drop_attrs(), ds.drop_attrs())
    for a, b in zip(runs, [analysis.point_result(read_netcdf(f)) for f in files]):
        assert sorted(a) == sorted(b), a["name"]
        for key in a:
            for x, y in ([(a[key][h], b[key][h]) for h in a[key]] if key == "history" else [(a[key], b[key])]):
                np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=f"{a['name']} {key}")
    assert np.isnan(ds["history_train_loss"].values[0, 1:]).all()           # 1 epoch, padded
    assert ds["decision"].shape == (2, analysis.GRID, analysis.GRID)
    assert set(np.unique(ds["decision"].values)) <= {-1, 0, 1, 2}
    assert ds["n_params"].values.tolist() == [240, 480, 4]
    write_netcdf(ds, tmp_path / "results" / analysis.RESULT)
    import neurodelay.events
    import neurodelay.gradients

    def no_simulation(*args, **kwargs):
        raise AssertionError("a figure script must read NetCDF results, never simulate")

    monkeypatch.setattr(neurodelay.events, "simulate", no_simulation)
    monkeypatch.setattr(neurodelay.events.forward, "simulate", no_simulation)
    monkeypatch.setattr(neurodelay.gradients, "loss_and_grad", no_simulation)
    figure = _script("paper_figures/fig_training.py")
    assert figure.main(["--results", str(tmp_path / "results"), "--out", str(tmp_path / "fig")]) == 0
    png = tmp_path / "fig" / "training.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 50_000
    assert (tmp_path / "fig" / "training.pdf").read_bytes()[:5] == b"%PDF-"


def test_train_results_runs_its_plan_as_a_sweep_and_collect_trains_nothing(tmp_path, monkeypatch):
    analysis = _script("analyses/train_results.py")
    runs = tmp_path / "runs"
    args = ["--quick", "--only", "sequence", "--runs", str(runs)]
    assert analysis.main(args + ["--out", str(tmp_path / "a.nc")]) == 0
    first = read_netcdf(tmp_path / "a.nc")
    assert first["name"].values.tolist() == ["sequence-synaptic-s0"] and first["epochs"].item() == 30
    assert len(list((runs / "sweep").glob("run=*.nc"))) == 1       # the sweep folder: one file per run

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run must not be trained or reloaded again")

    monkeypatch.setattr(analysis, "run_one", no_training)
    assert analysis.main(args + ["--collect", "--out", str(tmp_path / "b.nc")]) == 0
    assert analysis.main(args + ["--out", str(tmp_path / "c.nc")]) == 0          # resumes: nothing to run
    for name in ("b.nc", "c.nc"):
        xr.testing.assert_identical(read_netcdf(tmp_path / name).drop_attrs(), first.drop_attrs())
