"""Initial weights and delays for trained networks (explicit numpy Generators).

Schemes used by the papers this project follows:

* ``normal``: weights ~ N(mean, std) per projection. Göltz et al. (Yin-Yang,
  time-to-first-spike) draw every layer from a normal distribution with a
  positive mean so that most neurons spike at the start (their config:
  hidden N(1.5, 0.8), output N(0.5, 0.8) in units of the threshold for
  tau_m = tau_s); :func:`psp_peak` rescales such values to other tau ratios.
* ``fan_in``: weights ~ N(mean, std = gain / sqrt(n_pre)), the usual
  fan-in scaling (its spread shrinks with the number of inputs). mlGeNN's
  EventProp examples draw each layer from a normal distribution with a
  given mean and sd; use ``normal`` with their values for those.

Delays: ``uniform`` on [low, high] s, ``constant``, or ``zero``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["init_weights", "init_delays", "psp_peak", "WEIGHT_SCHEMES", "DELAY_SCHEMES"]

WEIGHT_SCHEMES = ("normal", "fan_in", "constant")
DELAY_SCHEMES = ("zero", "constant", "uniform")


def psp_peak(tau_m: float, tau_s: float) -> float:
    """Peak of V after a unit jump of I (V = I = 0 before): the height of one PSP per unit weight."""
    tau_m, tau_s = float(tau_m), float(tau_s)
    if abs(tau_m - tau_s) <= 1e-12 * tau_m:
        return math.exp(-1.0)
    t_peak = tau_m * tau_s / (tau_m - tau_s) * math.log(tau_m / tau_s)
    k = tau_s / (tau_m - tau_s)
    return k * (math.exp(-t_peak / tau_m) - math.exp(-t_peak / tau_s))


def init_weights(scheme: str, n_pre: int, n_syn: int, rng: np.random.Generator, *, mean: float = 0.0,
                 std: float = 1.0, gain: float = 1.0) -> np.ndarray:
    """``n_syn`` initial weights (dimensionless, in units of the threshold jump of I).

    normal: N(mean, std); fan_in: N(mean, gain / sqrt(n_pre)); constant: all `mean`.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator, got {type(rng).__name__}")
    if scheme == "normal":
        if std < 0:
            raise ValueError(f"weight std must be >= 0, got {std}")
        return rng.normal(mean, std, n_syn)
    if scheme == "fan_in":
        if n_pre < 1:
            raise ValueError(f"fan_in initialisation needs n_pre >= 1, got {n_pre}")
        return rng.normal(mean, gain / math.sqrt(n_pre), n_syn)
    if scheme == "constant":
        return np.full(n_syn, float(mean))
    raise ValueError(f"unknown weight initialisation {scheme!r}; choose one of {WEIGHT_SCHEMES}")


def init_delays(scheme: str, n: int, rng: np.random.Generator, *, low: float = 0.0,
                high: float = 0.0) -> np.ndarray:
    """``n`` initial delays in seconds: zero, constant (= low) or uniform on [low, high]."""
    if low < 0 or high < 0:
        raise ValueError(f"delays must be >= 0 s, got low={low}, high={high}")
    if scheme == "zero":
        return np.zeros(n)
    if scheme == "constant":
        return np.full(n, float(low))
    if scheme == "uniform":
        if high < low:
            raise ValueError(f"uniform delays need high >= low, got [{low}, {high}]")
        return rng.uniform(low, high, n)
    raise ValueError(f"unknown delay initialisation {scheme!r}; choose one of {DELAY_SCHEMES}")
