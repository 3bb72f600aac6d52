"""Published training set-ups: per task, its data splits, network, loss, decision rule and defaults.

A recipe turns a :class:`~neurodelay.train.config.RunConfig` into data
(train / validation / test :class:`~neurodelay.data.TaskData`) and a
:class:`~neurodelay.train.classifier.SpikingClassifier` whose trained keys
follow ``config.learn``: ``weight`` and the delay kinds apply to the recipe's
trainable projections, ``tau_m`` / ``tau_s`` to its trainable populations
(one value per neuron). A delay kind that is learned is created with
``config.delay_init`` (scheme ``uniform`` on [low, high] s by default).

Recipes (times in seconds):

* ``yinyang`` — DelGrad's simulation set-up: 5 inputs (4 latencies + bias)
  -> ``hidden`` LIF -> 3 output LIF, tau_s = 5 ms, tau_m = 2 tau_s,
  theta = 1, single-spike neurons (refractory for the whole trial), trial
  4 tau_s; shift-invariant first-spike MSE with margin 0.2 tau_s (time unit
  tau_s); Adam lr 0.005 (delays: 0.005 tau_s per step), batch 150, 300
  epochs, cosine decay of the learning rates to 2 % (chosen over Göltz et
  al.'s StepLR(0.95, 20) by validation accuracy); Göltz's normal
  initialisation rescaled to tau_m = 2 tau_s (:func:`psp_peak`), output
  weights' mean scaled by 30 / hidden and std by sqrt(30 / hidden) (without it
  5-hidden networks start, and stay, with silent outputs); learned
  delays start uniform in [0, 0.2 tau_s] and stay in [0, 2 tau_s]. Under
  ``rule='three-factor'`` the surrogate width defaults to 0.1 theta (the
  rule's own default: 0.3), which Yin-Yang learns better with.
* ``sequence`` — mlGeNN's sequence detection: 2 inputs -> 2 readouts,
  weights fixed at 1, synaptic delays learned from the *worst* start (each
  readout's delays make the *other* order coincide: 0 % accuracy at
  initialisation); max-over-time cross-entropy.
* ``mts_xor`` — multi-time-scale XOR: 30 inputs -> ``hidden`` LIF
  (refractory 1 ms) -> 2 readouts; max-over-time readout voltage,
  cross-entropy. The homogeneous baseline has tau_m = 20 ms, tau_s = 5 ms
  everywhere; learned delays start uniform in [0, 10] ms (d_max 200 ms).
  Trained time constants (log space, lr_tau 0.05) train with the weights as
  PSP heights (``psp_normalised``, the default when time constants are
  trained) and Adam's second moment shared per population and kind
  (``shared_moment``, default tau_m and tau_s): with raw weights the tau
  gradient is almost all PSP *height* (bench/tau_gradient_split.py), taus
  act as a second gain and only some seeds found the long-memory solution
  (README, "Trained time constants"). Under ``rule='three-factor'`` with
  learned delays the learning rates default to four times these (lr 0.02,
  lr_delay 0.012): at the recipe's scale the rule then reaches 92 % against
  69 % at these rates, while exact learning, and the rule on weights alone,
  are worse at x 4 (README, "Online against exact learning").
  Diagnosis: bench/tau_training_diagnosis.py. Options for that study:
  ``tau_populations`` (which populations' taus are trained, default both),
  ``shared_tau_populations`` (populations whose trained time constants are one shared value, e.g.
  ``["output"]``: both readouts keep equal time constants),
  ``hidden_tau_s_range`` ((low, high) s: log-uniform per-neuron hidden tau_s
  at initialisation) and ``count_strength`` / ``count_target`` (hidden
  spike-count regulariser, default off), ``readout_bias`` (True: the readouts' bias current is trained
  too), ``psp_normalised`` (weights trained as PSP heights, so that a time constant changes the
  PSP's shape, not its height; :class:`~neurodelay.train.SpikingClassifier`; default: True when time
  constants are trained, none of them shared, False otherwise).
* ``digits`` — permuted sequential 8x8 digits (:func:`~neurodelay.data.digits`
  defaults: 8 random pixels per 8 ms step, 8 steps, 4 levels: 65 inputs)
  -> recurrent ``hidden`` LIF (tau_m 20 ms, tau_s 5 ms, refractory 1 ms)
  -> 10 readouts, max-over-time readout cross-entropy plus a hidden
  spike-count regulariser (target 3 spikes per neuron and trial, strength
  0.1; it keeps hidden neurons from falling silent); fan-in initialisation
  with input_mean 0.1, input_gain 6 (sparse, input-selective hidden spikes;
  the former mean 0.5 / gain 1 saturated every hidden neuron, ~8 spikes each
  per trial whatever the digit, and training stayed at chance); Adam lr
  0.02, batch 32, 30 epochs, cosine decay to 10 %. Delay kinds apply to the
  recurrent projection only (or to ``model_options['delay_projections']``),
  starting uniform in [0, 64] ms (d_max 64 ms). Test accuracy, seeds 0-2,
  one core, 45-80 s a run: weights only with ``digits_matched_hidden(32)``
  = 40 neurons 58 / 74 / 59 %; weights + recurrent synaptic delays with 32
  neurons (same parameter count) 79 / 80 / 71 %. One pixel per 1 ms step
  (``task_options`` pixels_per_step 1, dt_step 1e-3) stays at 17-22 % with
  this network, with or without learned delays (seed 0): the pixel
  positions are then coded only in spike timing across 64 steps, beyond the
  memory of 20 ms neurons.

``model_options`` of the readout tasks: ``readout`` ('max' or 'integral',
with ``tau_weight`` s), ``tau_m``, ``tau_s``, ``readout_tau_m`` (s),
``input_mean``, ``input_gain``, ``recurrent_gain``, ``output_gain``
(fan-in initialisation: N(mean, gain / sqrt(n_pre))); digits also
``count_target``, ``count_strength`` (hidden spike-count regulariser, 0: off).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..data import digits, mts_xor, sequence, yinyang
from ..delays import DELAY_KINDS
from ..gradients import get_param, set_param
from ..losses import (FirstSpikeMSE, MaxVoltageCrossEntropy, SpikeCountRegulariser,
                      WeightedIntegralCrossEntropy)
from ..network import LIF, Network, Readout, SpikeSource
from .classifier import SpikingClassifier
from .config import RunConfig
from .constraints import constraint_for, grid_step
from .init import init_delays, init_weights, psp_peak
from .optim import Adam, Schedule, key_name

__all__ = ["Recipe", "RECIPES", "QAT_DEFAULTS", "get_recipe", "build_model", "make_optimiser", "make_constraints",
           "resolve_config", "digits_matched_hidden"]


@dataclass(frozen=True)
class Built:
    """What a recipe's builder returns before the trained keys are chosen."""

    network: Network
    loss: object
    output: str
    decision: str
    projections: tuple          # projection names whose weights / delays may be trained
    populations: tuple          # population names whose time constants may be trained
    classifier_options: dict


