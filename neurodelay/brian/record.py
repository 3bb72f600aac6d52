"""Monitor data of Brian2 runs -> the event engine's EventRecord (spikes, I - theta, voltages).

A Brian2 run (one trial) is read into a :class:`TrialResult` right after it
finished (standalone monitors are views on files of the last run, so their
values are copied at once); the trials are then assembled into a
:class:`neurodelay.events.EventRecord`, the same record the exact event engine
returns, so SpikeTrains, ``neurodelay.io.record_to_dataset`` and the adjoint
accept Brian2 runs too. In precise mode each spike's ``i_minus_theta`` is
``I - theta`` at the exact crossing; in grid mode it is ``I - theta`` at the
end of the step in which V was found above threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..flat import flatten
from ..network import LIF, Network
from ..record import EventRecord
from ..spikes import SpikeTrains

__all__ = ["TrialResult", "read_trial", "check_counters", "assemble_record", "HistoryOverflowError"]


class HistoryOverflowError(RuntimeError):
    """The precise mode's per-neuron history of exact spike times was too short (spikes were lost)."""


@dataclass(frozen=True)
class TrialResult:
    """One trial's output: spikes (global neuron index, s, I - theta) and sampled V (samples, neurons)."""

    neuron: np.ndarray
    time: np.ndarray
    i_minus_theta: np.ndarray
    sample_times: np.ndarray
    sample_neurons: np.ndarray
    voltage: np.ndarray


def _copy(view) -> np.ndarray:
    return np.array(np.asarray(view), dtype=float, copy=True)


def check_counters(objects) -> None:
    """Raise HistoryOverflowError if any precise group dropped an in-flight spike from its history."""
    if objects.mode != "precise":
        return
    problems = []
    for name, group in objects.groups.items():
        if "overflow" not in group.variables:
            continue
        overflow, lost = _copy(group.overflow[:]), _copy(group.lost[:])
        if overflow.sum() or lost.sum():
            problems.append(f"{name!r}: {int(overflow.sum())} overflows, {int(lost.sum())} events not found "
                            f"(history K = {objects.history.get(name)})")
    if problems:
        raise HistoryOverflowError(
            "the history of exact spike times was too short, spikes in flight were dropped: "
            + "; ".join(problems) + ". Build again with a larger history={population: K}")


def read_trial(objects, duration: float) -> TrialResult:
    """Copy the monitors of the run that just finished (spikes up to `duration` s)."""
    from brian2 import second

    net: Network = objects.description
    offsets = net.offsets()
    neuron, time, imt = [], [], []
    for pop in net.populations:
        if not isinstance(pop, LIF):
            continue
        mon = objects.monitors[f"{pop.name}.spikes"]
        idx = np.array(np.asarray(mon.i[:]), dtype=np.int64, copy=True)
        if objects.mode == "precise":
            t = _copy(mon.ts0[:] / second)
            g = _copy(mon.imt[:])
        else:
            t = _copy(mon.t[:] / second)
            g = _copy(mon.I[:]) + pop.bias[idx] - pop.theta[idx]
        keep = t <= duration
        neuron.append(idx[keep] + offsets[pop.name])
        time.append(t[keep])
        imt.append(g[keep])
    cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt))
    neuron, time, imt = cat(neuron, np.int64), cat(time, float), cat(imt, float)
    order = np.lexsort((neuron, time))
    sample_neurons, columns, sample_times = [], [], np.zeros(0)
    for name in objects.recorded:
        mon = objects.monitors[f"{name}.v"]
        values = _copy(getattr(mon, objects.voltage_variable)[:])  # (n, samples) of u = V - bias
        columns.append(values.T + net[name].bias)
        sample_neurons.append(np.arange(net[name].n) + offsets[name])
        sample_times = _copy(mon.t[:] / second) + objects.dt  # recorded at the step end
    voltage = (np.concatenate(columns, axis=1) if columns else np.zeros((0, 0)))
    return TrialResult(neuron[order], time[order], imt[order], sample_times,
                       cat(sample_neurons, np.int64), voltage)


def assemble_record(net: Network, inputs: SpikeTrains, trials: list[TrialResult], duration: float,
                    engine: str = "brian", v_init=None, i_init=None) -> EventRecord:
    """One EventRecord from per-trial results (inputs: all sources, global indices, as the engine's);
    `engine` names the producer in the record (provenance); v_init, i_init: the per-trial
    state at t = 0 when it was given (n_trials, N), else None."""
    counts = [len(r.time) for r in trials]
    cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt))
    sample_times = trials[0].sample_times if trials else np.zeros(0)
    sample_neurons = trials[0].sample_neurons if trials else np.zeros(0, np.int64)
    voltage = (np.stack([r.voltage for r in trials]) if trials and len(sample_neurons)
               else np.zeros((len(trials), len(sample_times), len(sample_neurons))))
    return EventRecord(net, flatten(net), inputs, np.repeat(np.arange(len(trials)), counts).astype(np.int64),
                       cat([r.neuron for r in trials], np.int64), cat([r.time for r in trials], float),
                       cat([r.i_minus_theta for r in trials], float), float(duration),
                       sample_times, sample_neurons, voltage, engine=engine, v_init=v_init, i_init=i_init)
