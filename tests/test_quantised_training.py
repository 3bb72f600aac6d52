"""Quantisation-aware training of delays (grid step or bit width over [0, d_max]), issue #16 part 4.

Checks against definitions: every value the network sees lies on the grid and
inside the range; the grid has 2**bits levels; the straight-through gradient
equals the gradient of the continuous parametrisation; bad grids are refused;
a spiking Yin-Yang run trained on a grid keeps every delay on it, moves delays
across grid points, and resumes from its checkpoint with the same grid.
"""

from __future__ import annotations

import numpy as np
import pytest

from neurodelay.cli import build_parser
from neurodelay.train.checkpoint import load_checkpoint
from neurodelay.train.config import RunConfig
from neurodelay.train.constraints import Constraint, constraint_for, grid_step
from neurodelay.train.recipes import build_model, get_recipe, make_constraints, make_optimiser, resolve_config
from neurodelay.train.trainer import LAST, fit


def _on_grid(values, step, low=0.0):
    k = (np.asarray(values) - low) / step
    return np.allclose(k, np.round(k), atol=1e-9)


@pytest.mark.parametrize("mode", ["clip", "sigmoid"])
def test_grid_values_lie_on_the_grid_inside_the_range(mode):
    c = Constraint(mode, 0.0, 10e-3, 1e-3)
    assert c.levels == 11
    rng = np.random.default_rng(0)
    raw = c.raw(rng.uniform(0, 10e-3, 500)) + (rng.normal(0, 5e-3, 500) if mode == "clip" else rng.normal(0, 3, 500))
    value = c.value(c.project(raw))
    assert _on_grid(value, 1e-3)
    assert value.min() >= 0.0 and value.max() <= 10e-3 + 1e-15
    # nearest grid point of the continuous value: at most half a step away
    cont = Constraint(mode, 0.0, 10e-3).value(c.project(raw))
    assert np.max(np.abs(value - cont)) <= 0.5e-3 + 1e-12


def test_a_grid_that_does_not_divide_the_range_stays_inside_it():
    c = Constraint("clip", 0.0, 10e-3, 3e-3)     # grid 0, 3, 6, 9 ms
    assert c.levels == 4
    np.testing.assert_allclose(c.value(np.array([0.0, 1.4e-3, 1.6e-3, 9.9e-3, 10e-3])), [0, 0, 3e-3, 9e-3, 9e-3])


@pytest.mark.parametrize("bits", [1, 2, 3, 5, 8])
def test_bits_give_two_to_the_bits_levels_from_zero_to_d_max(bits):
    c = constraint_for(("a->b", "synaptic"), 10e-3, delay_step=grid_step(10e-3, bits))
    assert c.levels == 2 ** bits
    values = np.unique(c.value(np.linspace(0, 10e-3, 4000)))
    assert len(values) == 2 ** bits
    np.testing.assert_allclose([values[0], values[-1]], [0.0, 10e-3])


@pytest.mark.parametrize("mode", ["clip", "sigmoid"])
def test_straight_through_gradient_is_that_of_the_continuous_parametrisation(mode):
    rng = np.random.default_rng(1)
    grid, cont = Constraint(mode, 0.0, 5e-3, 1e-3), Constraint(mode, 0.0, 5e-3)
    raw = cont.raw(rng.uniform(0.1e-3, 4.9e-3, 50))
    g = rng.normal(size=50)
    np.testing.assert_array_equal(grid.raw_gradient(raw, g), cont.raw_gradient(raw, g))


def test_small_steps_accumulate_in_raw_until_a_delay_moves_one_grid_point():
    c = Constraint("clip", 0.0, 10e-3, 1e-3)
    raw = np.array([2e-3])
    seen = []
    for _ in range(40):                        # 40 steps of 0.05 ms: 2 ms
        raw = c.project(raw + 0.05e-3)
        seen.append(float(c.value(raw)[0]))
    assert seen[0] == pytest.approx(2e-3)       # 2.05 ms rounds back to 2 ms: the network sees no change yet
    np.testing.assert_allclose(np.unique(np.round(seen, 12)), [2e-3, 3e-3, 4e-3])
    assert seen[-1] == pytest.approx(4e-3)


