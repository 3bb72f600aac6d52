"""The exact event-driven engine: continuous-time forward simulation (and, later, the adjoint)."""

from .flat import FlatNetwork, flatten
from .forward import EventRecord, simulate

__all__ = ["EventRecord", "FlatNetwork", "flatten", "simulate"]
