"""The ``engine`` fixture: every conformance test runs on every registered engine.

As Brian2 runs one test suite on every device, the oracles here (closed forms,
NEST, finite differences, delay-kind equivalences, determinism) run on every
engine of :mod:`neurodelay.engines` that supports the test's network. An
engine registered later (e.g. ``layered``) joins automatically with the exact
tolerances; an engine that is not exact, or slow to build, gets its entry in
SETTINGS. Slow engines run only the cases marked ``all_engines``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from neurodelay.engines import Engine, available_engines, get_engine


@dataclass(frozen=True)
class Settings:
    time_tolerance: float = 1e-12   # s: |t - t_oracle| of a spike against an exact oracle
    exact: bool = True              # invariances that hold bit for bit (delay kinds, synapse order)
    every_case: bool = True         # False: only the cases marked all_engines (slow to build)
    make: object = None             # a factory of the engine to test (default: the registered one)


#: Brian2's history length K for every spiking population of every conformance network. By default
#: the engine sizes K per run from the delays and the inputs, and each new K is new Cython code (a
#: compilation of several seconds); one K for all lets networks of the same kinds of populations share
#: their compiled code. The spike times do not depend on K as long as it holds every spike in flight
#: (8 is above every default these networks get; a K too small raises an overflow error, never a
#: wrong time).
BRIAN_HISTORY = 8


def _brian_fixed_history():
    """The registered Brian2 engine's settings (precise mode, dt = 0.1 ms, runtime device), K = BRIAN_HISTORY."""
    from neurodelay.engines import BrianEngine

    class FixedHistory(BrianEngine):
        def simulate(self, net, inputs, duration, **kwargs):
            history = {p.name: BRIAN_HISTORY for p in net.populations if p.spiking}
            return BrianEngine(self.mode, self.dt, self.device, history=history).simulate(net, inputs, duration,
                                                                                         **kwargs)
    return FixedHistory()


SETTINGS = {
    # the Brian2 engine (precise mode, dt = 0.1 ms, runtime device): each network is built anew (~2 s);
    # on the closed-form cases it lands within ~1e-16 s of the exact times (measured), 1e-9 s allowed
    "brian": Settings(time_tolerance=1e-9, exact=False, every_case=False, make=_brian_fixed_history),
}


@dataclass(frozen=True)
class EngineCase:
    """One engine under test, with the tolerances its oracles are held to."""

    name: str
    engine: Engine
    settings: Settings

    @property
    def time_tolerance(self) -> float:
        return self.settings.time_tolerance

    @property
    def exact(self) -> bool:
        return self.settings.exact

    def supports(self, net) -> bool:
        """Whether this engine can run `net`."""
        return self.engine.supports(net) is None

    def require(self, net) -> None:
        """Skip the test if this engine cannot run `net`."""
        reason = self.engine.supports(net)
        if reason is not None:
            pytest.skip(f"engine {self.name!r} does not support this network: {reason}")

    def simulate(self, net, inputs, duration, **kwargs):
        self.require(net)
        return self.engine.simulate(net, inputs, duration, **kwargs)


def pytest_generate_tests(metafunc):
    if "engine" not in metafunc.fixturenames:
        return
    every = metafunc.definition.get_closest_marker("all_engines") is not None
    params = []
    for name in available_engines():
        settings = SETTINGS.get(name, Settings())
        if every or settings.every_case:   # the slow engines: only the cheap cases, marked slow
            params.append(pytest.param(name, id=name, marks=() if settings.every_case else pytest.mark.slow))
    metafunc.parametrize("engine", params, indirect=True)


@pytest.fixture
def engine(request) -> EngineCase:
    name = request.param
    settings = SETTINGS.get(name, Settings())
    engine = settings.make() if settings.make is not None else get_engine(name)
    reason = engine.supports(_EMPTY_NET)
    if reason is not None:
        pytest.skip(f"engine {name!r} is not usable here: {reason}")
    return EngineCase(name, engine, settings)


def _empty_net():
    from neurodelay.network import Network, SpikeSource

    return Network().add(SpikeSource("inp", 1))


_EMPTY_NET = _empty_net()