def test_bad_grids_are_refused():
    with pytest.raises(ValueError, match="step must be"):
        Constraint("clip", 0.0, 1e-2, -1e-3)
    with pytest.raises(ValueError, match="mode 'clip' or 'sigmoid'"):
        Constraint("log", 1e-3, 1.0, 1e-3)
    with pytest.raises(ValueError, match="finite bounds"):
        Constraint("clip", 0.0, np.inf, 1e-3)
    with pytest.raises(ValueError, match="larger than the range"):
        Constraint("clip", 0.0, 1e-3, 2e-3)
    with pytest.raises(ValueError, match="bits must be"):
        grid_step(1e-2, 0)
    with pytest.raises(ValueError, match="not both"):
        RunConfig(delay_step=1e-3, delay_bits=4)
    with pytest.raises(ValueError, match="delay_bits must be"):
        RunConfig(delay_bits=0)
    with pytest.raises(ValueError, match="delay_step must be"):
        RunConfig(delay_step=-1e-3)


def test_cli_flags_reach_the_configuration():
    args = build_parser().parse_args(["train", "yinyang", "--delay-bits", "4"])
    assert args.delay_bits == 4 and args.delay_step is None
    args = build_parser().parse_args(["train", "yinyang", "--delay-step", "1e-3"])
    assert args.delay_step == 1e-3


def tiny(**kw):
    args = dict(task="yinyang", hidden=8, learn=["weight", "synaptic"], epochs=3, batch_size=25, n_train=100,
                n_validation=50, n_test=50, seed=3)
    args.update(kw)
    return resolve_config(RunConfig(**args))


def _fit(cfg, **kw):
    model = build_model(cfg)
    train, val, _ = get_recipe(cfg.task).splits(cfg)
    return fit(model, train, epochs=cfg.epochs, batch_size=cfg.batch_size, optimiser=make_optimiser(cfg),
               constraints=make_constraints(cfg, model.keys), validation=val, seed=cfg.seed, progress=False,
               config=cfg.to_dict(), **kw)


def test_spiking_run_on_a_bit_grid_keeps_every_delay_on_it_and_resumes_with_it(tmp_path):
    # 8 levels over [0, 10 ms], on the grid from the start (straight-through); a large delay lr so delays move
    cfg = tiny(delay_bits=3, lr_delay=1e-3, qat_warmup=0.0, qat_delay_lr=1.0)
    step = cfg.d_max / 7
    key = ("input->hidden", "synaptic")
    start = build_model(cfg).values()[key]
    result = _fit(cfg, out_dir=tmp_path)
    d = result.model.values()[key]
    assert _on_grid(d, step) and d.min() >= 0 and d.max() <= cfg.d_max + 1e-15
    start_q = Constraint("clip", 0.0, cfg.d_max, step).value(start)
    assert np.any(d != start_q), "no delay moved to another grid point"
    ckpt = load_checkpoint(tmp_path / LAST)
    assert ckpt.constraints[key]["step"] == pytest.approx(step)
    np.testing.assert_array_equal(Constraint(**ckpt.constraints[key]).value(ckpt.raw[key]), d)
    # weights are never put on a grid
    w = result.model.values()[("input->hidden", "weight")]
    assert not _on_grid(w, step)


# ------------------------------------------------------------------------------ analysis and figure (reduced scale)
@pytest.fixture(scope="module")
def quantisation_result(quick_analysis):
    return quick_analysis("delay_quantisation")


def test_bits_analysis_result_is_consistent(quantisation_result):
    module, ds, _ = quantisation_result
    assert list(ds["bits"].values) == list(module.SCALES["quick"]["bits"])
    for name in ("continuous_accuracy", "rounded_accuracy", "qat_accuracy", "step_1ms_rounded_accuracy",
                 "step_1ms_qat_accuracy"):
        v = ds[name].values
        assert np.all(np.isfinite(v)) and np.all((v >= 0) & (v <= 1)), name
    np.testing.assert_allclose(ds["step"].values, ds["d_max"].values[:, None] / (2.0 ** ds["bits"].values - 1))


def test_bits_figure_is_drawn_from_the_result_alone(quantisation_result, draw_offline):
    draw_offline("fig_delay_quantisation.py", quantisation_result[2], "delay_quantisation", min_png_bytes=20_000)


def test_per_kind_schedules_from_the_configuration_reach_the_optimiser():
    """schedule_by anneals the delays' learning rate to zero (delays frozen for the rest of the run)."""
    cfg = tiny(epochs=30, schedule_by={"synaptic": {"kind": "cosine", "epochs": 20, "floor": 0.0}})
    opt = make_optimiser(cfg)
    d, w = ("input->hidden", "synaptic"), ("input->hidden", "weight")
    assert opt.learning_rate(d, 0) == pytest.approx(cfg.lr_delay)
    assert opt.learning_rate(d, 10) == pytest.approx(cfg.lr_delay * 0.5)
    assert opt.learning_rate(d, 20) == 0.0 and opt.learning_rate(d, 29) == 0.0
    assert opt.learning_rate(w, 25) > 0      # the weights keep the recipe's cosine schedule over 30 epochs


