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
    other than 'log' (see the module docstring).
    """

    mode: str = "none"
    low: float = -np.inf
    high: float = np.inf
    step: float = 0.0

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
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        object.__setattr__(self, "step", step)

    @property
    def levels(self) -> int:
        """Number of grid values in [low, high] (0 without a grid)."""
        if not self.step:
            return 0
        return int(np.floor((self.high - self.low) / self.step * (1 + 1e-12))) + 1

    def on_grid(self, value: np.ndarray) -> np.ndarray:
        """`value` rounded to the nearest grid point inside [low, high] (unchanged without a grid)."""
        value = np.asarray(value, dtype=float)
        if not self.step:
            return value
        k = np.clip(np.round((value - self.low) / self.step), 0, self.levels - 1)
        return self.low + k * self.step

    def value(self, raw: np.ndarray) -> np.ndarray:
        """The parameter value the network sees, from the optimiser's raw value."""
        raw = np.asarray(raw, dtype=float)
        if self.mode == "sigmoid":
            value = self.low + (self.high - self.low) * _sigmoid(raw)
        elif self.mode == "log":
            return np.exp(raw)
        else:
            value = raw.copy()
        return self.on_grid(value) if self.step else value

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
                   tau_bounds: tuple[float, float] = (1e-3, 1.0), delay_step: float | None = None) -> Constraint:
    """Default constraint of a parameter key: delays in [0, d_max] s (clip or sigmoid; on a grid of
    `delay_step` s if given: quantisation-aware training), time constants log-parametrised in
    ``tau_bounds`` s, thresholds > 0, anything else unbounded."""
    kind = param_kind(key)
    if kind in DELAY_KINDS:
        if d_max is None or not d_max > 0:
            raise ValueError(f"{key}: learning delays needs a maximum delay d_max > 0 s, got {d_max}")
        return Constraint(delay_mode, 0.0, float(d_max), float(delay_step or 0.0))
    if kind in ("tau_m", "tau_s"):
        return Constraint("log", *tau_bounds)
    if kind == "theta":
        return Constraint("clip", 1e-6, np.inf)
    return UNBOUNDED


def quantise_delays(values: dict, step: float) -> dict:
    """Copy of ``{key: array}`` with every delay kind rounded to multiples of `step` seconds (others copied)."""
    return {k: (quantise(v, step) if param_kind(k) in DELAY_KINDS else np.asarray(v, dtype=float).copy())
            for k, v in values.items()}
