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
    cfg = tiny(delay_bits=3, lr_delay=1e-3)     # 8 levels over [0, 10 ms]; a large delay lr so delays move
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