@dataclass(frozen=True)
class Recipe:
    """A task's defaults (RunConfig fields), its data splits and its network builder."""

    name: str
    defaults: dict
    splits: Callable            # (config) -> (train, validation, test)
    build: Callable             # (config, rng) -> Built
    description: str = ""
    model_options: tuple = ()   # the model_options keys the builder reads
    generator: Callable | None = None    # the data generator that receives task_options
    fixed_arguments: tuple = ()          # generator arguments the recipe sets itself
    rule_defaults: dict = field(default_factory=dict)   # rule name -> its own defaults (before `defaults`)
    rule_delay_defaults: dict = field(default_factory=dict)  # the same, first, where a delay kind is learned

    def defaults_for(self, rule: str | None, learn) -> list[dict]:
        """The defaults that apply to a configuration with this rule and these learned kinds (None:
        the recipe's), first to last: those of the rule when delays are learned, those of the rule,
        the recipe's."""
        learn = self.defaults.get("learn", ()) if learn is None else learn
        delays = any(kind in DELAY_KINDS for kind in learn)
        return [self.rule_delay_defaults.get(rule, {}) if delays else {}, self.rule_defaults.get(rule, {}),
                self.defaults]

    def task_options(self) -> tuple:
        """The task_options keys: the data generator's keyword-only arguments that the recipe leaves free."""
        if self.generator is None:
            return ()
        params = inspect.signature(self.generator).parameters.values()
        return tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name not in self.fixed_arguments)


