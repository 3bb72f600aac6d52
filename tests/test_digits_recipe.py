"""The digits recipe: input count follows the encoding, the hidden spike-count regulariser, and it learns."""

from __future__ import annotations

from neurodelay.losses import SpikeCountRegulariser
from neurodelay.train.config import RunConfig
from neurodelay.train.recipes import build_model, resolve_config
from neurodelay.train.runs import train_run


def test_digits_inputs_follow_the_encoding_and_the_regulariser_can_be_switched_off():
    default = build_model(resolve_config(RunConfig(task="digits", hidden=5)))
    assert default.values()[("input->hidden", "weight")].shape == (65 * 5,)      # 8 pixels x 4 levels x 2 + cue
    assert any(isinstance(t, SpikeCountRegulariser) for t in getattr(default.loss, "terms", ()))
    pixelwise = build_model(resolve_config(RunConfig(task="digits", hidden=5, task_options=dict(pixels_per_step=1),
                                                     model_options=dict(count_strength=0.0))))
    assert pixelwise.values()[("input->hidden", "weight")].shape == (9 * 5,)
    assert not isinstance(pixelwise.loss, type(default.loss))


def test_digits_recipe_learns_well_above_chance():
    """Small and short (about 5 s); the former defaults (one pixel per 1 ms step, input mean 0.5, gain 1,
    lr 0.01, no regulariser) stay at chance here."""
    cfg = RunConfig(task="digits", hidden=24, epochs=10, n_train=600, n_test=200, seed=0)
    _, evaluation = train_run(cfg, progress=False, n_threads=1)
    assert evaluation.attrs["accuracy"] >= 0.3, evaluation.attrs["accuracy"]          # chance: 0.1
