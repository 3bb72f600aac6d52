"""The settings of one training run: defaults per task, a JSON/TOML file, command-line overrides.

A :class:`RunConfig` is a flat, JSON-able record. Times are in seconds,
learning rates in parameter units per step (weights: threshold units,
delays: seconds; time constants are trained in log space, so ``lr_tau`` is a
relative change per step). ``delay_step`` (s) or ``delay_bits`` (a grid
of 2**bits values over [0, d_max]) make training quantisation-aware: the
network sees delays on that grid (straight-through gradients, see
:mod:`neurodelay.train.constraints`): ``qat_warmup`` (fraction of the
epochs) trains with continuous delays first, ``qat_ramp`` (fraction) then
grows the step from fine to full, ``qat_rounding`` 'stochastic' rounds
stochastically in training minibatches ('stochastic-warmup': during the
warm-up, stochastically onto the grid), ``qat_delay_lr`` scales the delays'
learning rate from the first epoch on the grid. ``learn`` names the parameter kinds
that are trained: ``weight``, the delay kinds ``axonal``, ``dendritic``,
``synaptic`` and the time constants ``tau_m``, ``tau_s``. ``rule`` chooses what computes the
updates: the exact EventProp gradient (None or ``"eventprop"``, the default) or the online
three-factor rule (``"three-factor"``, :mod:`neurodelay.plasticity`; it updates weights and
synaptic / axonal delays) with its ``pseudo_derivative``, ``sigma``, ``feedback`` and
``feedback_seed`` (None: the rule's defaults; the feedback seed defaults to ``seed``).
"""

from __future__ import annotations

import json
import numbers
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..delays import DELAY_KINDS

__all__ = ["RunConfig", "load_config_file", "LEARNABLE", "RULES"]

LEARNABLE = ("weight",) + DELAY_KINDS + ("tau_m", "tau_s")
#: rounding of delays in training minibatches: nearest grid point; stochastic on the grid; stochastic onto
#: the grid during the continuous warm-up, nearest from the grid on
QAT_ROUNDING = ("nearest", "stochastic", "stochastic-warmup")
#: what computes the updates: exact gradients (EventProp) or the online three-factor rule
RULES = ("eventprop", "three-factor")