# ------------------------------------------------------------------------------------------ Yin-Yang
YY_TAU_S = 5e-3
YY_INIT_HIDDEN = 30      # the hidden size the output-weight initialisation is calibrated for


def _yy_splits(cfg: RunConfig):
    opts = dict(cfg.task_options)
    return (yinyang("train", cfg.n_train, **opts), yinyang("validation", cfg.n_validation, **opts),
            yinyang("test", cfg.n_test, **opts))


def _yy_build(cfg: RunConfig, rng: np.random.Generator) -> Built:
    o = dict(cfg.model_options)
    tau_s = float(cfg.task_options.get("tau_s", YY_TAU_S))
    tau_m = float(o.get("tau_m_ratio", 2.0)) * tau_s
    theta = float(o.get("theta", 1.0))
    refractory = o.get("refractory")       # None: one spike per neuron and trial
    refractory = 1.0 if refractory is None else float(refractory)
    # Göltz et al.'s Yin-Yang init for tau_m = tau_s, rescaled to equal PSP heights at this tau_m / tau_s
    scale = psp_peak(1.0, 1.0) / psp_peak(tau_m / tau_s, 1.0) * theta
    h_mean, h_std = o.get("hidden_init", (1.5, 0.8))
    o_mean, o_std = o.get("output_init", (0.5, 0.8))
    n_in, n_hid = 5 if cfg.task_options.get("bias", True) else 4, int(cfg.hidden)
    net = Network().add(SpikeSource("input", n_in),
                        LIF("hidden", n_hid, tau_m=tau_m, tau_s=tau_s, theta=theta, refractory=refractory),
                        LIF("output", 3, tau_m=tau_m, tau_s=tau_s, theta=theta, refractory=refractory))
    net = net.connect("input", "hidden", init_weights("normal", n_in, n_in * n_hid, rng,
                                                      mean=h_mean * scale, std=h_std * scale))
    # calibrated for 30 hidden neurons: keep the mean and variance of an output's summed input for other sizes
    fan = YY_INIT_HIDDEN / n_hid
    net = net.connect("hidden", "output", init_weights("normal", n_hid, n_hid * 3, rng, mean=o_mean * scale * fan,
                                                       std=o_std * scale * np.sqrt(fan)))
    loss = FirstSpikeMSE("output", margin=float(o.get("margin", 0.2)) * tau_s, time_unit=tau_s,
                         missing_penalty=float(o.get("missing_penalty", 1.0)))
    return Built(net, loss, "output", "first_spike", ("input->hidden", "hidden->output"), ("hidden", "output"),
                 dict(input_noise=float(o.get("input_noise", 0.0)) * tau_s))


# ------------------------------------------------------------------------------------------ sequence
def _seq_splits(cfg: RunConfig):
    opts = dict(cfg.task_options)
    return (sequence(cfg.n_train or 100, seed=0, **opts), sequence(cfg.n_validation or 100, seed=1, **opts),
            sequence(cfg.n_test or 200, seed=2, **opts))


