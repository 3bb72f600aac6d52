"""Adam with a learning rate and a schedule per parameter kind.

Parameters are plain float arrays in a dict keyed like the gradients of
:func:`neurodelay.gradients.loss_and_grad`: tuples such as
``("input->hidden", "weight")`` or ``("hidden", "tau_m")``. A key's *name* is
its parts joined by dots (``"input->hidden.weight"``, as in
:func:`neurodelay.gradients.gradients_to_dataset`), its *kind* the second
part (``weight``, ``axonal``, ``dendritic``, ``synaptic``, ``tau_m``,
``tau_s``, ``theta``). Delays typically need a different learning rate from
weights (they are in seconds while weights are dimensionless), so learning
rates and schedules are looked up by key name first, then by kind, then the
default.

The optimiser state (step count, first and second moments per key) is a plain
dict of arrays so that checkpoints can store it losslessly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Schedule", "Adam", "param_kind", "key_name"]


def key_name(key) -> str:
    """A parameter key as one string: tuple parts joined by dots (strings are returned as they are)."""
    return ".".join(key) if isinstance(key, tuple) else str(key)


def param_kind(key) -> str:
    """The kind of a parameter key: the second part of a tuple key, the text after the last dot of a name."""
    if isinstance(key, tuple):
        if len(key) < 2:
            raise ValueError(f"a parameter key has at least two parts (target, kind), got {key!r}")
        return key[1]
    return str(key).rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Schedule:
    """Learning-rate multiplier as a function of the epoch (0-based).

    kind: ``constant``; ``step`` (times ``gamma`` every ``step_size`` epochs,
    PyTorch's StepLR); ``exponential`` (``gamma ** epoch``); ``cosine``
    (from 1 down to ``floor`` over ``epochs`` epochs). ``warmup``: the multiplier is 0 during the first
    ``warmup`` epochs (the parameter is frozen), then follows the schedule counted from epoch ``warmup``.
    From epoch ``drop_at`` on the multiplier is further scaled by ``drop_factor`` (e.g. the
    delays' learning rate once quantisation-aware training puts them on a grid).
    """

    kind: str = "constant"
    gamma: float = 0.95
    step_size: int = 20
    epochs: int = 100
    floor: float = 0.0
    warmup: int = 0
    drop_at: int = 0
    drop_factor: float = 1.0

    KINDS = ("constant", "step", "exponential", "cosine")

    def __post_init__(self):
        if self.kind not in self.KINDS:
            raise ValueError(f"unknown learning-rate schedule {self.kind!r}; choose one of {self.KINDS}")
        if not self.gamma > 0:
            raise ValueError(f"schedule gamma must be > 0, got {self.gamma}")
        if isinstance(self.warmup, bool) or int(self.warmup) != self.warmup or self.warmup < 0:
            raise ValueError(f"schedule warmup must be an integer number of epochs >= 0, got {self.warmup!r}")
        if int(self.step_size) < 1 or int(self.epochs) < 1:
            raise ValueError(f"schedule step_size and epochs must be >= 1, got {self.step_size}, {self.epochs}")
        if int(self.drop_at) < 0 or not (np.isfinite(self.drop_factor) and self.drop_factor >= 0):
            raise ValueError(f"schedule drop_at must be >= 0 and drop_factor a finite number >= 0, got "
                             f"{self.drop_at}, {self.drop_factor}")

    def factor(self, epoch: int) -> float:
        """Multiplier of the base learning rate during `epoch` (0-based)."""
        if epoch < int(self.warmup):
            return 0.0
        if self.drop_factor != 1.0 and epoch >= int(self.drop_at):
            return self.drop_factor * self._factor(epoch - int(self.warmup))
        return self._factor(epoch - int(self.warmup))

    def _factor(self, epoch: int) -> float:
        if self.kind == "constant":
            return 1.0
        if self.kind == "step":
            return self.gamma ** (epoch // int(self.step_size))
        if self.kind == "exponential":
            return self.gamma ** epoch
        progress = min(epoch / int(self.epochs), 1.0)
        return self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def to_dict(self) -> dict:
        d = dict(kind=self.kind, gamma=self.gamma, step_size=int(self.step_size), epochs=int(self.epochs),
                 floor=self.floor, warmup=int(self.warmup))
        if self.drop_factor != 1.0:
            d.update(drop_at=int(self.drop_at), drop_factor=float(self.drop_factor))
        return d

    @classmethod
    def from_dict(cls, d: dict | None) -> "Schedule":
        return cls(**(d or {}))


@dataclass
class Adam:
    """Adam (Kingma & Ba) with per-key / per-kind learning rates and schedules.

    lr: default learning rate; lr_by: ``{key name or kind: learning rate}``
    (a key name wins over its kind); schedule / schedule_by likewise;
    clip_norm: if set, each key's gradient is rescaled to at most this
    Euclidean norm before the update (Göltz et al. clip per layer);
    shared_moment: key names or kinds whose second moment is *shared* across the entries of a key (the
    mean of g^2 over the array), so that every entry moves in proportion to its gradient (Adam's
    per-entry normalisation otherwise moves every entry by about the learning rate per step, however
    small its gradient).
    """

    lr: float = 1e-3
    lr_by: dict = field(default_factory=dict)
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    schedule: Schedule = field(default_factory=Schedule)
    schedule_by: dict = field(default_factory=dict)
    clip_norm: float | None = None
    shared_moment: tuple = ()
    state: dict = field(default_factory=dict)   # "step", "m:<key name>", "v:<key name>"

    def __post_init__(self):
        for name, value in [("lr", self.lr), *((f"lr_by[{k!r}]", v) for k, v in self.lr_by.items())]:
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"learning rate {name} must be a finite number >= 0, got {value}")
        b1, b2 = self.betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"Adam betas must lie in [0, 1), got {self.betas}")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise ValueError(f"clip_norm must be > 0 or None, got {self.clip_norm}")
        self.shared_moment = tuple(str(k) for k in self.shared_moment)
        self.schedule_by = {k: (v if isinstance(v, Schedule) else Schedule.from_dict(v))
                            for k, v in self.schedule_by.items()}
        if not isinstance(self.schedule, Schedule):
            self.schedule = Schedule.from_dict(self.schedule)
        self.state.setdefault("step", 0)

    # ---- learning rates ----------------------------------------------------------
    def base_lr(self, key) -> float:
        """Learning rate of `key` before the schedule (key name, then its kind, then the default)."""
        return float(self.lr_by.get(key_name(key), self.lr_by.get(param_kind(key), self.lr)))

    def schedule_of(self, key) -> Schedule:
        return self.schedule_by.get(key_name(key), self.schedule_by.get(param_kind(key), self.schedule))

    def learning_rate(self, key, epoch: int) -> float:
        """Learning rate of `key` during `epoch` (0-based)."""
        return self.base_lr(key) * self.schedule_of(key).factor(epoch)

    # ---- update ------------------------------------------------------------------
    def step(self, params: dict, grads: dict, epoch: int) -> dict:
        """One Adam step: returns new parameter arrays for every key of `grads` (others unchanged).

        params and grads: ``{key: float array}`` of equal shapes; epoch selects
        the scheduled learning rate.
        """
        unknown = set(grads) - set(params)
        if unknown:
            raise KeyError(f"gradients for unknown parameters {sorted(unknown)}")
        self.state["step"] = t = int(self.state["step"]) + 1
        b1, b2 = self.betas
        out = dict(params)
        for key in sorted(grads, key=key_name):
            g = np.asarray(grads[key], dtype=float)
            p = np.asarray(params[key], dtype=float)
            if g.shape != p.shape:
                raise ValueError(f"gradient of {key!r} has shape {g.shape}, the parameter {p.shape}")
            if not np.all(np.isfinite(g)):
                raise FloatingPointError(f"gradient of {key!r} contains NaN or inf")
            if self.clip_norm is not None:
                norm = float(np.sqrt(np.sum(g * g)))
                if norm > self.clip_norm:
                    g = g * (self.clip_norm / norm)
            name = key_name(key)
            m = self.state.get(f"m:{name}")
            v = self.state.get(f"v:{name}")
            m = (1 - b1) * g if m is None else b1 * m + (1 - b1) * g
            g2 = g * g
            if name in self.shared_moment or param_kind(key) in self.shared_moment:
                g2 = np.full_like(g2, np.mean(g2) if g2.size else 0.0)
            v = (1 - b2) * g2 if v is None else b2 * v + (1 - b2) * g2
            self.state[f"m:{name}"], self.state[f"v:{name}"] = m, v
            m_hat = m / (1 - b1 ** t)
            v_hat = v / (1 - b2 ** t)
            out[key] = p - self.learning_rate(key, epoch) * m_hat / (np.sqrt(v_hat) + self.eps)
        return out

    # ---- (de)serialisation -------------------------------------------------------
    def config(self) -> dict:
        """Hyper-parameters as a JSON-able dict (the state is stored separately)."""
        return dict(lr=self.lr, lr_by=dict(self.lr_by), betas=list(self.betas), eps=self.eps,
                    schedule=self.schedule.to_dict(),
                    schedule_by={k: s.to_dict() for k, s in self.schedule_by.items()},
                    clip_norm=self.clip_norm, shared_moment=list(self.shared_moment))

    @classmethod
    def from_config(cls, config: dict, state: dict | None = None) -> "Adam":
        cfg = dict(config)
        cfg["betas"] = tuple(cfg.get("betas", (0.9, 0.999)))
        return cls(**cfg, state=dict(state or {}))
