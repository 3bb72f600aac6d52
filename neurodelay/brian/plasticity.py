"""The three-factor rule (:class:`~neurodelay.plasticity.ThreeFactorRule`) as plain Brian2 code.

:func:`three_factor_gradients` builds the network with the rule's state as extra
variables of its own synapses and neurons (:class:`.builder.BuildExtension`), runs
every trial, and returns the rule's gradient estimate with the keys of
:func:`neurodelay.gradients.loss_and_grad`, like the event engine's implementation
(the derivation is in :mod:`neurodelay.plasticity`). Only equations, ``on_pre`` /
``on_post`` statements and ``run_regularly`` code are used (no ``network_operation``),
so the same build runs under the runtime device, C++ standalone and brian2cuda.

State per learned synapse (O(synapses), no event lists)
-------------------------------------------------------
* Traces: ``tf_pa``, ``tf_qa`` = p, q at the synapse's newest arrival ``tf_t1``
  (``tf_t2``: the one before). At time s, with at most two of the synapse's
  arrivals after s (precise mode delivers events one or two steps before they
  arrive, see :mod:`.precise`)::

      p(s) = (tf_pa - [s < t1] - [s < t2] e^{-(t1 - t2)/tau_m}) e^{-(s - t1)/tau_m}

  (q likewise with tau_s). An arrival that would still be needed when dropped
  from this two-slot window is counted in ``tf_lost`` and reported as an error.
  eps^w = c (p - q), eps^d = w c (p/tau_m - q/tau_s), c = tau_s/(tau_m - tau_s).
* Eligibility ``tf_ew`` (E^w, s) and ``tf_ed`` (E^d, dimensionless):

  - ``"exact"``: an ``on_post`` pathway adds ``eps(t_s) / Vdot`` at each spike
    of the post neuron, with the exact spike time t_s (``ts0``) and
    ``Vdot = (I - theta)/tau_m`` at the crossing (``imt``) of the precise mode;
  - ``"gaussian"``: ``integral psi(V_j) eps dt`` step by step in a synaptic
    ``run_regularly`` (trapezoid rule on the exact step-end voltages ``v_exact``,
    split at the exact spike time: psi(theta) just before it, psi(reset) just
    after; each arrival inside a step integrated from its exact time on, so
    the jump of eps^d at an arrival costs no accuracy). Error O(dt^2) for
    smooth psi.
* Snapshot ``tf_sw``, ``tf_sd`` = eps^w, eps^d at the post neuron's running
  maximum of V (for losses on maxima: readouts, and the missing-spike penalty of
  first-spike losses on silent LIF neurons). The maximum inside each step is
  found exactly from the exact state at both ends of the step (closed-form peaks
  of the two-exponential trajectory before and after the step's arrival, and the
  arrival point itself). A maximum at an inhibitory arrival (a kink of V) moves
  with that arrival: the arriving synapse's delay term is dV/dt just before it.

At the end of each trial the record (spikes, exactly as
:class:`.BrianSimulator` reads it) gives the loss's adjoint sources, hence the
learning signals (:func:`neurodelay.plasticity.signals.learning_signals`, the
event engine's own code), and per synapse ``grad = L_j E_ji + g_j snapshot_ji``.

Measured (tests/test_brian_plasticity.py, precise mode, dt = 0.01 ms): the exact
pseudo-derivative equals EventProp on a one-layer first-spike network and the
event engine's estimate on two-layer networks to ~1e-12 relative (what the
~1e-15 s spike-time differences explain); the Gaussian one agrees with the event
engine to ~1e-7 (weights) and ~5e-6 (delays), the trapezoid error, falling as dt^2.

Grid mode (plain Brian2 timing) runs the same code with arrivals at the end of
the step in which they are delivered and spikes at the middle of their step: a
baseline with O(dt) errors.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from typing import NamedTuple

import numpy as np

from ..flat import flatten
from ..gradients import check_key
from ..losses import Loss
from ..network import LIF, Network, Readout
from ..plasticity.rule import ThreeFactorRule
from ..plasticity.signals import feedback_weights, learning_signals
from ..record import EventRecord, merge_inputs
from ..units import as_seconds
from . import builder as B
from .devices import DEVICES, cache_root, runtime_context, standalone_device
from .record import assemble_record, check_counters, read_trial
from .rerun import assign_values, remove_run_arg_files, standalone_run_args
from .simulator import _split_sources
from .tables import rows_needed, spike_table

__all__ = ["ThreeFactorResult", "three_factor_gradients", "rule_extension", "TraceWindowError"]

FAR_PAST = -1e6  # s, time of empty arrival slots


class TraceWindowError(RuntimeError):
    """A synapse had more than two arrivals in flight: its traces could not be evaluated exactly."""


class ThreeFactorResult(NamedTuple):
    """Result of :func:`three_factor_gradients`: batch-mean loss, the rule's gradient estimates by key,
    the Brian2 record, and the per-trial eligibilities (projection -> dict of (n_trials, n_syn) arrays
    ``"ew"``, ``"ed"``, ``"sw"``, ``"sd"`` in the description's synapse order)."""

    loss: float
    grads: dict
    record: EventRecord
    eligibility: dict


# ---- Brian2 code ------------------------------------------------------------------------------

_SYNAPSE_STATE = """
tf_pa : 1  # p at the newest arrival tf_t1 (all arrivals up to it)
tf_qa : 1  # q at tf_t1
tf_t1 : second  # newest arrival time
tf_t2 : second  # the arrival before it
tf_lost : 1  # arrivals dropped from the two-slot window while still needed (must stay 0)
tf_ew : second  # E^w: sum eps^w/Vdot (exact) or integral psi eps^w dt (gaussian)
tf_ed : 1  # E^d, idem with eps^d
tf_sw : 1  # eps^w at the post neuron's running maximum of V
tf_sd : hertz  # eps^d at the post neuron's running maximum of V
"""

_NEURON_GAUSS = """
tf_norm : 1 (constant)  # 2/(sigma sqrt(2 pi)): psi at theta
tf_sigma : 1 (constant)  # surrogate width (units of V)
tf_psi0 : 1  # psi(V) at the start of the step
tf_psi1 : 1  # psi(V) at the end of the step
tf_psir : 1 (constant)  # psi(reset)
tf_tsp : second  # time of this step's spike (the step end when none)
tf_spk : 1  # 1 when the neuron spiked in this step
"""

_NEURON_PEAK = """
tf_v0 : 1  # exact V at the start of the step
tf_i0 : 1  # exact I at the start of the step
tf_vmax : 1  # running maximum of V
tf_tmax : second  # its time
tf_new : 1  # 1 when the running maximum moved in this step
tf_kink : 1  # 1 when the running maximum lies at an arrival (where V has a kink)
tf_vdl : hertz  # dV/dt just before that arrival
"""


def _kk(where: str = "_post") -> str:
    return f"(tau_s{where}/(tau_m{where} - tau_s{where}))"


def _trace(out: str, which: str, s: str) -> str:
    """Statement ``out = p(s)`` (which='p') or q(s) from the two-slot representation (synaptic code)."""
    a, tau = ("tf_pa", "tau_m_post") if which == "p" else ("tf_qa", "tau_s_post")
    return (f"{out} = ({a} - int({s} < tf_t1) - int({s} < tf_t2)*exp(-(tf_t1 - tf_t2)/{tau}))"
            f"*exp(-({s} - tf_t1)/{tau})")


def _on_pre(mode: str) -> str:
    """Push an arrival (exact time: end of step minus u in precise mode) into the two-slot traces."""
    arrival = "t + dt - u" if mode == "precise" else "t + dt"
    return "\n".join([
        f"tf_ta = {arrival}",
        "tf_lost += int(tf_t2 > t)",
        "tf_pa = tf_pa*exp(-(tf_ta - tf_t1)/tau_m_post) + 1",
        "tf_qa = tf_qa*exp(-(tf_ta - tf_t1)/tau_s_post) + 1",
        "tf_t2 = tf_t1",
        "tf_t1 = tf_ta",
    ])


def _on_post_exact(mode: str) -> str:
    """At a spike of the post neuron: E += eps(t_s)/Vdot."""
    if mode == "precise":
        ts, vdot = "ts0_post", "clip(imt_post, 1e-12, 1e30)/tau_m_post"
    else:  # the crossing lies in (t, t + dt]: its middle; I - theta at the step end
        ts, vdot = "(t + 0.5*dt)", "clip(I_post - theta_post, 1e-12, 1e30)/tau_m_post"
    return "\n".join([
        f"tf_s = {ts}",
        f"tf_vd = {vdot}",
        _trace("tf_p", "p", "tf_s"),
        _trace("tf_q", "q", "tf_s"),
        f"tf_ew += {_kk()}*(tf_p - tf_q)/tf_vd",
        f"tf_ed += w*{_kk()}*(tf_p/tau_m_post - tf_q/tau_s_post)/tf_vd",
    ])


def _interval(tag: str, n0: str, n1: str, f0: str, f1: str) -> list[str]:
    """Synaptic statements adding the trapezoid integral of psi*eps over [n0, n1] to tf_ew, tf_ed.

    psi is linear between f0 (at n0) and f1 (at n1); the part of eps due to the
    arrivals up to n0 is integrated with the trapezoid rule, each arrival inside
    (n0, n1] from its own time to n1 (so the jump of eps^d at an arrival is exact).
    """
    kk = _kk()
    lines = [
        _trace(f"tf_p0{tag}", "p", n0), _trace(f"tf_q0{tag}", "q", n0),
        _trace(f"tf_p1{tag}", "p", n1), _trace(f"tf_q1{tag}", "q", n1),
        f"tf_len{tag} = {n1} - {n0}",
    ]
    extra_w, extra_d = [], []
    for k in (1, 2):
        slot = f"tf_t{k}"
        lines += [
            f"tf_in{k}{tag} = int({slot} > {n0})*int({slot} <= {n1})",
            f"tf_cp{k}{tag} = tf_in{k}{tag}*exp(-({n1} - {slot})/tau_m_post)",
            f"tf_cq{k}{tag} = tf_in{k}{tag}*exp(-({n1} - {slot})/tau_s_post)",
            # psi at the arrival, interpolated
            f"tf_fa{k}{tag} = {f0} + ({f1} - {f0})*clip(({slot} - {n0})/clip(tf_len{tag}, 1e-30*second, "
            f"1e30*second), 0, 1)",
            f"tf_h{k}{tag} = tf_in{k}{tag}*({n1} - {slot})/2",
        ]
        extra_w.append(f"tf_h{k}{tag}*{f1}*(tf_cp{k}{tag} - tf_cq{k}{tag})")
        extra_d.append(f"tf_h{k}{tag}*(tf_fa{k}{tag}*(1/tau_m_post - 1/tau_s_post)"
                       f" + {f1}*(tf_cp{k}{tag}/tau_m_post - tf_cq{k}{tag}/tau_s_post))")
    lines += [
        f"tf_pl{tag} = tf_p1{tag} - tf_cp1{tag} - tf_cp2{tag}",  # arrivals up to n0 only, at n1
        f"tf_ql{tag} = tf_q1{tag} - tf_cq1{tag} - tf_cq2{tag}",
        f"tf_ew += {kk}*(tf_len{tag}/2*({f0}*(tf_p0{tag} - tf_q0{tag}) + {f1}*(tf_pl{tag} - tf_ql{tag}))"
        f" + {' + '.join(extra_w)})",
        f"tf_ed += w*{kk}*(tf_len{tag}/2*({f0}*(tf_p0{tag}/tau_m_post - tf_q0{tag}/tau_s_post)"
        f" + {f1}*(tf_pl{tag}/tau_m_post - tf_ql{tag}/tau_s_post)) + {' + '.join(extra_d)})",
    ]
    return lines


def _synapse_gauss() -> str:
    """Per step (after the resets): integral of psi*eps over (t, t + dt], split at this step's spike."""
    return "\n".join(
        _interval("a", "t", "tf_tsp_post", "tf_psi0_post",
                  "(tf_spk_post*tf_norm_post + (1 - tf_spk_post)*tf_psi1_post)")
        + _interval("b", "tf_tsp_post", "(t + dt)", "tf_psir_post", "tf_psi1_post"))


def _psi(v: str) -> str:
    return f"int({v} <= theta)*tf_norm*exp(-({v} - theta)**2/(2*tf_sigma**2))"


def _neuron_gauss(mode: str) -> str:
    """Per step, before the synapses' integration: this step's spike and psi at the step end."""
    if mode == "precise":
        spiked, ts, v = "int(ts0 > t)", "ts0", "v_exact"
    else:
        spiked, ts, v = "int(abs(lastspike - t) < 0.5*dt)", "(t + 0.5*dt)", "v"
    return "\n".join([f"tf_spk = {spiked}", f"tf_tsp = tf_spk*{ts} + (1 - tf_spk)*(t + dt)",
                      f"tf_psi1 = {_psi(v)}"])


def _peak(p: str, v0: str, i0: str) -> list[str]:
    """Time ``{p}_s`` (after the state (v0, i0)) and value ``{p}_v`` of the peak of the two-exponential
    trajectory from that state; ``{p}_ok`` = 1 when the peak lies ahead (s > 0)."""
    return [
        f"{p}_den = {v0}*(tau_m - tau_s) + {i0}*tau_s",
        f"{p}_ratio = int({p}_den > 0*second)*(tau_m - tau_s)*({i0} - {v0})"
        f"/clip({p}_den, 1e-30*second, 1e30*second)",
        f"{p}_ok = int({p}_den > 0*second)*int({p}_ratio > 0)",
        f"{p}_s = log(clip(1 + {p}_ratio, 1e-30, 1e30))*tau_m*tau_s/(tau_m - tau_s)",
        f"{p}_v = {v0}*exp(-{p}_s/tau_m) + {i0}*tau_s/(tau_m - tau_s)*(exp(-{p}_s/tau_m) - exp(-{p}_s/tau_s))",
    ]


def _take(cond: str, s: str, v: str) -> list[str]:
    return [f"tf_c = ({cond})*int({v} > tf_bv)", f"tf_bs = tf_c*({s}) + (1 - tf_c)*tf_bs",
            f"tf_bv = tf_c*({v}) + (1 - tf_c)*tf_bv"]


def _neuron_peak(mode: str) -> str:
    """Per step: the maximum of V over (t, t + dt] and whether it raises the running maximum.

    Precise mode: trajectory A (the exact start state evolved without this
    step's arrivals) is exact before them, trajectory B (the exact end state
    extrapolated back) after them; their difference gives the arrival's lag
    (one arrival exactly, several: an effective time). Candidates: the step
    end, A's peak before the arrival, B's peak after it, the arrival point.
    Grid mode: the step-end values.
    """
    if mode == "grid":
        lines = ["tf_bv = v", "tf_bs = dt + 0*tf_tmax"]
    else:
        em, es = "exp(-dt/tau_m)", "exp(-dt/tau_s)"
        kk = "tau_s/(tau_m - tau_s)"
        pk = f"({kk}*({em} - {es}))"
        lines = [
            f"tf_av = tf_v0*{em} + tf_i0*{pk}",
            f"tf_ai = tf_i0*{es}",
            "tf_di = I_exact - tf_ai",
            "tf_has = int(abs(tf_di) > 1e-12)",
            "tf_dden = clip(abs(tf_di), 1e-12, 1e30)*(2*int(tf_di >= 0) - 1)",
            f"tf_sa = log(clip(1 + (v_exact - tf_av)/({kk}*tf_dden), 1e-30, 1e30))/(1/tau_s - 1/tau_m)",
            "tf_sa = tf_has*clip(tf_sa, 0*second, dt) + (1 - tf_has)*dt",  # lag of the arrival before the end
            f"tf_xa = tf_av*exp(tf_sa/tau_m) + tf_ai*{kk}*(exp(tf_sa/tau_m) - exp(tf_sa/tau_s))",
            f"tf_bi = I_exact/{es}",
            f"tf_bv0 = (v_exact - {pk}*tf_bi)/{em}",
        ]
        lines += _peak("tf_pa", "tf_v0", "tf_i0") + _peak("tf_pb", "tf_bv0", "tf_bi")
        lines += ["tf_bv = v_exact", "tf_bs = dt + 0*tf_tmax"]  # (a vector, not a scalar)
        lines += _take("tf_pa_ok*int(tf_pa_s < dt - tf_sa)", "tf_pa_s", "tf_pa_v")
        lines += _take("tf_pb_ok*int(tf_pb_s > dt - tf_sa)*int(tf_pb_s < dt)", "tf_pb_s", "tf_pb_v")
        lines += _take("tf_has", "dt - tf_sa", "tf_xa")  # last: tf_c = 1 when the arrival point won
    lines += ["tf_new = int(tf_bv > tf_vmax)", "tf_vmax = tf_new*tf_bv + (1 - tf_new)*tf_vmax",
              "tf_tmax = tf_new*(t + tf_bs) + (1 - tf_new)*tf_tmax"]
    if mode == "precise":
        lines += ["tf_kink = tf_new*tf_c + (1 - tf_new)*tf_kink",
                  "tf_vdl = tf_new*(tf_ai*exp(tf_sa/tau_s) - tf_xa)/tau_m + (1 - tf_new)*tf_vdl"]
    else:  # a grid maximum may sit on an arrival at the step end (its slope before: a backward difference)
        lines += ["tf_kink = 1", "tf_vdl = tf_new*(v - tf_v0)/dt + (1 - tf_new)*tf_vdl"]
    return "\n".join(lines)


def _synapse_snapshot(mode: str) -> str:
    """Per step, after the neuron found its maximum: eps at the running maximum when it moved.

    A maximum at an arrival (an inhibitory event turning a rise into a fall: V has a
    kink there) moves with that arrival a: Vhat = V_{without a}(a), so for the
    arriving synapse dVhat/dd is dV/dt just before a plus eps^d of its earlier
    arrivals at a, and dVhat/dw = eps^w(a) as usual (its new PSP starts at 0); the
    other synapses keep eps at the maximum. The arriving synapse is the one with an
    arrival within 1e-3 dt of the maximum (its traces are then read at that arrival).
    """
    if mode == "precise":
        lines = ["tf_o1 = tf_kink_post*int(abs(tf_t1 - tf_tmax_post) < 1e-3*dt)",
                 "tf_o2 = tf_kink_post*int(abs(tf_t2 - tf_tmax_post) < 1e-3*dt)*(1 - tf_o1)",
                 "tf_own = tf_o1 + tf_o2",
                 "tf_s = tf_o1*tf_t1 + tf_o2*tf_t2 + (1 - tf_own)*tf_tmax_post"]
        jump = "tf_own"
    else:  # grid: the step-end voltage does not yet feel the events delivered in this step (arriving at its end)
        lines = ["tf_own = tf_kink_post*clip(int(abs(tf_t1 - tf_tmax_post) < 1e-3*dt) + int(abs(tf_t2 - "
                 "tf_tmax_post) < 1e-3*dt), 0, 1)", "tf_s = tf_tmax_post - 1e-6*dt"]
        jump = "0"  # read before the arrival already
    return "\n".join(lines + [
        _trace("tf_sp", "p", "tf_s"), _trace("tf_sq", "q", "tf_s"),
        f"tf_sw = tf_new_post*{_kk()}*(tf_sp - tf_sq) + (1 - tf_new_post)*tf_sw",
        f"tf_sd = tf_new_post*(w*{_kk()}*(tf_sp/tau_m_post - tf_sq/tau_s_post - {jump}*(1/tau_m_post - "
        f"1/tau_s_post)) + tf_own*tf_vdl_post) + (1 - tf_new_post)*tf_sd",
    ])


def _loss_populations(loss) -> set:
    """Populations a loss reads (recursively through sums and scalings)."""
    if hasattr(loss, "terms"):
        return set().union(*(_loss_populations(t) for t in loss.terms))
    if hasattr(loss, "loss"):
        return _loss_populations(loss.loss)
    return {loss.population} if hasattr(loss, "population") else set()


def _plan(net: Network, rule: ThreeFactorRule, loss) -> dict:
    """Per learned projection: (eligibility through the pseudo-derivative?, snapshot at the maximum?)."""
    peak_pops = {name for name in _loss_populations(loss)}
    plan = {}
    for name in rule.projections:
        post = net[name.partition("->")[2]]
        plan[name] = (isinstance(post, LIF), isinstance(post, Readout) or post.name in peak_pops)
    return plan


def rule_extension(net: Network, rule: ThreeFactorRule, mode: str, loss=None) -> B.BuildExtension:
    """The equations and synaptic code of `rule` on `net` (mode 'precise' or 'grid')."""
    plan = _plan(net, rule, loss)
    neuron_eqs, synapse_eqs, on_pre, on_post = {}, {}, {}, {}
    for name, (pseudo, peak) in plan.items():
        post = name.partition("->")[2]
        synapse_eqs[name] = _SYNAPSE_STATE
        on_pre[name] = _on_pre(mode)
        if pseudo and rule.pseudo_derivative == "exact":
            on_post[name] = _on_post_exact(mode)
        eqs = neuron_eqs.get(post, "")
        if pseudo and rule.pseudo_derivative == "gaussian" and "tf_norm" not in eqs:
            eqs += _NEURON_GAUSS
        if peak and "tf_vmax" not in eqs:
            eqs += _NEURON_PEAK
        if eqs:
            neuron_eqs[post] = eqs
    return B.BuildExtension(neuron_eqs, synapse_eqs, on_pre, on_post)


def _add_code(objects: B.BrianObjects, net: Network, rule: ThreeFactorRule, loss, mode: str) -> None:
    """run_regularly code (at the end of each step) and initial values of the rule's variables."""
    b = B._brian()
    plan = _plan(net, rule, loss)
    runners = []
    done = set()
    for name, (pseudo, peak) in plan.items():
        post = name.partition("->")[2]
        group, syn = objects.groups[post], objects.synapses[name]
        syn.tf_t1 = FAR_PAST * b.second
        syn.tf_t2 = FAR_PAST * b.second
        gauss = pseudo and rule.pseudo_derivative == "gaussian"
        if post not in done:
            done.add(post)
            if "tf_norm" in group.variables:
                pop = net[post]
                sigma = rule.sigma * pop.theta
                group.tf_sigma = sigma
                group.tf_norm = 2.0 / (sigma * math.sqrt(2 * math.pi))
                group.tf_psir = (2.0 / (sigma * math.sqrt(2 * math.pi))
                                 * np.exp(-(pop.reset - pop.theta) ** 2 / (2 * sigma ** 2)))
                group.tf_psi0 = 2.0 / (sigma * math.sqrt(2 * math.pi)) * np.exp(-pop.theta ** 2 / (2 * sigma ** 2))
                runners.append(group.run_regularly(_neuron_gauss(mode), when="end", order=-1,
                                                   name=f"{group.name}_tf_gauss"))
                runners.append(group.run_regularly("tf_psi0 = tf_psi1", when="end", order=1,
                                                   name=f"{group.name}_tf_gauss_shift"))
            if "tf_vmax" in group.variables:
                runners.append(group.run_regularly(_neuron_peak(mode), when="end", order=-1,
                                                   name=f"{group.name}_tf_peak"))
                shift = "tf_v0 = v_exact\ntf_i0 = I_exact" if mode == "precise" else "tf_v0 = v"
                runners.append(group.run_regularly(shift, when="end", order=1, name=f"{group.name}_tf_peak_shift"))
        if gauss:
            runners.append(syn.run_regularly(_synapse_gauss(), when="end", order=0, name=f"{syn.name}_tf_gauss"))
        if peak:
            runners.append(syn.run_regularly(_synapse_snapshot(mode), when="end", order=0,
                                             name=f"{syn.name}_tf_peak"))
    objects.network.add(*runners)


# ---- running ------------------------------------------------------------------------------------------

def _check_loss(loss) -> None:
    if not isinstance(loss, Loss):
        raise ValueError(f"loss must be a neurodelay.losses.Loss, got {type(loss).__name__}")


def three_factor_gradients(net: Network, rule: ThreeFactorRule, inputs, duration, loss, labels=None, *,
                           mode: str = "precise", dt=1e-5, device: str = "runtime",
                           history: dict | None = None) -> ThreeFactorResult:
    """Run `rule` on a batch in Brian2 and return its gradient estimate (the end-of-trial update / -lr).

    Parameters
    ----------
    net : Network
        The network (unchanged by the rule), feedforward or recurrent (the traces of recurrent
        synapses are synaptic variables like the others; departure 5 of :mod:`neurodelay.plasticity`).
    rule : ThreeFactorRule
        What is learned and how (checked against `net`).
    inputs : SpikeTrains or dict
        Input spikes (s), as for :func:`neurodelay.brian.simulate`.
    duration : float
        Trial length (s or a Brian2 time), a whole number of steps.
    loss : Loss
        The loss giving the learning signal (first-spike losses on an LIF population,
        losses on readout maxima).
    labels : array, optional
        One label per trial, if the loss needs them.
    mode : {"precise", "grid"}
        Brian2 timing mode (see :mod:`neurodelay.brian`).
    dt : float
        Step (s).
    device : {"runtime", "cpp_standalone", "cuda_standalone"}
        Brian2 device. Standalone devices compile a project per call (in a temporary
        folder under the cache root) and run each trial with ``run_args``.
    history : dict, optional
        Spike-history length K per spiking population (precise mode).

    Returns
    -------
    ThreeFactorResult
        ``grads``: ``{(projection, kind): estimate}`` with the shapes and keys of
        :func:`neurodelay.gradients.loss_and_grad` (weights per synapse, 1/weight;
        synaptic delays per synapse and axonal delays per presynaptic neuron, 1/s),
        means over the trials.
    """
    if not isinstance(net, Network):
        raise ValueError(f"net must be a neurodelay Network, got {type(net).__name__}")
    if not isinstance(rule, ThreeFactorRule):
        raise ValueError(f"rule must be a ThreeFactorRule, got {type(rule).__name__}")
    rule.check(net)
    _check_loss(loss)
    if mode not in B.MODES:
        raise ValueError(f"mode must be one of {B.MODES}, got {mode!r}")
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    duration = float(as_seconds(duration, "duration", minimum=0.0, strictly=True))
    dt = float(as_seconds(dt, "dt", minimum=0.0, strictly=True))
    if abs(duration / dt - round(duration / dt)) > 1e-6:
        raise ValueError(f"duration ({duration} s) must be a whole number of steps dt ({dt} s)")
    merged = merge_inputs(net, inputs, flatten(net))
    if merged.n_trials == 0:
        raise ValueError("the batch has no trials")
    sources_in = _split_sources(net, merged)
    rows = max([rows_needed(t) for t in sources_in.values()] + [2])
    hist = {}
    if mode == "precise":
        hist = B.default_history(net, dt, sources_in)
        hist.update(history or {})
    extension = rule_extension(net, rule, mode, loss)
    results, elig, tmax = _run(net, rule, loss, mode, dt, device, hist, rows, extension, sources_in, merged,
                               duration)
    record = assemble_record(net, merged, results, duration, engine=f"brian-{mode}-{device}-three-factor")
    values, sources = loss.value_and_sources(record, labels)
    offsets = net.offsets()
    if len(sources.jump_trial):
        # point sources must read V at its maximum, which Brian2 tracked (to within a step: the record's
        # maximum is recomputed from its spikes, the tracked one from the step-end states)
        tracked = np.full((record.n_trials, record.flat.n_neurons), np.nan)
        for name, times in tmax.items():
            tracked[:, offsets[name]: offsets[name] + net[name].n] = times
        at = tracked[sources.jump_trial, sources.jump_neuron]
        off = ~(np.abs(at - sources.jump_time) <= 2 * dt) & (sources.jump_value != 0)
        if np.any(off):
            raise ValueError("the loss reads V at times other than its maximum over the trial (or of a neuron "
                             "the rule does not track); the three-factor rule supports point sources at the "
                             "maximum of V of the postsynaptic neurons of learned projections only")
    # the event engine's learning signals (the same code, so both implementations share them)
    signal, point = learning_signals(net, record, sources, feedback_weights(net, rule, record.flat))
    grads = {}
    for name, kinds in rule.updates:
        proj = net.projection(*name.split("->"))
        post = offsets[proj.post] + proj.post_idx
        e = elig[name]
        per_delay = (signal[:, post] * e["ed"] + point[:, post] * e["sd"]).mean(axis=0)
        for kind in kinds:
            key = check_key(net, (name, kind))
            if kind == "weight":
                grads[key] = (signal[:, post] * e["ew"] + point[:, post] * e["sw"]).mean(axis=0)
            elif kind == "synaptic":
                grads[key] = per_delay.copy()
            else:
                grads[key] = np.bincount(proj.pre_idx, per_delay, minlength=net[proj.pre].n)
    return ThreeFactorResult(float(np.mean(values)), grads, record, elig)


def _read_eligibility(objects, net: Network, rule: ThreeFactorRule) -> dict:
    out = {}
    for name in rule.projections:
        syn = objects.synapses[name]
        order = B.synapse_order(net.projection(*name.split("->")))
        lost = np.asarray(syn.tf_lost[:], dtype=float)
        if lost.sum():
            raise TraceWindowError(f"{name}: {int(lost.sum())} arrivals left the two-slot trace window while "
                                   f"still needed (more than two events of one synapse in flight); use a "
                                   f"smaller dt")
        values = {}
        for var in ("ew", "ed", "sw", "sd"):
            v = np.empty(len(order))
            v[order] = np.array(np.asarray(getattr(syn, f"tf_{var}")[:]), dtype=float, copy=True)
            values[var] = v
        out[name] = values
    return out


def _run(net, rule, loss, mode, dt, device, hist, rows, extension, sources_in, merged, duration):
    b = B._brian()
    results, per_trial, maxima = [], [], []
    if device == "runtime":
        with runtime_context():
            objects = B.build_objects(net, mode, dt, history=hist, input_rows=rows, extension=extension)
            _add_code(objects, net, rule, loss, mode)
            objects.network.store("nd_tf_initial")
            for k in range(merged.n_trials):
                objects.network.restore("nd_tf_initial")
                tables = {name: spike_table(sources_in[name], k, rows) for name in objects.tables}
                assign_values(objects, net, tables)
                objects.network.run(duration * b.second, namespace={})
                check_counters(objects)
                results.append(read_trial(objects, duration))
                per_trial.append(_read_eligibility(objects, net, rule))
                maxima.append(_read_maxima(objects))
    else:
        folder = cache_root() / "brian" / device
        folder.mkdir(parents=True, exist_ok=True)
        directory = tempfile.mkdtemp(prefix=f"three-factor-{mode}-", dir=folder)
        try:
            dev, objects = _standalone_build(net, rule, loss, mode, dt, device, hist, rows, extension, duration,
                                             directory)
            sizes = {objects.groups[p.name].name: p.n for p in net.populations}
            sizes.update({objects.synapses[p.name].name: p.n_syn for p in net.projections})
            for k in range(merged.n_trials):
                tables = {name: spike_table(sources_in[name], k, rows) for name in objects.tables}
                args = standalone_run_args(objects, net, tables, sizes)
                try:
                    dev.run(run_args=args, with_output=False)
                    check_counters(objects)
                    results.append(read_trial(objects, duration))
                    per_trial.append(_read_eligibility(objects, net, rule))
                    maxima.append(_read_maxima(objects))
                finally:
                    remove_run_arg_files(dev)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    elig = {name: {var: np.stack([t[name][var] for t in per_trial]) for var in ("ew", "ed", "sw", "sd")}
            for name in rule.projections}
    tmax = {name: np.stack([m[name] for m in maxima]) for name in (maxima[0] if maxima else {})}
    return results, elig, tmax


def _standalone_build(net, rule, loss, mode, dt, device, hist, rows, extension, duration, directory,
                      compile: bool = True):
    """Generate (and compile) the standalone project of the rule on `net` in `directory`; returns the
    device (for ``device.run(run_args=...)``) and the Brian2 objects. Parameters and inputs are
    run_args, so the project does not depend on their values."""
    b = B._brian()
    with standalone_device(device, mode == "precise") as dev:
        objects = B.build_objects(net, mode, dt, history=hist, input_rows=rows, set_values=False,
                                  clock=dev.defaultclock, extension=extension)
        _add_code(objects, net, rule, loss, mode)
        dev.apply_run_args()  # after connect(), before run(): new delays reach the queue
        objects.network.run(duration * b.second, namespace={})
        dev.build(directory=str(directory), compile=compile, run=False, with_output=False)
    return dev, objects


def _read_maxima(objects) -> dict:
    """Population name -> time (s) of each neuron's running maximum of V (populations that track it)."""
    from brian2 import second

    return {name: np.array(np.asarray(group.tf_tmax[:] / second), dtype=float, copy=True)
            for name, group in objects.groups.items() if "tf_tmax" in group.variables}