def _seq_build(cfg: RunConfig, rng: np.random.Generator) -> Built:
    o = dict(cfg.model_options)
    interval = float(cfg.task_options.get("interval", 10e-3))
    net = Network().add(SpikeSource("input", 2),
                        Readout("output", 2, tau_m=float(o.get("tau_m", 10e-3)), tau_s=float(o.get("tau_s", 5e-3))))
    # synapses (pre, post) in 'all' order: (0,0), (0,1), (1,0), (1,1). Worst start: readout 0 (class 0:
    # input 0 first) delays input 1 by the interval, so the *reverse* order coincides on it; readout 1 mirrors it.
    net = net.connect("input", "output", float(o.get("weight", 1.0)))
    worst = np.array([0.0, interval, interval, 0.0])
    return Built(net, MaxVoltageCrossEntropy("output"), "output", "max_voltage", ("input->output",), ("output",),
                 dict(_worst_synaptic=worst))


# ------------------------------------------------------------------------------------------ MTS-XOR
XOR_LR, XOR_LR_DELAY = 0.005, 3e-3    # Adam rates of exact learning: weights, delays (s per step)
def _xor_splits(cfg: RunConfig):
    opts = dict(cfg.task_options)
    return (mts_xor(cfg.n_train or 1000, seed=0, **opts), mts_xor(cfg.n_validation or 300, seed=1, **opts),
            mts_xor(cfg.n_test or 1000, seed=2, **opts))


def _readout(o: dict, output: str = "output"):
    """(loss, decision, classifier options) of a readout population: 'max' (max-over-time voltage) or
    'integral' (exponentially weighted voltage integral with model_options['tau_weight'])."""
    kind = o.get("readout", "max")
    if kind == "max":
        return MaxVoltageCrossEntropy(output), "max_voltage", {}
    if kind == "integral":
        tau_weight = o.get("tau_weight")
        return WeightedIntegralCrossEntropy(output, tau_weight), "integral", dict(tau_weight=tau_weight)
    raise ValueError(f"model_options readout must be 'max' or 'integral', got {kind!r}")


def _xor_build(cfg: RunConfig, rng: np.random.Generator) -> Built:
    o = dict(cfg.model_options)
    tau_m, tau_s = float(o.get("tau_m", 20e-3)), float(o.get("tau_s", 5e-3))
    n_in = 2 * int(cfg.task_options.get("n_per_channel", 10)) + int(cfg.task_options.get("n_noise", 10))
    n_hid = int(cfg.hidden)
    hidden_tau_s = tau_s
    if o.get("hidden_tau_s_range") is not None:      # log-uniform per-neuron tau_s (s), away from tau_m
        low, high = (float(v) for v in o["hidden_tau_s_range"])
        hidden_tau_s = np.exp(np.random.default_rng([int(cfg.seed), 3]).uniform(np.log(low), np.log(high), n_hid))
        near = np.abs(hidden_tau_s - tau_m) < 0.1 * tau_m
        hidden_tau_s[near] = np.where(hidden_tau_s[near] < tau_m, 0.9, 1.1)[...] * tau_m
    net = Network().add(SpikeSource("input", n_in),
                        LIF("hidden", n_hid, tau_m=tau_m, tau_s=hidden_tau_s,
                            refractory=float(o.get("refractory", 1e-3))),
                        Readout("output", 2, tau_m=tau_m, tau_s=tau_s))
    net = net.connect("input", "hidden", init_weights("fan_in", n_in, n_in * n_hid, rng,
                                                      mean=float(o.get("input_mean", 0.6)),
                                                      gain=float(o.get("input_gain", 1.0))))
    net = net.connect("hidden", "output", init_weights("fan_in", n_hid, n_hid * 2, rng,
                                                       gain=float(o.get("output_gain", 3.0))))
    loss, decision, options = _readout(o)
    strength = float(o.get("count_strength", 0.0))     # hidden spike-count regulariser (0: off)
    if strength > 0:
        loss = loss + SpikeCountRegulariser("hidden", float(o.get("count_target", 3.0)), strength)
    tau_pops = tuple(o.get("tau_populations", ("hidden", "output")))
    if o.get("readout_bias", False):      # also train the readouts' bias current
        options = dict(options, _extra_keys=(("output", "bias"),))
    # trained weights as PSP heights (SpikingClassifier(psp_normalised=True)) whenever time constants are
    # trained: the default since it beats the fixed homogeneous baseline on every seed (README)
    taus = any(k in ("tau_m", "tau_s") for k in cfg.learn) and not o.get("shared_tau_populations")
    if o.get("psp_normalised", taus):
        options = dict(options, psp_normalised=True)
    return Built(net, loss, "output", decision, ("input->hidden", "hidden->output"), tau_pops, options)


