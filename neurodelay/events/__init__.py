"""The exact event-driven engine: continuous-time forward simulation and the EventProp adjoint."""

from .adjoint import AdjointResult, AdjointSources, adjoint
from .flat import FlatNetwork, flatten
from .forward import EventRecord, simulate

__all__ = ["AdjointResult", "AdjointSources", "EventRecord", "FlatNetwork", "adjoint", "flatten", "simulate"]
