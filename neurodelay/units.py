"""Conversion of user input (plain numbers or Brian2 quantities) to checked float arrays.

Inside neurodelay every time is a float in seconds and every voltage-like
quantity (membrane potential, threshold, reset, weight = jump of the synaptic
current) is a plain float. At the API surface Brian2 quantities are accepted:
times must have the dimension of seconds, voltages may be dimensionless or in
volts (then they are converted to volts).
"""

from __future__ import annotations

import sys

import numpy as np

__all__ = ["as_seconds", "as_voltage", "as_array", "has_voltage_units"]


def _is_quantity(value) -> bool:
    """True for a Brian2 Quantity. Never imports brian2 (importing it replaces ``sys.excepthook``):
    a Quantity can only exist once the user has imported brian2."""
    if "brian2" not in sys.modules:
        return False
    from brian2.units.fundamentalunits import Quantity
    return isinstance(value, Quantity)


def _plain(value, name: str) -> np.ndarray:
    """`value` as a float ndarray; ValueError naming `name` for what is not numeric (None, text, objects)."""
    if value is None:
        raise ValueError(f"{name} is None; give a number or an array of numbers")
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numeric, got {type(value).__name__} {_short(value)}") from None
    return arr


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def has_voltage_units(value) -> bool:
    """True when `value` is a Brian2 quantity with the dimension of a voltage (volts)."""
    if not _is_quantity(value):
        return False
    from brian2 import volt
    from brian2.units.fundamentalunits import get_dimensions
    return get_dimensions(value) == get_dimensions(volt)


def _strip_units(value, name: str, dimension: str):
    """Return (plain ndarray, had_units). dimension is 'time' or 'voltage'."""
    if not _is_quantity(value):
        return _plain(value, name), False
    from brian2.units.fundamentalunits import get_dimensions, DIMENSIONLESS
    from brian2 import second, volt
    dims = get_dimensions(value)
    if dimension == "time":
        if dims != get_dimensions(second):
            raise ValueError(f"{name} must be a time (seconds), got a quantity with dimensions {dims}")
        return np.asarray(value / second, dtype=float), True
    if dims == DIMENSIONLESS:
        return np.asarray(value, dtype=float), True
    if dims != get_dimensions(volt):
        raise ValueError(f"{name} must be a voltage or dimensionless, got a quantity with dimensions {dims}")
    return np.asarray(value / volt, dtype=float), True


def as_array(value, name: str, shape: tuple[int, ...], *, dimension: str,
             minimum: float | None = None, strictly: bool = False) -> np.ndarray:
    """Broadcast value (scalar or array, optionally a Brian2 quantity) to shape.

    Raises ValueError naming `name` for wrong shapes, non-finite values or values
    below `minimum` (or equal to it when `strictly`).
    """
    arr, _ = _strip_units(value, name, dimension)
    if arr.ndim > 0 and arr.shape != tuple(shape):
        if arr.size == 1:
            arr = arr.reshape(())
        else:
            raise ValueError(f"{name} has shape {arr.shape}, expected a scalar or shape {tuple(shape)}")
    out = np.array(np.broadcast_to(arr, shape), dtype=float)
    if not np.all(np.isfinite(out)):
        bad = np.flatnonzero(~np.isfinite(out.ravel()))[:5]
        raise ValueError(f"{name} contains non-finite values (NaN or inf) at flat index {bad.tolist()}")
    if minimum is not None:
        bad_mask = out <= minimum if strictly else out < minimum
        if np.any(bad_mask):
            bad = np.flatnonzero(bad_mask.ravel())[:5]
            rel = ">" if strictly else ">="
            raise ValueError(f"{name} must be {rel} {minimum}; offending flat indices {bad.tolist()}, "
                             f"values {out.ravel()[bad].tolist()}")
    return out


def as_seconds(value, name: str, shape: tuple[int, ...] = (), **kw) -> np.ndarray:
    """Times in seconds (float array of `shape`); Brian2 quantities must be times."""
    return as_array(value, name, shape, dimension="time", **kw)


def as_voltage(value, name: str, shape: tuple[int, ...] = (), **kw) -> np.ndarray:
    """Voltage-like values (dimensionless, or Brian2 volts converted to volts)."""
    return as_array(value, name, shape, dimension="voltage", **kw)