# ------------------------------------------------------------------------------------------ digits
def _digits_splits(cfg: RunConfig):
    opts = dict(cfg.task_options)
    full = digits("train", **opts)
    n_val = cfg.n_validation or len(full) // 7
    order = np.arange(len(full))
    train = full.select(order[: len(full) - n_val])
    if cfg.n_train is not None:
        train = train.select(np.arange(min(cfg.n_train, len(train))))
    test = digits("test", cfg.n_test, **opts)
    return train, full.select(order[len(full) - n_val:]), test


def _digits_n_inputs(task_options: dict) -> int:
    """Input neurons of the digits encoding with these options (from an empty split)."""
    return digits("test", 0, **dict(task_options)).n_inputs


def _digits_build(cfg: RunConfig, rng: np.random.Generator) -> Built:
    o = dict(cfg.model_options)
    tau_m, tau_s = float(o.get("tau_m", 20e-3)), float(o.get("tau_s", 5e-3))
    n_in = _digits_n_inputs(cfg.task_options)
    n_hid = int(cfg.hidden)
    net = Network().add(SpikeSource("input", n_in),
                        LIF("hidden", n_hid, tau_m=tau_m, tau_s=tau_s, refractory=float(o.get("refractory", 1e-3))),
                        Readout("output", 10, tau_m=float(o.get("readout_tau_m", tau_m)), tau_s=tau_s))
    net = net.connect("input", "hidden", init_weights("fan_in", n_in, n_in * n_hid, rng,
                                                      mean=float(o.get("input_mean", 0.1)),
                                                      gain=float(o.get("input_gain", 6.0))))
    net = net.connect("hidden", "hidden", init_weights("fan_in", n_hid, n_hid * n_hid, rng,
                                                       gain=float(o.get("recurrent_gain", 0.5))))
    net = net.connect("hidden", "output", init_weights("fan_in", n_hid, n_hid * 10, rng,
                                                       gain=float(o.get("output_gain", 3.0))))
    loss, decision, options = _readout(o)
    strength = float(o.get("count_strength", 0.1))     # hidden spike-count regulariser (0: off)
    if strength > 0:
        loss = loss + SpikeCountRegulariser("hidden", float(o.get("count_target", 3.0)), strength)
    return Built(net, loss, "output", decision, ("input->hidden", "hidden->hidden", "hidden->output"),
                 ("hidden", "output"),
                 dict(options, _delay_projections=tuple(o.get("delay_projections", ("hidden->hidden",)))))