# ------------------------------------------------------------------------------ grid schedules (warm-up, ramp, stochastic)
def test_grid_schedule_continuous_warm_up_then_a_growing_step_then_the_grid():
    c = Constraint("clip", 0.0, 10e-3, 1e-3, grid_from=2, grid_ramp=3)
    assert c.final_epoch == 5
    assert [c.step_at(e) for e in range(7)] == pytest.approx([0, 0, 0.25e-3, 0.5e-3, 0.75e-3, 1e-3, 1e-3])
    assert c.step_at(None) == 1e-3
    raw = np.array([0.0, 1.3e-3, 4.4e-3, 9.99e-3])
    np.testing.assert_array_equal(c.value(raw, 0), raw)                      # warm-up: the continuous value
    np.testing.assert_allclose(c.value(raw, 3), [0.0, 1.5e-3, 4.5e-3, 10e-3])  # step 0.5 ms
    np.testing.assert_allclose(c.value(raw), [0.0, 1e-3, 4e-3, 10e-3])        # no epoch: the final grid
    np.testing.assert_array_equal(c.value(raw, 9), c.value(raw))
    assert Constraint(**c.to_dict()) == c


def test_stochastic_rounding_is_unbiased_between_the_two_neighbouring_grid_points():
    c = Constraint("clip", 0.0, 10e-3, 1e-3, stochastic=True)
    raw = np.full(200_000, 3.3e-3)
    v = c.value(raw, 0, np.random.default_rng(0))
    assert set(np.round(np.unique(v) * 1e3, 9)) == {3.0, 4.0}
    # binomial: P(4 ms) = 0.3, standard error sqrt(0.3 * 0.7 / n) ~ 1e-3
    assert np.mean(v == 4e-3) == pytest.approx(0.3, abs=5e-3)
    assert np.mean(v) == pytest.approx(3.3e-3, abs=5e-6)
    np.testing.assert_array_equal(c.value(raw, 0, np.random.default_rng(0)), v)   # seeded: reproducible
    np.testing.assert_allclose(c.value(raw), 3e-3)              # without a generator: the nearest grid point
    edge = c.value(np.array([0.0, 10e-3]), 0, np.random.default_rng(1))
    np.testing.assert_allclose(edge, [0.0, 10e-3])              # the ends stay inside the range


def test_stochastic_rounding_in_the_warm_up_then_nearest_on_the_grid():
    c = Constraint("clip", 0.0, 10e-3, 1e-3, grid_from=3, stochastic_before=3)
    raw = np.full(20_000, 6.75e-3)
    noisy = c.value(raw, 1, np.random.default_rng(2))            # a warm-up training minibatch
    assert set(np.round(np.unique(noisy) * 1e3, 9)) == {6.0, 7.0}
    assert np.mean(noisy) == pytest.approx(6.75e-3, abs=2e-5)
    np.testing.assert_array_equal(c.value(raw, 1), raw)          # warm-up validation: continuous
    np.testing.assert_allclose(c.value(raw, 3, np.random.default_rng(2)), 7e-3)   # on the grid: nearest
    cfg = tiny(epochs=10, delay_step=1e-3, qat_warmup=0.4, qat_rounding="stochastic-warmup")
    made = make_constraints(cfg, [("input->hidden", "synaptic")])[("input->hidden", "synaptic")]
    assert (made.grid_from, made.stochastic_before, made.stochastic) == (4, 4, False)


