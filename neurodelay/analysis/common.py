"""Helpers shared by the analysis modules: argument checks, provenance, spike-pattern generators and
the command line that the scripts in analyses/ open with.

Times are in seconds and rates in Hz throughout; Brian2 quantities are
accepted wherever a time or a rate is.
"""

from __future__ import annotations

import argparse
import numbers
import sys
from pathlib import Path

import numpy as np
import xarray as xr

from ..io import provenance
from ..spikes import SpikeTrains
from ..units import as_seconds

__all__ = ["check_int", "check_positive", "check_seconds", "check_rate", "check_grid", "rng_from",
           "with_provenance", "poisson_trains", "single_spike_patterns", "scale_parser", "scale_of"]


def check_int(value, name: str, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``; ValueError/TypeError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_positive(value, name: str, *, strictly: bool = True, shape: tuple = ()) -> np.ndarray | float:
    """A dimensionless number (or array of ``shape``) that must be > 0 (>= 0 when not ``strictly``)."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if shape == () and arr.ndim:
        raise ValueError(f"{name} must be a scalar, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if np.any(arr <= 0 if strictly else arr < 0):
        raise ValueError(f"{name} must be {'>' if strictly else '>='} 0, got {value!r}")
    return float(arr) if arr.ndim == 0 else arr


def check_seconds(value, name: str, *, strictly: bool = True) -> float:
    """A scalar time in seconds (float or Brian2 time), > 0 (>= 0 when not ``strictly``)."""
    return float(as_seconds(value, name, (), minimum=0.0, strictly=strictly))


def check_rate(value, name: str) -> float:
    """A rate in Hz (float or Brian2 quantity in Hz), >= 0."""
    if "brian2" in sys.modules:  # a Quantity exists only if the user imported brian2; never import it here
        from brian2 import Hz
        from brian2.units.fundamentalunits import Quantity, get_dimensions
        if isinstance(value, Quantity):
            if get_dimensions(value) != get_dimensions(Hz):
                raise ValueError(f"{name} must be a rate (Hz), got dimensions {get_dimensions(value)}")
            value = float(value / Hz)
    return check_positive(value, name, strictly=False)


def check_grid(values, name: str, *, dimension: str | None = None, minimum: float | None = None) -> np.ndarray:
    """A non-empty 1-d grid of finite values (times in s if ``dimension == "time"``)."""
    if dimension == "time":
        arr = np.atleast_1d(as_seconds(values, name, np.shape(values)))
    else:
        try:
            arr = np.atleast_1d(np.asarray(values, dtype=float))
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be numbers, got {values!r}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-d, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: give at least one value")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values")
    if minimum is not None and np.any(arr < minimum):
        raise ValueError(f"{name} must be >= {minimum}, got min {arr.min()}")
    return arr


def rng_from(seed) -> np.random.Generator:
    """A numpy Generator from an explicit integer seed (None is refused: analyses must be reproducible)."""
    if seed is None:
        raise ValueError("seed must be given (an integer): analyses take explicit seeds")
    if isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.default_rng(int(seed))


def with_provenance(obj: xr.Dataset | xr.DataArray, analysis: str, parameters: dict, seed=None,
                    engine: str = "events") -> xr.Dataset | xr.DataArray:
    """Attach provenance attributes (``analysis``, engine, version, time, parameters JSON, seed) to ``obj``."""
    obj.attrs.update(provenance(seed, parameters, engine))
    obj.attrs["analysis"] = analysis
    return obj


def poisson_trains(n_neurons: int, rate, duration, *, n_trials: int = 1, seed) -> SpikeTrains:
    """Independent homogeneous Poisson spike trains with off-grid times.

    Parameters
    ----------
    n_neurons : int
        Number of neurons (>= 1).
    rate : float or brian2 Quantity
        Rate of each neuron, Hz.
    duration : float or brian2 Quantity
        Length of each trial, s.
    n_trials : int
        Number of independent trials.
    seed : int
        Seed of the random generator.

    Returns
    -------
    SpikeTrains
        Spike times in s, sorted within each (trial, neuron).
    """
    n_neurons = check_int(n_neurons, "n_neurons")
    n_trials = check_int(n_trials, "n_trials")
    rate = check_rate(rate, "rate")
    duration = check_seconds(duration, "duration")
    rng = rng_from(seed)
    counts = rng.poisson(rate * duration, size=(n_trials, n_neurons))
    trial = np.repeat(np.repeat(np.arange(n_trials), n_neurons), counts.ravel())
    neuron = np.repeat(np.tile(np.arange(n_neurons), n_trials), counts.ravel())
    time = rng.uniform(0.0, duration, counts.sum())
    order = np.lexsort((time, neuron, trial))
    return SpikeTrains(trial[order], neuron[order], time[order], n_trials, n_neurons)


def single_spike_patterns(n_patterns: int, n_afferents: int, duration, *, seed) -> SpikeTrains:
    """Random spatio-temporal patterns: each afferent fires once at a uniform random time in [0, duration).

    This is the tempotron's pattern ensemble (Gütig & Sompolinsky 2006). Each
    pattern is one trial.

    Parameters
    ----------
    n_patterns : int
        Number of patterns (trials), >= 1.
    n_afferents : int
        Number of afferents (neurons), >= 1.
    duration : float or brian2 Quantity
        Pattern length T, s.
    seed : int
        Seed of the random generator.

    Returns
    -------
    SpikeTrains
        One spike per (pattern, afferent), times in s.
    """
    n_patterns = check_int(n_patterns, "n_patterns")
    n_afferents = check_int(n_afferents, "n_afferents")
    duration = check_seconds(duration, "duration")
    rng = rng_from(seed)
    time = rng.uniform(0.0, duration, (n_patterns, n_afferents)).ravel()
    trial = np.repeat(np.arange(n_patterns), n_afferents)
    neuron = np.tile(np.arange(n_afferents), n_patterns)
    return SpikeTrains(trial, neuron, time, n_patterns, n_afferents)


def scale_parser(description: str, default_out: Path, *, quick: str, full: str,
                 between: tuple = ()) -> argparse.ArgumentParser:
    """The command line an analysis script opens with: ``--out`` (the result file, default
    `default_out`, a file of analyses/results/), the arguments `between` (``(flags, options)`` pairs
    for ``add_argument``), then the scale: ``--quick`` or ``--full`` (one at most; help texts `quick`,
    `full`), which :func:`scale_of` reads."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, default=default_out,
                        help=f"result file (default analyses/results/{Path(default_out).name})")
    for flags, options in between:
        parser.add_argument(*flags, **options)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help=quick)
    group.add_argument("--full", action="store_true", help=full)
    return parser


def scale_of(args: argparse.Namespace) -> str:
    """The scale that :func:`scale_parser`'s arguments chose: "quick", "full" or "default"."""
    return "quick" if args.quick else ("full" if args.full else "default")