RECIPES = {
    "yinyang": Recipe("yinyang", dict(
        hidden=30, learn=["weight"], epochs=300, batch_size=150, lr=0.005, lr_delay=0.005 * YY_TAU_S,
        lr_tau=0.005, schedule=dict(kind="cosine", floor=0.02), d_max=2 * YY_TAU_S,
        delay_init=dict(scheme="uniform", low=0.0, high=0.2 * YY_TAU_S), patience=None),
        _yy_splits, _yy_build, "Yin-Yang (DelGrad's simulation settings)",
        ("tau_m_ratio", "theta", "refractory", "hidden_init", "output_init", "margin", "missing_penalty",
         "input_noise"), yinyang,
        # the three-factor rule's surrogate narrower than its default 0.3: weights + synaptic delays, the whole
        # training set, seeds 0-2: 95.3 ± 0.9 % against 93.2 ± 0.6 at 300 epochs and 95.3 ± 0.6 against
        # 91.9 ± 2.8 at 30; better on every seed there and at every rate of the reduced runs
        # (bench/online_knobs.py)
        rule_defaults={"three-factor": dict(sigma=0.1)}),
    "sequence": Recipe("sequence", dict(
        hidden=1, learn=["synaptic"], epochs=60, batch_size=20, lr=0.01, lr_delay=2e-4, lr_tau=0.01,
        schedule=dict(kind="constant"), d_max=15e-3, delay_init=dict(scheme="worst")),
        _seq_splits, _seq_build, "two-neuron sequence detection (only delays can solve it)",
        ("tau_m", "tau_s", "weight"), sequence, ("seed",)),
    "mts_xor": Recipe("mts_xor", dict(
        hidden=32, learn=["weight"], epochs=40, batch_size=50, lr=XOR_LR, lr_delay=XOR_LR_DELAY, lr_tau=0.05,
        schedule=dict(kind="cosine", floor=0.1), d_max=0.2, shared_moment=["tau_m", "tau_s"],
        delay_init=dict(scheme="uniform", low=0.0, high=0.01)),
        _xor_splits, _xor_build, "multi-time-scale XOR",
        ("tau_m", "tau_s", "refractory", "input_mean", "input_gain", "output_gain", "readout", "tau_weight",
         "tau_populations", "shared_tau_populations", "hidden_tau_s_range", "count_strength", "count_target",
         "readout_bias", "psp_normalised"),
        mts_xor, ("seed",),
        # the three-factor rule learning delays at 4x the rates (chosen for exact learning): at the recipe's
        # scale, weights + synaptic delays, seeds 0-2 and the full-scale analysis's 3, it reaches 92.3 %
        # against 69.0 % at x1 (bench/online_knobs.py); weights alone at x4 fell from 65.9 to 52.8 %
        rule_delay_defaults={"three-factor": dict(lr=4 * XOR_LR, lr_delay=4 * XOR_LR_DELAY)}),
    "digits": Recipe("digits", dict(
        hidden=32, learn=["weight"], epochs=30, batch_size=32, lr=0.02, lr_delay=1e-3, lr_tau=0.05,
        schedule=dict(kind="cosine", floor=0.1), d_max=0.064,
        delay_init=dict(scheme="uniform", low=0.0, high=0.064)),
        _digits_splits, _digits_build, "permuted sequential 8x8 digits, recurrent hidden layer",
        ("tau_m", "tau_s", "refractory", "readout_tau_m", "input_mean", "input_gain", "recurrent_gain",
         "output_gain", "count_strength", "count_target", "delay_projections", "readout", "tau_weight"), digits),
}


#: the quantisation-aware recipe used when a configuration trains delays on a grid and leaves these unset:
#: continuous delays for the first third of the epochs, then rounded to the grid once and fixed there while
#: the weights keep training (measured against other recipes in bench/qat_recipes.py: Yin-Yang + synaptic
#: delays on a 1 ms grid, 30 epochs, 3 seeds: 96.6 ± 0.5 % against 97.3 ± 0.8 % with continuous delays;
#: straight-through training on the grid from the start, where delays near a rounding boundary keep
#: flipping between grid points, reached 81 %; see the README)
QAT_DEFAULTS = dict(qat_warmup=0.33, qat_delay_lr=0.0, qat_ramp=0.0, qat_rounding="nearest")


def digits_matched_hidden(hidden: int, n_inputs: int | None = None, n_classes: int = 10) -> int:
    """Smallest recurrent hidden size of the digits network whose weights-only parameter count reaches
    that of `hidden` neurons with learned recurrent synaptic delays (one more parameter per recurrent synapse).
    n_inputs: input neurons (default: those of the default digits encoding)."""
    n_inputs = _digits_n_inputs({}) if n_inputs is None else int(n_inputs)
    budget = n_inputs * hidden + 2 * hidden * hidden + hidden * n_classes
    h = int(hidden)
    while n_inputs * h + h * h + h * n_classes < budget:
        h += 1
    return h