@dataclass
class RunConfig:
    """Everything that defines a training run (see the module docstring; None = the task's default)."""

    task: str = "yinyang"
    hidden: int | None = None              # hidden neurons
    learn: tuple | None = None             # parameter kinds to train
    epochs: int | None = None
    batch_size: int | None = None
    seed: int = 0
    lr: float | None = None                # weights
    lr_delay: float | None = None          # s per step
    lr_tau: float | None = None            # relative change per step (log space)
    lr_by: dict = field(default_factory=dict)        # {key name or kind: lr}, overrides the three above
    schedule: dict = field(default_factory=dict)     # Schedule fields (kind, gamma, step_size, ...)
    schedule_by: dict = field(default_factory=dict)  # {key name or kind: Schedule fields}, overrides schedule
    clip_norm: float | None = None
    shared_moment: tuple | None = None     # kinds / key names whose Adam second moment is shared per key
    d_max: float | None = None             # largest delay, s
    delay_mode: str = "clip"               # 'clip' or 'sigmoid'
    delay_init: dict = field(default_factory=dict)   # scheme, low, high (s)
    n_train: int | None = None             # use only the first n trials of each split (None: all)
    n_validation: int | None = None
    n_test: int | None = None
    patience: int | None = None            # early stopping (epochs without validation improvement)
    quantise: float | None = None          # evaluate with delays rounded to this grid, s
    delay_step: float | None = None        # train the delays on this grid, s (quantisation-aware)
    delay_bits: int | None = None          # or: train them in this many bits over [0, d_max]
    qat_warmup: float | None = None        # fraction of the epochs with continuous delays before the grid
    qat_ramp: float | None = None          # fraction of the epochs over which the grid step grows to full
    qat_rounding: str | None = None        # QAT_ROUNDING (training minibatches only)
    qat_delay_lr: float | None = None      # the delays' learning rate x this once they are on the grid
    task_options: dict = field(default_factory=dict)   # passed to the task generator
    model_options: dict = field(default_factory=dict)  # passed to the task's network builder
    rule: str | None = None                # None / 'eventprop' (exact gradients) or 'three-factor'
    pseudo_derivative: str | None = None   # three-factor: 'gaussian' (default) or 'exact'
    sigma: float | None = None             # three-factor: surrogate width / theta (default 0.3 or the recipe's)
    feedback: str | None = None            # three-factor: 'symmetric' (default) or 'random'
    feedback_seed: int | None = None       # three-factor: seed of random feedback (default: seed)

    def __post_init__(self):
        if not isinstance(self.task, str):
            raise ValueError(f"task must be a task name, got {self.task!r}")
        for name in ("lr_by", "schedule", "delay_init", "task_options", "model_options"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(f"{name} must be a table (dict) of settings, got {getattr(self, name)!r}")
        for key, value in self.lr_by.items():
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
                raise ValueError(f"lr_by[{key!r}] must be a number > 0, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if self.learn is not None and not isinstance(self.learn, (str, list, tuple)):
            raise ValueError(f"learn must be a list of parameter kinds, got {self.learn!r}")
        if isinstance(self.learn, str):
            self.learn = tuple(s.strip() for s in self.learn.split(",") if s.strip())
        if self.learn is not None:
            self.learn = tuple(self.learn)
            unknown = [k for k in self.learn if k not in LEARNABLE]
            if unknown:
                raise ValueError(f"cannot learn {unknown}; choose from {list(LEARNABLE)}")
            if not self.learn:
                raise ValueError("learn is empty: name at least one parameter kind to train")
        if self.shared_moment is not None:
            if isinstance(self.shared_moment, str) or not all(isinstance(k, str) for k in self.shared_moment):
                raise ValueError(f"shared_moment must be a list of kinds or key names, got {self.shared_moment!r}")
            self.shared_moment = tuple(self.shared_moment)
        if self.delay_mode not in ("clip", "sigmoid"):
            raise ValueError(f"delay_mode must be 'clip' or 'sigmoid', got {self.delay_mode!r}")
        for name in ("hidden", "epochs", "batch_size", "n_train", "n_validation", "n_test", "patience",
                     "delay_bits"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)
                                      or int(value) != value or value < 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("lr", "lr_delay", "lr_tau", "d_max", "quantise", "clip_norm", "delay_step"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)
                                      or not float(value) > 0 or value == float("inf")):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        for name in ("qat_warmup", "qat_ramp"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)
                                      or not 0 <= float(value) < 1):
                raise ValueError(f"{name} must be a fraction of the epochs in [0, 1), got {value!r}")
        value = self.qat_delay_lr
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)
                                  or not 0 <= float(value) < float("inf")):
            raise ValueError(f"qat_delay_lr must be a finite factor >= 0 (0: delays fixed on the grid), got {value!r}")
        if self.qat_rounding not in (None,) + QAT_ROUNDING:
            raise ValueError(f"qat_rounding must be one of {QAT_ROUNDING}, got {self.qat_rounding!r}")
        if self.rule is not None and self.rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {self.rule!r}")
        three = ("pseudo_derivative", "sigma", "feedback", "feedback_seed")
        if self.rule != "three-factor" and any(getattr(self, name) is not None for name in three):
            given = [name for name in three if getattr(self, name) is not None]
            raise ValueError(f"{', '.join(given)} set without rule='three-factor' (they are options of that rule)")
        if self.rule == "three-factor":
            from ..plasticity import ThreeFactorRule
            ThreeFactorRule({"a->b": "weight"}, **self.three_factor_options())  # one-line errors for bad options
        if self.delay_step is not None and self.delay_bits is not None:
            raise ValueError("give delay_step or delay_bits, not both (bits set the step to d_max / (2**bits - 1))")

    def three_factor_options(self) -> dict:
        """The options of the three-factor rule that are set (feedback_seed defaults to ``seed``)."""
        options = {name: getattr(self, name) for name in ("pseudo_derivative", "sigma", "feedback")
                   if getattr(self, name) is not None}
        options["feedback_seed"] = self.seed if self.feedback_seed is None else self.feedback_seed
        return options

    def to_dict(self) -> dict:
        d = asdict(self)
        d["learn"] = None if self.learn is None else list(self.learn)
        d["shared_moment"] = None if self.shared_moment is None else list(self.shared_moment)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown configuration key(s) {sorted(unknown)}; known: {sorted(names)}")
        return cls(**d)

    def merged(self, overrides: dict) -> "RunConfig":
        """Copy with the non-None entries of `overrides` replacing these values."""
        d = self.to_dict()
        d.update({k: v for k, v in overrides.items() if v is not None})
        return RunConfig.from_dict(d)

    def with_defaults(self, defaults: dict) -> "RunConfig":
        """Copy with None entries (and empty dicts) filled from `defaults`."""
        d = self.to_dict()
        for key, value in defaults.items():
            if d.get(key) is None or d.get(key) == {}:
                d[key] = value
        return RunConfig.from_dict(d)


def load_config_file(path) -> dict:
    """A configuration dict from a .json or .toml file (keys as in :class:`RunConfig`)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"configuration file {path} does not exist")
    text = path.read_text()
    if path.suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: invalid TOML ({exc})") from None
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: invalid JSON ({exc})") from None
    raise ValueError(f"{path}: configuration files must end in .json or .toml")