def test_bad_grid_schedules_are_refused():
    with pytest.raises(ValueError, match="grid_from=2 needs a quantisation grid"):
        Constraint("clip", 0.0, 1e-2, grid_from=2)
    with pytest.raises(ValueError, match="stochastic rounding needs"):
        Constraint("clip", 0.0, 1e-2, stochastic=True)
    with pytest.raises(ValueError, match="grid_ramp must be"):
        Constraint("clip", 0.0, 1e-2, 1e-3, grid_ramp=-1)
    with pytest.raises(ValueError, match="qat_warmup must be"):
        RunConfig(qat_warmup=1.0)
    with pytest.raises(ValueError, match="qat_rounding must be"):
        RunConfig(qat_rounding="up")
    with pytest.raises(ValueError, match="leave no epoch on the final delay grid"):
        make_constraints(tiny(epochs=4, delay_step=1e-3, qat_warmup=0.5, qat_ramp=0.5), [("input->hidden", "synaptic")])
    model = build_model(tiny())
    cons = {("input->hidden", "synaptic"): Constraint("clip", 0.0, 1e-2, 1e-3, grid_from=3)}
    train, _, _ = get_recipe("yinyang").splits(tiny())
    with pytest.raises(ValueError, match="reach their final grid in epoch 4"):
        fit(model, train, epochs=3, batch_size=50, constraints=cons, progress=False)


def test_delay_learning_rate_drops_by_qat_delay_lr_when_the_grid_starts():
    cfg = tiny(epochs=10, delay_step=1e-3, qat_warmup=0.4, qat_delay_lr=0.1)
    opt, ref = make_optimiser(cfg), make_optimiser(tiny(epochs=10))
    d, w = ("input->hidden", "synaptic"), ("input->hidden", "weight")
    for e in range(10):
        factor = 0.1 if e >= 4 else 1.0
        assert opt.learning_rate(d, e) == pytest.approx(factor * ref.learning_rate(d, e))
        assert opt.learning_rate(w, e) == ref.learning_rate(w, e)


def test_warm_up_epochs_are_the_continuous_run_and_only_grid_epochs_compete_for_best(tmp_path):
    """With qat_warmup the first epochs train exactly as without a grid (same seed: the same history);
    from then on every delay is on the grid, and best.nc is a network on the grid."""
    key = ("input->hidden", "synaptic")
    cont = _fit(tiny(epochs=4, lr_delay=1e-3))
    cfg = tiny(epochs=4, lr_delay=1e-3, delay_step=1e-3, qat_warmup=0.5)
    warm = _fit(cfg, out_dir=tmp_path)
    np.testing.assert_array_equal(warm.history["validation_accuracy"].values[:2],
                                  cont.history["validation_accuracy"].values[:2])
    np.testing.assert_array_equal(warm.history["train_loss"].values[:2], cont.history["train_loss"].values[:2])
    assert not _on_grid(cont.model.values()[key], 1e-3)
    assert _on_grid(warm.model.values()[key], 1e-3)
    assert warm.best_epoch >= 3
    best = load_checkpoint(tmp_path / "best.nc")
    from neurodelay.gradients import get_param
    assert _on_grid(get_param(best.network, key), 1e-3)


def test_stochastic_rounding_run_resumes_bit_for_bit(tmp_path):
    cfg = tiny(epochs=4, lr_delay=1e-3, delay_step=1e-3, qat_warmup=0.25, qat_rounding="stochastic")
    whole = _fit(cfg, out_dir=tmp_path / "whole")

    def stop_after_two(event, info):
        if event == "epoch" and info["epoch"] == 2:
            raise KeyboardInterrupt

    part = _fit(cfg, out_dir=tmp_path / "part", callbacks=(stop_after_two,))
    assert part.epoch == 2 and part.stop_reason == "interrupted"
    resumed = _fit(cfg, out_dir=tmp_path / "part", resume=True)
    for k, v in whole.model.values().items():
        np.testing.assert_array_equal(resumed.model.values()[k], v)
    np.testing.assert_array_equal(resumed.history["train_loss"].values, whole.history["train_loss"].values)


def test_grid_runs_get_the_default_recipe_and_the_cli_flags_override_it():
    from neurodelay.train.recipes import QAT_DEFAULTS
    cfg = tiny(epochs=10, delay_step=1e-3)
    assert {k: getattr(cfg, k) for k in QAT_DEFAULTS} == QAT_DEFAULTS
    c = make_constraints(cfg, [("input->hidden", "synaptic")])[("input->hidden", "synaptic")]
    assert c.grid_from == round(QAT_DEFAULTS["qat_warmup"] * 10) and c.grid_ramp == 0 and not c.stochastic
    assert tiny().qat_warmup is None          # no grid: nothing filled in (old configurations resume unchanged)
    args = build_parser().parse_args(["train", "yinyang", "--delay-step", "1e-3", "--qat-warmup", "0.25",
                                      "--qat-delay-lr", "0.1", "--qat-rounding", "stochastic"])
    assert (args.qat_warmup, args.qat_delay_lr, args.qat_rounding, args.qat_ramp) == (0.25, 0.1, "stochastic", None)