def get_recipe(task: str) -> Recipe:
    """The recipe of a task name (clear error listing the known ones)."""
    if task not in RECIPES:
        raise ValueError(f"unknown task {task!r}; known tasks: {sorted(RECIPES)}")
    return RECIPES[task]


def resolve_config(cfg: RunConfig) -> RunConfig:
    """`cfg` with every unset field filled from its task's defaults: first those of its rule where the
    recipe has its own for that rule (:meth:`Recipe.defaults_for`: with learned delays, then any), then
    the task's, and, with a delay grid, the quantisation-aware recipe's from :data:`QAT_DEFAULTS`."""
    recipe = get_recipe(cfg.task)
    for defaults in recipe.defaults_for(cfg.rule, cfg.learn):
        cfg = cfg.with_defaults(defaults)
    if cfg.delay_step is not None or cfg.delay_bits is not None:
        cfg = cfg.with_defaults(QAT_DEFAULTS)
    if cfg.epochs is None or cfg.batch_size is None:
        raise ValueError("epochs and batch_size must be set")
    for field_name, known in (("model_options", recipe.model_options), ("task_options", recipe.task_options())):
        unknown = sorted(set(getattr(cfg, field_name)) - set(known))
        if unknown:
            raise ValueError(f"{field_name}: unknown key(s) {unknown} for task {cfg.task!r}; known: {sorted(known)}")
    return cfg


def build_model(cfg: RunConfig) -> SpikingClassifier:
    """The initial classifier of a (resolved) configuration; initialisation seeded by ``cfg.seed``."""
    cfg = resolve_config(cfg)
    recipe = get_recipe(cfg.task)
    rng = np.random.default_rng([int(cfg.seed), 1])       # independent of the trainer's stream (seed)
    built = recipe.build(cfg, rng)
    options = dict(built.classifier_options)
    worst = options.pop("_worst_synaptic", None)
    delay_projections = options.pop("_delay_projections", built.projections)
    extra_keys = list(options.pop("_extra_keys", ()))
    net, keys = built.network, []
    init = dict(cfg.delay_init)
    scheme = init.pop("scheme", "uniform")
    for kind in cfg.learn:
        if kind == "weight":
            keys += [(p, "weight") for p in built.projections]
        elif kind in DELAY_KINDS:
            for p in delay_projections:
                key = (p, kind)
                size = get_param(net, key).shape[0]
                if scheme == "worst":
                    if worst is None or kind != "synaptic":
                        raise ValueError(f"delay_init scheme 'worst' is defined for the synaptic delays of the "
                                         f"sequence task only, not for {cfg.task} / {kind}")
                    value = worst.copy()
                else:
                    value = init_delays(scheme, size, rng, **init)
                net = set_param(net, key, np.minimum(value, cfg.d_max))
                keys.append(key)
        else:  # time constants (one shared value for the populations in model_options shared_tau_populations)
            shared = set(dict(cfg.model_options).get("shared_tau_populations") or ())
            unknown = sorted(shared - set(built.populations))
            if unknown:
                raise ValueError(f"model_options shared_tau_populations: {unknown} are not trained populations "
                                 f"{list(built.populations)}")
            keys += [(p, kind, "shared") if p in shared else (p, kind) for p in built.populations]
    keys += extra_keys
    allowed = set(cfg.learn) | {key_name(k) for k in keys}
    unknown = sorted(set(cfg.lr_by) - allowed)
    if unknown:
        raise ValueError(f"lr_by: {unknown} name no trained parameter; use a trained kind {list(cfg.learn)} "
                         f"or a trained key {sorted(key_name(k) for k in keys)}")
    if cfg.rule == "three-factor":
        from ..plasticity import RULE_KINDS, ThreeFactorRule
        other = sorted({k[1] for k in keys} - set(RULE_KINDS))
        if other:
            raise ValueError(f"rule 'three-factor' updates {list(RULE_KINDS)}; learn={list(cfg.learn)} also asks "
                             f"for {other} (train those with the exact gradients, rule='eventprop')")
        options["rule"] = ThreeFactorRule.from_keys(keys, **cfg.three_factor_options())
    return SpikingClassifier(net, keys, built.loss, built.output, built.decision, **options)


