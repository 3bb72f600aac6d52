"""Build a network once on a Brian2 device, then run many trials: :class:`BrianSimulator`.

>>> sim = BrianSimulator(net, 0.2, mode="precise", dt=0.01e-3, device="cpp_standalone")  # doctest: +SKIP
>>> record = sim.run(inputs)                     # every trial of `inputs`; an EventRecord
>>> record = sim.run(inputs2, network=net2)      # new inputs, weights, delays: no recompilation

Per device:

* ``runtime``: the objects are built in this process (Cython code, cached in
  ``<cache>/cython``); each trial restores the initial state, assigns the
  values and runs;
* ``cpp_standalone`` / ``cuda_standalone``: a project is generated and
  compiled once into ``<cache>/brian/<device>/<mode>-<hash>`` (the hash covers
  the structure: sizes, connectivity, mode, dt, duration, recording, history
  lengths, table size, and the code of this package; an unchanged structure
  reuses the folder and its compiled objects); every trial relaunches the
  binary with ``run_args`` carrying all parameters and the trial's input
  tables.

Trials run one after another. The result is the event engine's
:class:`~neurodelay.events.EventRecord`.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from ..flat import flatten
from ..record import EventRecord, merge_inputs, resolve_initial_state  # validation shared by every engine
from ..network import Network
from ..spikes import SpikeTrains
from ..units import as_seconds
from . import builder as B
from .devices import (DEVICES, build_directory, directory_lock, runtime_context,
                      standalone_device)
from .record import assemble_record, check_counters, read_trial
from .rerun import assign_values, remove_run_arg_files, standalone_run_args
from .tables import rows_needed, spike_table

__all__ = ["BrianSimulator", "simulate"]

_CODE_FILES = ("builder.py", "precise.py", "tables.py")


def _split_sources(net: Network, merged: SpikeTrains) -> dict[str, SpikeTrains]:
    """Per source population, its spikes with local indices (from the merged global-index record)."""
    offsets = net.offsets()
    out = {}
    for pop in net.sources:
        mask = (merged.neuron >= offsets[pop.name]) & (merged.neuron < offsets[pop.name] + pop.n)
        out[pop.name] = SpikeTrains(merged.trial[mask], merged.neuron[mask] - offsets[pop.name],
                                    merged.time[mask], merged.n_trials, pop.n)
    return out


def _code_hash() -> str:
    h = hashlib.sha256()
    folder = Path(__file__).resolve().parent
    for name in _CODE_FILES:
        h.update((folder / name).read_bytes())
    return h.hexdigest()


class BrianSimulator:
    """A Network built once as Brian2 objects on one device, run for any number of trials.

    net: the description; duration: simulated time per trial (s or a Brian2
    time); mode: 'precise' (exact sub-step timing) or 'grid' (plain Brian2);
    dt: the step (s); device: 'runtime', 'cpp_standalone' or 'cuda_standalone';
    record: LIF/readout populations whose V is sampled every `sample_dt` (s);
    history: K per spiking population (precise mode; defaults from delays,
    refractory periods and the first inputs); max_input_spikes: room per
    input neuron and trial in the input tables (default: the first inputs').

    The build happens on the first :meth:`run` (or an explicit :meth:`build`).
    ``objects`` then holds the Brian2 objects (see :class:`.builder.BrianObjects`).
    """

    def __init__(self, net: Network, duration, *, mode: str = "precise", dt=1e-4, device: str = "runtime",
                 record=(), sample_dt=None, history: dict | None = None, max_input_spikes: int | None = None):
        if not isinstance(net, Network):
            raise TypeError(f"net must be a neurodelay Network, got {type(net).__name__}")
        if mode not in B.MODES:
            raise ValueError(f"mode must be one of {B.MODES}, got {mode!r}")
        if device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
        self.net = net
        self.duration = float(as_seconds(duration, "duration", minimum=0.0, strictly=True))
        self.dt = float(as_seconds(dt, "dt", minimum=0.0, strictly=True))
        steps = self.duration / self.dt
        if abs(steps - round(steps)) > 1e-6:
            raise ValueError(f"duration ({self.duration} s) must be a whole number of steps dt ({self.dt} s)")
        self.mode, self.device_name = mode, device
        self.record = (record,) if isinstance(record, str) else tuple(record)
        self.sample_dt = None if sample_dt is None else float(as_seconds(sample_dt, "sample_dt", minimum=0.0,
                                                                        strictly=True))
        self._history_given = dict(history) if history is not None else None
        if max_input_spikes is not None and (not isinstance(max_input_spikes, (int, np.integer))
                                             or max_input_spikes < 0):
            raise ValueError(f"max_input_spikes must be a non-negative integer, got {max_input_spikes!r}")
        self.max_input_spikes = max_input_spikes
        self.objects: B.BrianObjects | None = None
        self.directory: Path | None = None
        self.device = None
        self.build_seconds: float | None = None
        self.run_seconds: list[float] = []
        self._sizes: dict[str, int] = {}

    # ---- build --------------------------------------------------------------------------------
    def _sizing(self, inputs) -> tuple[dict, int]:
        sources = _split_sources(self.net, merge_inputs(self.net, inputs, flatten(self.net))) \
            if inputs is not None else {}
        if self.max_input_spikes is not None:
            rows = self.max_input_spikes + 1
        else:
            rows = max([rows_needed(t) for t in sources.values()] + [2])
        history = {}
        if self.mode == "precise":
            history = B.default_history(self.net, self.dt, sources or None)
            history.update(self._history_given or {})
        return history, rows

    def _key(self, history: dict, rows: int) -> str:
        from brian2 import __version__ as brian_version, prefs

        h = hashlib.sha256()
        desc = {
            "populations": [(type(p).__name__, p.name, p.n) for p in self.net.populations],
            "projections": [p.name for p in self.net.projections], "mode": self.mode, "dt": repr(self.dt),
            "duration": repr(self.duration), "record": self.record, "sample_dt": repr(self.sample_dt),
            "history": sorted((k, int(v)) for k, v in history.items()), "rows": int(rows),
            "device": self.device_name,
            "brian2": brian_version, "gcc": list(prefs["codegen.cpp.extra_compile_args_gcc"]),
            "code": _code_hash(),
        }
        if self.device_name == "cuda_standalone":
            import brian2cuda
            desc["brian2cuda"] = brian2cuda.__version__
        h.update(json.dumps(desc, sort_keys=True).encode())
        for p in self.net.projections:
            h.update(np.ascontiguousarray(p.pre_idx, np.int64).tobytes())
            h.update(np.ascontiguousarray(p.post_idx, np.int64).tobytes())
        return h.hexdigest()[:16]

    def project_directory(self, inputs=None) -> Path | None:
        """The build folder a standalone build (sized from `inputs`) uses; None for the runtime device."""
        if self.device_name == "runtime":
            return None
        if self.directory is not None:
            return self.directory
        return build_directory(self.device_name, self.mode, self._key(*self._sizing(inputs)))

    def build(self, inputs=None) -> None:
        """Create the Brian2 objects (runtime) or generate and compile the project (standalone).

        inputs (optional): size the input tables and source histories from them.
        """
        if self.objects is not None:
            raise RuntimeError("this simulator is already built; make a new BrianSimulator to build again")
        history, rows = self._sizing(inputs)
        self._sizes = {}
        start = time.perf_counter()
        kwargs = dict(record=self.record, sample_dt=self.sample_dt, history=history, input_rows=rows)
        if self.device_name == "runtime":
            from brian2 import second
            with runtime_context():
                self.objects = B.build_objects(self.net, self.mode, self.dt, **kwargs)
                self.objects.network.store("nd_initial")
                # compile (or load from the Cython cache) now, so that build time is reported as such
                self.objects.network.run(0 * second, namespace={})
                self.objects.network.restore("nd_initial")
        else:
            from brian2 import second
            self.directory = build_directory(self.device_name, self.mode, self._key(history, rows))
            with directory_lock(self.directory):
                with standalone_device(self.device_name, self.mode == "precise") as device:
                    objects = B.build_objects(self.net, self.mode, self.dt, set_values=False,
                                              clock=device.defaultclock, **kwargs)
                    device.apply_run_args()  # after connect(), before run(): new delays reach the queue
                    objects.network.run(self.duration * second, namespace={})
                    device.build(directory=str(self.directory), compile=True, run=False, with_output=False)
            self.objects, self.device = objects, device
        self._sizes = {self.objects.groups[p.name].name: p.n for p in self.net.populations}
        self._sizes.update({self.objects.synapses[p.name].name: p.n_syn for p in self.net.projections})
        self.build_seconds = time.perf_counter() - start

    # ---- run ------------------------------------------------------------------------------------
    def run(self, inputs, network: Network | None = None, *, progress: bool = False,
            initial_state=None) -> EventRecord:
        """Simulate every trial of `inputs` (SpikeTrains, or dict source name -> SpikeTrains; s).

        network: new values (weights, delays, neuron parameters, bias, initial state) for the
        same structure; default the built network's. initial_state: per-trial state at t = 0
        (see :func:`neurodelay.simulate`). Returns an EventRecord.
        """
        values = self.net if network is None else network
        B.check_same_structure(self.net, values)
        flat = flatten(values)
        merged = merge_inputs(values, inputs, flat)
        v_all, i_all = resolve_initial_state(values, flat, initial_state, merged.n_trials)
        if self.objects is None:
            self.build(inputs)
        sources = _split_sources(values, merged)
        rows = self.objects.input_rows
        trials = range(merged.n_trials)
        if progress:
            from tqdm.auto import tqdm
            trials = tqdm(trials, desc=f"Brian2 {self.mode} trials", unit="trial")
        results = []
        for k in trials:
            tables = {name: spike_table(sources[name], k, rows) for name in self.objects.tables}
            start = time.perf_counter()
            state = None if v_all is None else (v_all[k], i_all[k])
            results.append(self._run_trial(values, tables, state))
            self.run_seconds.append(time.perf_counter() - start)
        return assemble_record(values, merged, results, self.duration, engine=f"brian-{self.mode}-{self.device_name}",
                               v_init=v_all, i_init=i_all)

    def _run_trial(self, values: Network, tables: dict, state=None):
        objects = self.objects
        if self.device_name == "runtime":
            from brian2 import second
            with runtime_context():
                objects.network.restore("nd_initial")
                assign_values(objects, values, tables, state)
                objects.network.run(self.duration * second, namespace={})
                check_counters(objects)
                return read_trial(objects, self.duration)
        args = standalone_run_args(objects, values, tables, self._sizes, state)
        with directory_lock(self.directory):
            try:
                self.device.run(run_args=args, with_output=False)
                check_counters(objects)
                return read_trial(objects, self.duration)
            finally:
                remove_run_arg_files(self.device)


def simulate(net: Network, inputs, duration, *, mode: str = "precise", dt=1e-4, device: str = "runtime",
             record=(), sample_dt=None, history: dict | None = None, progress: bool = False,
             initial_state=None) -> EventRecord:
    """Build `net` in Brian2 and simulate every trial of `inputs` on [0, duration] from the
    description's initial state (or the per-trial `initial_state`).

    The Brian2 counterpart of :func:`neurodelay.simulate` (same inputs,
    same EventRecord). mode 'precise' (exact sub-step timing) or 'grid'; dt
    and duration in s (or Brian2 times); device 'runtime', 'cpp_standalone'
    or 'cuda_standalone'. For many runs of one network use :class:`BrianSimulator`.
    """
    sim = BrianSimulator(net, duration, mode=mode, dt=dt, device=device, record=record, sample_dt=sample_dt,
                         history=history)
    return sim.run(inputs, progress=progress, initial_state=initial_state)
