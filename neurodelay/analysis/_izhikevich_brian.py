"""The Izhikevich (2006) network with STDP as plain Brian2 code, run on cpp_standalone in checkpointed chunks.

Private implementation of :func:`neurodelay.analysis.polychrony.simulate_izhikevich`;
the Brian2 model is in :func:`build_model`, written to be read and modified.

The model follows the author's C++ code step for step (1 ms steps, all
quantities dimensionless: v in mV, time in ms):

* step t: neurons with v >= 30 spike (threshold), are reset (v = -65,
  u += d) and set their depression trace LTD = 0.12; every synapse onto a
  spiking neuron adds its presynaptic trace to its derivative ``sd`` (LTP);
* then the spikes due at t arrive: I_post += w and ``sd -= LTD_post`` (LTD);
  a spike emitted at step t with delay d ms arrives at step t + d - 1 (the
  author's delay index; d = 1 arrives in the step of the spike);
* then v is integrated in two 0.5 ms half steps and u in one, with I plus
  the thalamic input (20 into one random neuron per step), and the traces
  decay by 0.95;
* once per second (before the first step of the next second):
  ``sd *= 0.9; w = clip(w + 0.01 + sd, 0, 10)`` on excitatory synapses.

The presynaptic (LTP) trace of the author's code is a per-neuron trace of
0.1 at the spike, decaying x0.95 per ms, read through the synapse's delay.
Here it is kept per synapse from the time of the last arrival:
``0.1 * 0.95**(t - t_arrival - 1)`` at a postsynaptic spike at step t (the
same value, with the post pathway run before the pre pathway so that an
arrival in the step of the postsynaptic spike is not counted, as there).

Chunks. A chunk is one launch of the compiled binary (``device.run``) with
the state of the previous one passed through ``run_args`` (v, u, LTD, w, sd,
t_arrival, and the chunk's thalamic input table). The weight update due at
the end of a chunk is applied between chunks with the same arithmetic.
Spikes still in flight at the end of a chunk (emitted in its last 19 ms,
arriving in the next) are not carried over: a chunk of C seconds loses the
arrivals of at most 0.019 / C of its spikes. Each chunk depends only on the
saved state and on (seed, chunk index), so a run resumed from a checkpoint
is identical to one that never stopped.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from ..brian.devices import build_directory, directory_lock, standalone_device
from ..brian.rerun import remove_run_arg_files

__all__ = ["build_model", "ChunkRunner", "end_of_second_update", "NEVER"]

#: t_arrival of a synapse that never transmitted (ms): its trace 0.1 * 0.95**(t - NEVER) is 0
NEVER = -1.0e9

#: the model's constants (author's code)
A_EXC, A_INH, B, C_RESET, D_EXC, D_INH = 0.02, 0.1, 0.2, -65.0, 8.0, 2.0
V_PEAK, THALAMIC = 30.0, 20.0
LTP_AMPLITUDE, LTD_AMPLITUDE, TRACE_DECAY = 0.1, 0.12, 0.95
SD_DECAY, W_DRIFT = 0.9, 0.01


def end_of_second_update(w: np.ndarray, sd: np.ndarray, w_max: float) -> tuple[np.ndarray, np.ndarray]:
    """The once-a-second weight update of excitatory synapses (same arithmetic as the Brian2 code)."""
    due = 1
    sd = sd * (1 - (1 - SD_DECAY) * due)
    w = np.clip(w + due * (W_DRIFT + sd), 0.0, w_max)
    return w, sd


def build_model(n_exc: int, n_inh: int, exc_pre, exc_post, exc_delay_ms, inh_pre, inh_post,
                chunk_ms: int, w_max: float, w_inh: float):
    """The Izhikevich network as Brian2 objects (current device); returns a dict of them.

    exc_delay_ms: integer delays (ms, 1..D) of the excitatory synapses;
    inhibitory synapses have 1 ms. The thalamic input is a TimedArray of the
    neuron index driven at each step of a chunk (changed per chunk).
    """
    import brian2 as b

    n = n_exc + n_inh
    thalamic = b.TimedArray(np.zeros(chunk_ms), dt=1 * b.ms, name="thalamic")
    neurons = b.NeuronGroup(
        n, """
        v : 1                  # membrane potential (mV)
        u : 1                  # recovery variable
        I : 1                  # input of the current step
        LTD : 1                # depression trace of the neuron as a postsynaptic cell
        a : 1 (constant)
        d : 1 (constant)
        n_spikes : integer     # spikes in the current chunk
        """,
        threshold="v >= v_peak",
        reset="v = c_reset; u += d; LTD = ltd_amplitude; n_spikes += 1",
        name="izhikevich", dt=1 * b.ms)
    # integration after the deliveries of the step (two half steps for v, as in the author's code)
    neurons.run_regularly("""
        I += thalamic_input * int(abs(i - thalamic(t)) < 0.5)
        v += 0.5 * ((0.04 * v + 5) * v + 140 - u + I)
        v += 0.5 * ((0.04 * v + 5) * v + 140 - u + I)
        u += a * (b_izh * v - u)
        LTD *= trace_decay
        I = 0
        """, when="end", name="izhikevich_step")

    exc = b.Synapses(
        neurons, neurons, """
        w : 1                  # weight (mV jump of I)
        sd : 1                 # weight derivative accumulated over the current second
        t_arrival : 1          # step of the last arrival (ms)
        """,
        on_pre="""
        I_post += w
        sd -= LTD_post
        t_arrival = t / ms
        """,
        on_post="sd += ltp_amplitude * trace_decay ** (t / ms - t_arrival - 1)",
        name="exc_synapses", dt=1 * b.ms)
    exc.connect(i=np.asarray(exc_pre), j=np.asarray(exc_post))
    exc.delay = (np.asarray(exc_delay_ms) - 1) * b.ms      # author's delay index: d ms arrive d - 1 steps later
    exc.post.order = -2                                     # LTP of a postsynaptic spike before the step's arrivals
    # once a second, before the step that starts it; the update due at t = 0 of a chunk is done between chunks
    exc.run_regularly("""
        due = int(t > 0 * ms)
        sd = sd * (1 - (1 - sd_decay) * due)
        w = clip(w + due * (w_drift + sd), 0, w_max)
        """, dt=1 * b.second, when="start", name="stdp_update")

    inh = b.Synapses(neurons, neurons, "w : 1 (constant)", on_pre="I_post += w", name="inh_synapses",
                     dt=1 * b.ms)
    inh.connect(i=np.asarray(inh_pre), j=np.asarray(inh_post))
    inh.delay = 0 * b.ms                                     # 1 ms: arrives in the step of the spike
    inh.w = w_inh

    net = b.Network(neurons, exc, inh)
    # spikes and resets (LTD = 0.12) before the step's synaptic events, as in the author's code
    net.schedule = ["start", "groups", "thresholds", "resets", "synapses", "end"]
    namespace = dict(v_peak=V_PEAK, c_reset=C_RESET, ltd_amplitude=LTD_AMPLITUDE, thalamic_input=THALAMIC,
                     b_izh=B, trace_decay=TRACE_DECAY, ltp_amplitude=LTP_AMPLITUDE, sd_decay=SD_DECAY,
                     w_drift=W_DRIFT, w_max=w_max, thalamic=thalamic, ms=b.ms)
    neurons.a = np.r_[np.full(n_exc, A_EXC), np.full(n_inh, A_INH)]
    neurons.d = np.r_[np.full(n_exc, D_EXC), np.full(n_inh, D_INH)]
    return dict(network=net, neurons=neurons, exc=exc, inh=inh, thalamic=thalamic, namespace=namespace)


def _code_hash() -> str:
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


class ChunkRunner:
    """The compiled model (built once per connectivity and chunk length) and one chunk per :meth:`run`."""

    def __init__(self, n_exc, n_inh, exc_pre, exc_post, exc_delay_ms, inh_pre, inh_post, chunk_ms: int,
                 w_max: float, w_inh: float):
        from brian2 import __version__ as brian_version, ms

        h = hashlib.sha256(json.dumps([n_exc, n_inh, chunk_ms, w_max, w_inh, brian_version,
                                       _code_hash()]).encode())
        for arr in (exc_pre, exc_post, exc_delay_ms, inh_pre, inh_post):
            h.update(np.ascontiguousarray(arr, np.int64).tobytes())
        self.directory = build_directory("cpp_standalone", "izhikevich", h.hexdigest()[:16])
        self.n_exc, self.n, self.n_syn_exc = n_exc, n_exc + n_inh, len(exc_pre)
        self.chunk_ms = chunk_ms
        start = time.perf_counter()
        with directory_lock(self.directory):
            with standalone_device("cpp_standalone", precise=False) as device:
                self.objects = build_model(n_exc, n_inh, exc_pre, exc_post, exc_delay_ms, inh_pre, inh_post,
                                           chunk_ms, w_max, w_inh)
                self.objects["network"].run(chunk_ms * ms, namespace=self.objects["namespace"])
                device.build(directory=str(self.directory), compile=True, run=False, with_output=False)
        self.device = device
        self.build_seconds = time.perf_counter() - start

    def run(self, state: dict, thalamic: np.ndarray) -> dict:
        """One chunk from `state` (v, u, LTD per neuron; w, sd, t_arrival per excitatory synapse, t_arrival
        in ms relative to the chunk's start); returns the state at its end (same keys, plus n_spikes)."""
        o = self.objects
        sizes = {"v": self.n, "u": self.n, "LTD": self.n, "w": self.n_syn_exc, "sd": self.n_syn_exc,
                 "t_arrival": self.n_syn_exc}
        for key, size in sizes.items():
            if np.shape(state[key]) != (size,):
                raise ValueError(f"state[{key!r}] has shape {np.shape(state[key])}, expected ({size},)")
        if np.shape(thalamic) != (self.chunk_ms,):
            raise ValueError(f"thalamic has shape {np.shape(thalamic)}, expected ({self.chunk_ms},)")
        g, s = o["neurons"], o["exc"]
        args = {g.v: state["v"], g.u: state["u"], g.LTD: state["LTD"], g.I: 0.0, g.n_spikes: 0,
                s.w: state["w"], s.sd: state["sd"], s.t_arrival: state["t_arrival"],
                o["thalamic"]: np.asarray(thalamic, float)}
        with directory_lock(self.directory):
            self.device.run(directory=str(self.directory), with_output=False, run_args=args)
            out = {"v": np.array(g.v[:], copy=True), "u": np.array(g.u[:], copy=True),
                   "LTD": np.array(g.LTD[:], copy=True), "w": np.array(s.w[:], copy=True),
                   "sd": np.array(s.sd[:], copy=True), "t_arrival": np.array(s.t_arrival[:], copy=True),
                   "n_spikes": np.array(g.n_spikes[:], copy=True)}
            remove_run_arg_files(self.device)   # run_args value files accumulate otherwise
        return out