def make_optimiser(cfg: RunConfig) -> Adam:
    """Adam with the configuration's learning rates (weights: lr, delays: lr_delay, time constants: lr_tau,
    then ``lr_by``; schedules: ``schedule``, per key name or kind ``schedule_by``); a cosine schedule
    without ``epochs`` spans the run's epochs."""
    cfg = resolve_config(cfg)
    schedule = dict(cfg.schedule)
    if schedule.get("kind") == "cosine":
        schedule.setdefault("epochs", cfg.epochs)
    lr_by = {kind: cfg.lr_delay for kind in DELAY_KINDS}
    lr_by.update(tau_m=cfg.lr_tau, tau_s=cfg.lr_tau)
    lr_by.update(cfg.lr_by)
    schedule_by = {}
    for name, sched in cfg.schedule_by.items():
        sched = dict(sched)
        if sched.get("kind") == "cosine":
            sched.setdefault("epochs", cfg.epochs)
        schedule_by[name] = Schedule.from_dict(sched)
    grid_from = _qat_grid_from(cfg)
    if cfg.qat_delay_lr is not None and grid_from is not None:
        # the delays' schedule (their own, else the default) times qat_delay_lr once they are on the grid
        for kind in cfg.learn:
            if kind in DELAY_KINDS:
                sched = schedule_by.get(kind, Schedule.from_dict(schedule)).to_dict()
                sched.update(drop_at=grid_from, drop_factor=float(cfg.qat_delay_lr))
                schedule_by[kind] = Schedule.from_dict(sched)
    return Adam(lr=cfg.lr, lr_by=lr_by, schedule=Schedule.from_dict(schedule), schedule_by=schedule_by,
                clip_norm=cfg.clip_norm, shared_moment=tuple(cfg.shared_moment or ()))


def _qat_grid_from(cfg: RunConfig) -> int | None:
    """First epoch (0-based) with delays on a grid (None: no grid)."""
    if cfg.delay_step is None and cfg.delay_bits is None:
        return None
    return round(float(cfg.qat_warmup or 0.0) * cfg.epochs)


def make_constraints(cfg: RunConfig, keys) -> dict:
    """Default constraints of the trained keys (delays in [0, d_max] by ``cfg.delay_mode``, on the grid of
    ``cfg.delay_step`` s or ``cfg.delay_bits`` bits if given: quantisation-aware training)."""
    cfg = resolve_config(cfg)
    step = cfg.delay_step
    if cfg.delay_bits is not None:
        step = grid_step(cfg.d_max, cfg.delay_bits)
    if step is not None and cfg.d_max is not None and step > cfg.d_max:
        raise ValueError(f"delay_step {step} s is larger than d_max {cfg.d_max} s")
    schedule = {}
    if step:
        schedule = dict(grid_from=_qat_grid_from(cfg),
                        grid_ramp=round(float(cfg.qat_ramp or 0.0) * cfg.epochs),
                        stochastic=cfg.qat_rounding == "stochastic")
        if cfg.qat_rounding == "stochastic-warmup":
            schedule["stochastic_before"] = schedule["grid_from"]
        if schedule["grid_from"] + schedule["grid_ramp"] >= cfg.epochs:
            raise ValueError(f"qat_warmup + qat_ramp ({cfg.qat_warmup} + {cfg.qat_ramp} of {cfg.epochs} epochs) "
                             f"leave no epoch on the final delay grid; lower them or train longer")
    return {k: constraint_for(k, cfg.d_max, cfg.delay_mode, delay_step=step, **schedule) for k in keys}
