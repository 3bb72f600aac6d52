"""The exact event-driven engine: continuous-time forward simulation and the EventProp adjoint.

The types every engine shares live in :mod:`neurodelay.record` and :mod:`neurodelay.flat`;
they are re-exported here, where they used to live.
"""

from ..flat import KIND_LIF, KIND_READOUT, KIND_SOURCE, FlatNetwork, flatten
from ..record import AdjointResult, AdjointSources, EventRecord, RecordMismatchError, merge_inputs
from .adjoint import adjoint
from .engine import EventsEngine
from .forward import simulate, simulate_events

__all__ = ["AdjointResult", "AdjointSources", "EventRecord", "EventsEngine", "FlatNetwork", "KIND_LIF",
           "KIND_READOUT", "KIND_SOURCE", "RecordMismatchError", "adjoint", "flatten", "merge_inputs",
           "simulate", "simulate_events"]
