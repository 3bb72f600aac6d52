"""One engine contract and one registry: engines chosen by name, like Brian2 devices or xarray backends.

An *engine* turns a :class:`~neurodelay.network.Network` and input spikes into
an :class:`~neurodelay.record.EventRecord` (:meth:`Engine.simulate`) and
differentiates such a record (:meth:`Engine.adjoint`). Engines without an
adjoint of their own (Brian2) hand their records to the event engine's
EventProp adjoint, which reads any record.

Engines are registered under a name with a preference; ``engine="auto"``
picks the registered engine of highest preference that supports the network
(:meth:`Engine.supports` returns None). Built in:

* ``"events"`` (preference 0): the exact event engine, any network;
* ``"brian"`` (preference -100, never chosen by "auto" while "events" is
  there): Brian2 in precise (sub-step) mode on the runtime device, dt = 0.1 ms;
  other settings as an object, e.g. ``engine=BrianEngine(dt=1e-5, device="cpp_standalone")``.

Built-in engines are registered as lazy factories (a new engine module adds
one line at the end of this file, e.g. ``register_engine(_lazy("neurodelay.x.engine:XEngine"),
name="x", preference=10)``): importing this module imports neither numba nor brian2.

>>> from neurodelay.engines import available_engines, get_engine
>>> {"events", "brian"} <= set(available_engines())
True
>>> get_engine("events").name
'events'
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover - types only
    from .network import Network
    from .record import AdjointResult, AdjointSources, EventRecord

__all__ = ["Engine", "register_engine", "unregister_engine", "get_engine", "available_engines",
           "BrianEngine", "AUTO", "require_option"]

AUTO = "auto"


@runtime_checkable
class Engine(Protocol):
    """What every engine provides (times in s; see :mod:`neurodelay.engines`)."""

    name: str

    def supports(self, net: "Network") -> str | None:
        """None if this engine can run `net`, else the reason it cannot (one line)."""

    def simulate(self, net: "Network", inputs, duration, *, record=(), sample_times=None,
                 n_threads: int | None = None) -> "EventRecord":
        """Every trial of `inputs` (SpikeTrains, or dict source name -> SpikeTrains; s) on
        [0, duration] s; V of the populations named in `record` sampled at `sample_times` (s).
        Engines that support initial states also take ``initial_state=`` (a dict population ->
        {"v": ..., "i": ...}, see :func:`neurodelay.record.resolve_initial_state`); it is only
        passed when given."""

    def adjoint(self, record: "EventRecord", sources: "AdjointSources", *, time_constants: bool = False,
                n_threads: int | None = None, record_tolerance: float = 1e-6) -> "AdjointResult":
        """Gradients (summed over trials) of the loss whose sources are `sources`, from `record`.
        Engines that compute dL/dbias and the initial-state gradients take ``state=True``
        (only passed when asked for)."""


def require_option(engine, method: str, option: str, what: str) -> None:
    """Raise ValueError naming `what` when ``engine.<method>`` does not take the keyword `option`
    (e.g. an engine registered before initial states existed)."""
    import inspect

    try:
        params = inspect.signature(getattr(engine, method)).parameters
    except (TypeError, ValueError):   # pragma: no cover - builtins without a signature
        return
    if option not in params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        raise ValueError(f"{what}: engine {getattr(engine, 'name', engine)!r} does not support it "
                         f"(its {method} takes no {option}=)")


@dataclass
class _Entry:
    name: str
    preference: int
    order: int
    engine: Engine | None = None
    factory: Callable[[], Engine] | None = None

    def get(self) -> Engine:
        if self.engine is None:
            engine = self.factory()
            _check_engine(engine)
            if engine.name != self.name:
                raise ValueError(f"the factory registered as {self.name!r} made an engine named {engine.name!r}")
            self.engine = engine
        return self.engine


_REGISTRY: dict[str, _Entry] = {}
_ORDER = [0]


def _check_engine(engine) -> None:
    missing = [m for m in ("name", "supports", "simulate", "adjoint") if not hasattr(engine, m)]
    if missing:
        raise TypeError(f"engine: {type(engine).__name__} lacks {missing} of the Engine protocol")
    if not isinstance(engine.name, str) or not engine.name or engine.name == AUTO:
        raise ValueError(f"engine: the name must be a non-empty string other than {AUTO!r}, got {engine.name!r}")


def register_engine(engine, *, preference: int = 0, name: str | None = None) -> None:
    """Register an engine (an :class:`Engine`, or a zero-argument factory making one, e.g. a class, with `name`).

    preference: "auto" picks the engine of highest preference that supports
    the network (ties: the earlier registered). A factory is called on first
    use (so that registering imports nothing heavy). Registering a name
    again replaces the earlier engine.
    """
    if not isinstance(preference, int):
        raise ValueError(f"preference must be an int, got {preference!r}")
    if hasattr(engine, "simulate") and not isinstance(engine, type):
        _check_engine(engine)
        if name is not None and name != engine.name:
            raise ValueError(f"name {name!r} differs from the engine's name {engine.name!r}")
        entry = _Entry(engine.name, preference, _ORDER[0], engine=engine)
    elif callable(engine):
        if not isinstance(name, str) or not name or name == AUTO:
            raise ValueError("name: a factory is registered under a name (a non-empty string other than 'auto')")
        entry = _Entry(name, preference, _ORDER[0], factory=engine)
    else:
        raise TypeError(f"engine must be an Engine or a factory of one, got {type(engine).__name__}")
    _ORDER[0] += 1
    _REGISTRY[entry.name] = entry


def unregister_engine(name: str) -> None:
    """Remove a registered engine (KeyError if there is none of that name)."""
    if name not in _REGISTRY:
        raise KeyError(f"no engine registered as {name!r}; available: {available_engines()}")
    del _REGISTRY[name]


def available_engines() -> list[str]:
    """Names of the registered engines, highest preference first."""
    return [e.name for e in sorted(_REGISTRY.values(), key=lambda e: (-e.preference, e.order))]


def get_engine(name: str = AUTO, net: "Network | None" = None) -> Engine:
    """The engine registered as `name`, or for "auto" the preferred one that supports `net`.

    With `net`, a named engine that cannot run it raises ValueError giving the
    reason. Unknown names raise ValueError listing the available ones. An
    :class:`Engine` object passed as `name` is returned (checked against `net`).
    """
    if not isinstance(name, str):
        _check_engine(name)
        return _supported(name, net)
    if name == AUTO:
        reasons = []
        for entry in sorted(_REGISTRY.values(), key=lambda e: (-e.preference, e.order)):
            engine = entry.get()
            reason = None if net is None else engine.supports(net)
            if reason is None:
                return engine
            reasons.append(f"{entry.name}: {reason}")
        raise ValueError("engine='auto': no registered engine supports this network"
                         + (f" ({'; '.join(reasons)})" if reasons else ""))
    if name not in _REGISTRY:
        raise ValueError(f"unknown engine {name!r}; available: {[AUTO] + available_engines()}")
    return _supported(_REGISTRY[name].get(), net)


def _supported(engine: Engine, net) -> Engine:
    if net is not None:
        reason = engine.supports(net)
        if reason is not None:
            raise ValueError(f"engine {engine.name!r} cannot run this network: {reason}")
    return engine


# ---- built-in engines ----------------------------------------------------------------------------

def _lazy(path: str) -> Callable[[], Engine]:
    module, _, attr = path.partition(":")
    return lambda: getattr(importlib.import_module(module), attr)()


class BrianEngine:
    """Brian2 as an engine: each :meth:`simulate` builds the network and runs every trial.

    mode: "precise" (exact sub-step timing) or "grid"; dt: step (s);
    device: "runtime", "cpp_standalone" or "cuda_standalone"; history: K per
    spiking population (precise mode; default from the delays). Gradients of
    its records come from the event engine's adjoint (which reads any record).
    Voltages are sampled on the step grid, so `sample_times` must be whole
    multiples of dt in (0, duration]. Trials run one after another
    (n_threads is ignored). Constructing one imports nothing from Brian2.
    """

    name = "brian"

    def __init__(self, mode: str = "precise", dt=1e-4, device: str = "runtime", history: dict | None = None):
        if mode not in ("precise", "grid"):
            raise ValueError(f"mode must be 'precise' or 'grid', got {mode!r}")
        if device not in ("runtime", "cpp_standalone", "cuda_standalone"):
            raise ValueError(f"device must be 'runtime', 'cpp_standalone' or 'cuda_standalone', got {device!r}")
        self.mode, self.device = mode, device
        if isinstance(dt, (int, float)):    # plain seconds: checked here, without importing Brian2
            if not dt > 0 or dt == float("inf"):
                raise ValueError(f"dt must be a positive finite time (s), got {dt!r}")
            self.dt = float(dt)
        else:                               # a Brian2 quantity
            from .units import as_seconds
            self.dt = float(as_seconds(dt, "dt", minimum=0.0, strictly=True))
        self.history = history

    def __repr__(self) -> str:
        return f"BrianEngine(mode={self.mode!r}, dt={self.dt!r}, device={self.device!r})"

    def supports(self, net) -> str | None:
        if importlib.util.find_spec("brian2") is None:
            return "brian2 is not installed"
        if self.device == "cuda_standalone" and importlib.util.find_spec("brian2cuda") is None:
            return "brian2cuda is not installed"
        return None

    def simulate(self, net, inputs, duration, *, record=(), sample_times=None, n_threads=None,
                 initial_state=None):
        import numpy as np

        from .brian.simulator import BrianSimulator
        from .units import as_seconds

        record = (record,) if isinstance(record, str) else tuple(record)
        steps = None
        if sample_times is not None and len(np.atleast_1d(sample_times)):
            sample_times = np.asarray(as_seconds(sample_times, "sample_times", np.shape(sample_times),
                                                 minimum=0.0), float)
            steps = np.round(sample_times / self.dt).astype(np.int64)
            if np.any(np.abs(steps * self.dt - sample_times) > 1e-9 * self.dt) or np.any(steps < 1):
                raise ValueError(f"sample_times: the brian engine samples V at whole steps of dt = {self.dt} s "
                                 f"after 0; give multiples of dt")
        if record and steps is None:
            raise ValueError("record given but no sample_times")
        sim = BrianSimulator(net, duration, mode=self.mode, dt=self.dt, device=self.device,
                             record=record if steps is not None else (), history=self.history)
        out = sim.run(inputs) if initial_state is None else sim.run(inputs, initial_state=initial_state)
        if steps is None:
            return out
        import dataclasses

        if np.any(steps > len(out.sample_times)):
            raise ValueError("sample_times must lie in (0, duration]")
        return dataclasses.replace(out, sample_times=sample_times, voltage=out.voltage[:, steps - 1, :])

    def adjoint(self, record, sources, *, time_constants=False, n_threads=None, record_tolerance=1e-6,
                state=False):
        from .events.adjoint import adjoint

        return adjoint(record, sources, time_constants=time_constants, n_threads=n_threads,
                       record_tolerance=record_tolerance, state=state)


register_engine(_lazy("neurodelay.events.engine:EventsEngine"), name="events", preference=0)
register_engine(_lazy("neurodelay.layered:LayeredEngine"), name="layered", preference=10)
register_engine(BrianEngine, name="brian", preference=-100)
register_engine(_lazy("neurodelay.layered.gpu:CudaEngine"), name="cuda", preference=-50)
