"""Bounds on trained parameters: clipping or a sigmoid parametrisation.

The optimiser works on *raw* values; the network receives *values*:

* ``clip``: value = raw, and after each update raw is clipped to [low, high]
  (delays: [0, d_max] seconds);
* ``sigmoid``: value = low + (high - low) * sigmoid(raw), so every raw value
  is allowed and the bounds are never reached (d = d_max * sigmoid(u));
* ``log``: value = exp(raw), raw clipped to [log low, log high] after each
  update (time constants: a learning rate is then a relative change per
  step, the same for a 5 ms and a 200 ms time constant);
* ``none``: value = raw, unbounded.

Delays must stay >= 0; quantisation of trained delays to a hardware grid
after training (for evaluation) uses :func:`neurodelay.delays.quantise`.

**Quantisation-aware training** (hardware delays: a few bits over a limited
range). A constraint with a grid ``step`` > 0 (seconds for delays) hands the
network only grid values: value = low + step * clip(round((v - low) / step),
0, n_max), v being the value of the parametrisation above and n_max =
floor((high - low) / step) (so every value lies on the grid *and* inside
[low, high]; with ``bits`` b, use :func:`grid_step`: step = (high - low) /
(2**b - 1), 2**b levels from low to high). The optimiser keeps updating the
continuous raw value, and the gradient passes the rounding unchanged
(straight-through estimator, Bengio et al. 2013): dL/draw is the exact
gradient at the quantised network, chained through the continuous
parametrisation only. Small steps accumulate in raw until they move a delay
to the next grid point, which is why plain rounding after training loses
accuracy and this does not have to.

**When the grid applies** (epochs, 0-based, counted by the trainer):

* ``grid_from`` = E: epochs before E see the continuous values (a warm-up
  without rounding noise), epochs from E on see the grid; the raw value is
  the continuous "shadow" throughout, so the switch rounds it once and
  training carries on from there;
* ``grid_ramp`` = R: progressive quantisation, the step grows linearly from
  step / (R + 1) in epoch E to the full step from epoch E + R on;
* ``stochastic``: during training minibatches a value between two grid
  points k and k + 1 goes to k + 1 with probability equal to its fractional
  part (unbiased stochastic rounding, Gupta et al. 2015), drawn from the
  trainer's generator; validation, test and checkpoints use the nearest
  grid point;
* ``stochastic_before`` = S: training minibatches of epochs before S see
  the value stochastically rounded onto the final grid (even in a warm-up:
  the network learns under the rounding noise it will meet while the
  optimiser's shadow value moves as without a grid; a warm-up of this kind
  then rounds to the nearest point at ``grid_from``).

:meth:`Constraint.value` without an epoch (evaluation, resumed or loaded
networks) is always the final grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..delays import DELAY_KINDS, quantise
from .optim import param_kind

__all__ = ["Constraint", "constraint_for", "quantise_delays", "grid_step", "UNBOUNDED"]


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=float)))


@dataclass(frozen=True)
class Constraint:
    """How one parameter is bounded: mode 'none', 'clip', 'sigmoid' or 'log' on [low, high].

    step: grid step of quantisation-aware training (parameter units, seconds
    for delays; 0: continuous values). A grid needs finite bounds and a mode
    other than 'log' (see the module docstring). grid_from: first epoch
    (0-based) on the grid; grid_ramp: epochs over which the step grows to
    `step` (progressive quantisation); stochastic: stochastic rounding in
    training minibatches; stochastic_before: stochastic rounding onto the final
    grid in the training minibatches of earlier epochs (warm-up included).
    """

    mode: str = "none"
    low: float = -np.inf
    high: float = np.inf
    step: float = 0.0
    grid_from: int = 0
    grid_ramp: int = 0
    stochastic: bool = False
    stochastic_before: int = 0

    MODES = ("none", "clip", "sigmoid", "log")

    def __post_init__(self):
        if self.mode not in self.MODES:
            raise ValueError(f"unknown constraint mode {self.mode!r}; choose one of {self.MODES}")
        low, high = float(self.low), float(self.high)
        if not low < high:
            raise ValueError(f"constraint needs low < high, got [{low}, {high}]")
        if self.mode == "sigmoid" and not (np.isfinite(low) and np.isfinite(high)):
            raise ValueError(f"the sigmoid parametrisation needs finite bounds, got [{low}, {high}]")
        if self.mode == "log" and not low > 0:
            raise ValueError(f"the log parametrisation needs low > 0, got [{low}, {high}]")
        step = float(self.step)
        if not (np.isfinite(step) and step >= 0):
            raise ValueError(f"constraint step must be a finite number >= 0, got {self.step}")
        if step > 0:
            if not (np.isfinite(low) and np.isfinite(high)):
                raise ValueError(f"a quantisation grid (step {step}) needs finite bounds, got [{low}, {high}]")
            if self.mode in ("none", "log"):
                raise ValueError(f"a quantisation grid needs mode 'clip' or 'sigmoid', got {self.mode!r}")
            if step > high - low:
                raise ValueError(f"constraint step {step} is larger than the range [{low}, {high}]")
        for name in ("grid_from", "grid_ramp", "stochastic_before"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"constraint {name} must be an integer number of epochs >= 0, got {v!r}")
            if v and not step:
                raise ValueError(f"constraint {name}={v} needs a quantisation grid (step > 0)")
        if not isinstance(self.stochastic, (bool, np.bool_)):
            raise ValueError(f"constraint stochastic must be True or False, got {self.stochastic!r}")
        if self.stochastic and not step:
            raise ValueError("stochastic rounding needs a quantisation grid (step > 0)")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        object.__setattr__(self, "step", step)
        object.__setattr__(self, "grid_from", int(self.grid_from))
        object.__setattr__(self, "grid_ramp", int(self.grid_ramp))
        object.__setattr__(self, "stochastic", bool(self.stochastic))
        object.__setattr__(self, "stochastic_before", int(self.stochastic_before))

    @property
    def levels(self) -> int:
        """Number of grid values in [low, high] (0 without a grid)."""
        return self._levels(self.step)

    def _levels(self, step: float) -> int:
        if not step:
            return 0
        return int(np.floor((self.high - self.low) / step * (1 + 1e-12))) + 1

    @property
    def final_epoch(self) -> int:
        """First epoch (0-based) in which the network sees the final grid (0 without a grid)."""
        return self.grid_from + self.grid_ramp if self.step else 0

    def step_at(self, epoch: int | None = None) -> float:
        """Grid step in `epoch` (0-based; None: the final grid): 0 before ``grid_from``, growing over
        ``grid_ramp`` epochs, then ``step``."""
        if not self.step or epoch is None or epoch >= self.final_epoch:
            return self.step
        if epoch < self.grid_from:
            return 0.0
        return self.step * (epoch - self.grid_from + 1) / (self.grid_ramp + 1)

    def on_grid(self, value: np.ndarray, step: float | None = None, rng: np.random.Generator | None = None
                ) -> np.ndarray:
        """`value` rounded to the nearest grid point inside [low, high] (unchanged without a grid).

        step: grid step (default ``self.step``); rng: round stochastically instead (up with probability
        equal to the fractional part; values of a finished array are independent draws)."""
        value = np.asarray(value, dtype=float)
        step = self.step if step is None else float(step)
        if not step:
            return value
        x = (value - self.low) / step
        if rng is None:
            k = np.round(x)
        else:
            k = np.floor(x)
            k = k + (rng.random(x.shape) < (x - k))
        return self.low + np.clip(k, 0, self._levels(step) - 1) * step

    def continuous(self, raw: np.ndarray) -> np.ndarray:
        """The value of the parametrisation before any rounding (the straight-through "shadow" value)."""
        raw = np.asarray(raw, dtype=float)
        if self.mode == "sigmoid":
            return self.low + (self.high - self.low) * _sigmoid(raw)
        if self.mode == "log":
            return np.exp(raw)
        return raw.copy()

    def value(self, raw: np.ndarray, epoch: int | None = None, rng: np.random.Generator | None = None
              ) -> np.ndarray:
        """The parameter value the network sees, from the optimiser's raw value.

        epoch: training epoch (0-based) for the grid schedule (None: the final grid); rng: the trainer's
        generator in training minibatches (used only with ``stochastic`` rounding)."""
        value = self.continuous(raw)
        if not self.step:
            return value
        if rng is not None and epoch is not None and epoch < self.stochastic_before:
            return self.on_grid(value, self.step, rng)
        return self.on_grid(value, self.step_at(epoch), rng if self.stochastic else None)

    def raw(self, value: np.ndarray, name: str = "parameter") -> np.ndarray:
        """The raw value for a parameter value (inverse of :meth:`value`; values outside the bounds are refused)."""
        value = np.asarray(value, dtype=float)
        if self.mode == "none":
            return value.copy()
        if np.any(value < self.low) or np.any(value > self.high):
            raise ValueError(f"{name}: initial values must lie in [{self.low}, {self.high}], got "
                             f"[{value.min()}, {value.max()}]")
        if self.mode == "clip":
            return value.copy()
        if self.mode == "log":
            return np.log(value)
        # keep strictly inside so the logit is finite
        span = self.high - self.low
        frac = np.clip((value - self.low) / span, 1e-6, 1.0 - 1e-6)
        return np.log(frac) - np.log1p(-frac)

    def raw_gradient(self, raw: np.ndarray, grad_value: np.ndarray) -> np.ndarray:
        """dL/draw from dL/dvalue (chain rule through the parametrisation; a grid passes it unchanged)."""
        grad_value = np.asarray(grad_value, dtype=float)
        if self.mode == "log":
            return grad_value * np.exp(raw)
        if self.mode != "sigmoid":
            return grad_value
        s = _sigmoid(raw)
        return grad_value * (self.high - self.low) * s * (1.0 - s)

    def project(self, raw: np.ndarray) -> np.ndarray:
        """Raw value after an update (clipped into the bounds for mode 'clip')."""
        if self.mode == "clip":
            return np.clip(raw, self.low, self.high)
        if self.mode == "log":
            return np.clip(raw, np.log(self.low), np.log(self.high))
        return np.asarray(raw, dtype=float)

    def to_dict(self) -> dict:
        d = dict(mode=self.mode, low=self.low, high=self.high)
        if self.step:
            d["step"] = self.step
        for name in ("grid_from", "grid_ramp", "stochastic", "stochastic_before"):
            if getattr(self, name):
                d[name] = getattr(self, name)
        return d


UNBOUNDED = Constraint()


def grid_step(d_max: float, bits: int) -> float:
    """Grid step (s) of delays stored in `bits` bits over [0, d_max] s: d_max / (2**bits - 1)."""
    if isinstance(bits, bool) or int(bits) != bits or bits < 1:
        raise ValueError(f"bits must be a positive integer, got {bits!r}")
    if not float(d_max) > 0:
        raise ValueError(f"d_max must be > 0 s, got {d_max}")
    return float(d_max) / (2 ** int(bits) - 1)


def constraint_for(key, d_max: float | None, delay_mode: str = "clip",
                   tau_bounds: tuple[float, float] = (1e-3, 1.0), delay_step: float | None = None,
                   grid_from: int = 0, grid_ramp: int = 0, stochastic: bool = False,
                   stochastic_before: int = 0) -> Constraint:
    """Default constraint of a parameter key: delays in [0, d_max] s (clip or sigmoid; on a grid of
    `delay_step` s if given: quantisation-aware training, from epoch `grid_from`, over `grid_ramp`
    epochs, with `stochastic` rounding: see :class:`Constraint`), time constants log-parametrised in
    ``tau_bounds`` s, thresholds > 0, anything else unbounded."""
    kind = param_kind(key)
    if kind in DELAY_KINDS:
        if d_max is None or not d_max > 0:
            raise ValueError(f"{key}: learning delays needs a maximum delay d_max > 0 s, got {d_max}")
        if not delay_step:
            return Constraint(delay_mode, 0.0, float(d_max))
        return Constraint(delay_mode, 0.0, float(d_max), float(delay_step), int(grid_from), int(grid_ramp),
                          bool(stochastic), int(stochastic_before))
    if kind in ("tau_m", "tau_s"):
        return Constraint("log", *tau_bounds)
    if kind == "theta":
        return Constraint("clip", 1e-6, np.inf)
    return UNBOUNDED


def quantise_delays(values: dict, step: float) -> dict:
    """Copy of ``{key: array}`` with every delay kind rounded to multiples of `step` seconds (others copied)."""
    return {k: (quantise(v, step) if param_kind(k) in DELAY_KINDS else np.asarray(v, dtype=float).copy())
            for k, v in values.items()}
