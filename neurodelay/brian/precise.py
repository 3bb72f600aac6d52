"""Exact (sub-step) event timing written in plain Brian2 code: the equations and code strings.

Brian2 is clock-driven: in the step labelled ``t`` the state is advanced to
``T = t + dt``, thresholds are tested, synaptic events are delivered, and so on.
The precise mode keeps Brian2's schedule and recovers the exact event times of
the continuous model (see :mod:`neurodelay.network`) with these rules:

* **Spike windows.** A spike emitted in the step labelled ``t`` crossed the
  threshold at an exact time ``t_s`` in the window ``(t, t + dt]``; ``t_s`` is
  found on the exact two-exponential trajectory (linear guess, then Newton
  steps) and stored in a per-neuron history of the last ``K`` spikes (``ts0``
  is the newest; the step it was emitted in follows from it, as it lies
  strictly inside the window). ``K`` must exceed the number of a neuron's
  spikes still in flight; an overflow is counted (``overflow``) and reported
  as an error after the run. Spike
  sources know their times in advance and emit one step ahead (window
  ``(t + dt, t + 2 dt]``); they store the step of each spike (``tl0``...) as
  two input spikes within one step make the second one late.
* **Early delivery.** A synapse with total delay ``d`` is queued with
  ``D = max(floor(d/dt) - 1, 0)`` steps (from sources ``floor(d/dt)``; kept
  in the synaptic variable ``queue_steps`` as well as in ``delay``, which
  brian2cuda does not keep on the GPU) and its true delay is the synaptic
  variable ``delay_exact``. With ``d >= dt`` (from sources: any ``d``) every
  event is then delivered one or two steps *before* it arrives (arrival ``t_s + d`` lies in
  ``(T, T + 2 dt)``); it is added to ``I`` and ``V`` by superposition, as the
  values they will have once the arrival happens, extrapolated back to ``T``:
  ``I += w exp(-u/tau_s)``, ``V += w kk (exp(-u/tau_m) - exp(-u/tau_s))`` with
  ``u = T - t_arrival`` (negative) and ``kk = tau_s / (tau_m - tau_s)``; the
  same terms are also kept aside (``f2v``, ``f2i``) for events that arrive
  after the next step. So the *exact* state at the end of every step
  (``v_exact``, ``I_exact``) is known: the total minus what has not arrived
  yet. (Delays below ``dt`` between LIF neurons are delivered late, by up to
  ``dt``: exact timing needs them to be at least one step.)
* **Two trajectories per step.** Trajectory A is the exact state at the step
  start evolved without the step's arrivals (exact before them), trajectory B
  the exact end state extrapolated back (exact after them). A and B differ by
  the step's arrivals only, so the arrival time follows from their difference
  (one arrival: exactly; several: an effective time), and the true trajectory
  is A before it and B after it. The crossing is A's if A is above threshold
  at the arrival, else B's after it; a crossing that returns below threshold
  within the step (B peaking above threshold inside it) counts too. Threshold
  tests that need this are done by a custom event (``substep``) before
  Brian2's threshold, for the few neurons concerned.
* **Refractoriness.** While refractory, ``v`` is held at the reset (arrivals
  still add to ``I``); in the step where the refractory period ends, V is
  re-integrated exactly from the reset with the current that arrived before
  the end, while arrivals after it (told apart by their time, as above) keep
  their own effect.

What is not exact: several events of one neuron inside one step (two arrivals
around a crossing, an arrival and a crossing right after the end of the
refractory period, two spikes of one input neuron within one step) are
resolved approximately; these errors vanish with dt. Against the exact event
engine, spikes agree to about 1e-15 s in typical networks at dt = 0.01 ms.

All code below uses only Brian2 equations, ``run_regularly``, custom events and
``on_pre`` statements, so it runs under the runtime device, C++ standalone and
brian2cuda alike.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["SYNAPSE_EQUATIONS", "NEWTON_STEPS", "FAR_PAST", "FAR_PAST_STEP", "queue_steps", "lif_equations",
           "readout_equations",
           "source_equations", "history_equations", "advance_code", "readout_advance_code",
           "substep_condition", "substep_code", "spike_condition", "spike_code", "source_condition",
           "source_spike_code", "on_pre_code", "history_length"]

#: Newton iterations after the linear guess when locating a crossing inside one step
NEWTON_STEPS = 3
#: time (s) and step label of empty history slots: far before any delivery
FAR_PAST = -1e6
FAR_PAST_STEP = -(2 ** 30)


#: model of a precise projection's Synapses (the pathway's own ``delay`` is the queue wait)
SYNAPSE_EQUATIONS = """
w : 1
delay_exact : second  # the true total delay
queue_steps : integer  # the queue wait in steps (= delay/dt)
"""


def queue_steps(delay: np.ndarray, dt: float, from_source: bool = False) -> np.ndarray:
    """Steps each event waits in Brian2's spike queue in precise mode.

    From an LIF neuron (spike window ``(t, t + dt]``): max(floor(d/dt) - 1, 0);
    from a spike source, which emits one step ahead (window ``(t + dt, t + 2 dt]``,
    its times are known in advance): floor(d/dt). Either way an event with
    d >= dt (sources: any d >= 0) is delivered one or two steps before it
    arrives. delay, dt in seconds; the small tolerance keeps exact multiples of
    dt (up to rounding) on the intended side.
    """
    steps = np.floor(np.asarray(delay, dtype=float) / dt + 1e-9).astype(np.int64)
    return steps if from_source else np.maximum(steps - 1, 0)


def history_length(queue_span: float, refractory: float, dt: float, cap: int) -> int:
    """Default K for a spiking population: spikes that can still be in flight, plus one.

    queue_span: longest queue wait of an outgoing event (s); refractory: the
    shortest refractory period (s). Two spikes of one neuron are at least
    max(refractory, dt) apart in exact time and their labels at least that
    minus one step apart. Capped at `cap` (overflow is detected at run time).
    """
    if queue_span <= 0:
        return 1
    spacing = max(refractory - dt, dt)
    return int(min(math.floor(queue_span / spacing + 1e-9) + 2, cap))


def history_equations(k: int, labels: bool) -> str:
    """The K-slot history of exact spike times (ts*), with (labels) or without their step labels
    (tl*: the time step in which each was emitted), plus counters.

    An LIF spike emitted in step n has its time in (n dt, n dt + dt], so its
    label follows from its time and is not stored; a source spike may be
    emitted later than its window (two spikes of one input neuron within one
    step), so sources store labels.
    """
    lines = [f"ts{n} : second" for n in range(k)] + ([f"tl{n} : integer" for n in range(k)] if labels else [])
    lines += ["hist_steps : integer (constant)  # longest queue wait (steps) of this neuron's outgoing events",
              "overflow : 1  # spikes dropped from the history while still in flight (must stay 0)",
              "lost : 1  # deliveries whose spike was not found in the history (must stay 0)"]
    return "\n".join(lines)


_STATE = """
v : 1  # membrane potential plus the extrapolated effect of delivered, not yet arrived events
I : 1  # synaptic current, idem
v_exact : 1  # exact membrane potential at the end of the last step
I_exact : 1  # exact synaptic current at the end of the last step
f2v : 1  # part of v due to delivered events arriving after the next step
f2i : 1  # part of I, idem
tau_m : second (constant)
tau_s : second (constant)
kk : 1 (constant)  # tau_s / (tau_m - tau_s)
em : 1 (constant)  # exp(-dt/tau_m)
es : 1 (constant)  # exp(-dt/tau_s)
pk : 1 (constant)  # kk * (em - es): V after one step of a unit current from V = 0
rate_m : hertz (constant)  # 1/tau_m (multiplications are cheaper than divisions per event)
rate_s : hertz (constant)  # 1/tau_s
"""


def readout_equations() -> str:
    """State of a precise non-spiking (readout) population."""
    return _STATE


def lif_equations(k: int) -> str:
    """State of a precise LIF population with a K-slot spike history."""
    return _STATE + """
theta : 1 (constant)
v_reset : 1 (constant)
tau_ref : second (constant)
ref_end : second  # exact end of the current refractory period
sv : 1  # exact V at the end of this step (trajectory B end)
si : 1  # exact I at the end of this step
av : 1  # V at the end of this step without this step's arrivals (trajectory A end)
ai : 1  # I, idem
graze : 1  # 1 when B peaks above threshold inside this step
graze_u : second  # time from that peak to the step end
graze_v : 1  # V at that peak
fire : 1  # 1 when the substep code found a crossing the step-end values do not show
substep : integer  # > 0 when this step needs the substep code
imt : 1  # I - theta at the last spike
""" + history_equations(k, labels=False)


def source_equations(k: int) -> str:
    """State of a spike source fed from a lookup table of exact times."""
    return "cnt : integer  # spikes of this neuron emitted so far\n" + history_equations(k, labels=True)


# ---- neuron code ----------------------------------------------------------------------------------

#: run_regularly in the 'groups' slot: advance the total state, form the exact state (the end
#: of trajectory B) and the end of trajectory A, and flag the neurons that need the substep code
_ADVANCE = """
v_next = v*em + I*pk
I = I*es
v = v_next
f2v_next = f2v*em + f2i*pk
f2i = f2i*es
sv = v - f2v_next
si = I - f2i
av = v_exact*em + I_exact*pk
ai = I_exact*es
f2v = 0
f2i = 0
v_exact = sv
I_exact = si
graze = 0
fire = 0
substep = int(ref_end > t) + int(sv < theta)*(int(av >= theta) + int(si < sv)*int(si*em > sv*es - pk*si))
"""

_READOUT_ADVANCE = """
v_next = v*em + I*pk
I = I*es
v = v_next
f2v_next = f2v*em + f2i*pk
f2i = f2i*es
v_exact = v - f2v_next
I_exact = I - f2i
f2v = 0
f2i = 0
"""


def advance_code() -> str:
    """Per-step update of a precise LIF population (before thresholds)."""
    return _ADVANCE


def readout_advance_code() -> str:
    """Per-step update of a precise readout population."""
    return _READOUT_ADVANCE


def _arrival_point(u_lo: str) -> str:
    """Code for the lag ``s_a`` (before the step end) of this step's arrivals, and V there (``xa``).

    Trajectories A and B differ only by this step's arrivals. For one arrival
    of weight w at lag s: ``dI = w e^(-s/tau_s)`` and
    ``dV = w kk (e^(-s/tau_m) - e^(-s/tau_s))``, so
    ``s = log(1 + dV/(kk dI)) / (1/tau_s - 1/tau_m)`` exactly (several
    arrivals give an effective lag). Without arrivals s_a is the window start.
    A and B agree at the arrival; ``xa`` is their V there.
    """
    return "\n".join([
        "d_i = si - ai",
        "has_arr = int(abs(d_i) > 1e-12)",
        # denominators kept away from zero with clip (Brian2 may reorder masked sums)
        "d_den = clip(abs(d_i), 1e-12, 1e30)*(2*int(d_i >= 0) - 1)",
        "s_a = log(clip(1 + (sv - av)/(kk*d_den), 1e-30, 1e30))/(1/tau_s - 1/tau_m)",
        f"s_a = has_arr*clip(s_a, 0*second, {u_lo}) + (1 - has_arr)*({u_lo})",
        "xa = av*exp(s_a/tau_m) + ai*kk*(exp(s_a/tau_m) - exp(s_a/tau_s))",
    ])


#: neurons that need sub-step work before the threshold (flagged by the advance code):
#: refractory ones; those whose trajectory A ends above threshold but B does not (did A
#: cross before this step's arrivals?); those whose B rises at the window start and falls
#: at its end (a peak inside)
_SUBSTEP_CONDITION = "substep > 0"

_SUBSTEP = "\n".join([
    "is_refr = int(ref_end > t)",
    # when this step's arrivals came (A and B differ by them only)
    _arrival_point("dt"),
    # exact end of refractoriness inside this step: V restarts from the reset with the current that
    # arrived before ref_end; arrivals after ref_end keep their own (unclamped) effect on V
    "r = clip(t + dt - ref_end, 0*second, dt)",
    "after_end = int(s_a < r)",
    "i_base = after_end*ai + (1 - after_end)*si",
    "v_refr = v_reset*exp(-r/tau_m) + i_base*exp(r/tau_s)*kk*(exp(-r/tau_m) - exp(-r/tau_s))",
    "v_refr = v_refr + after_end*(sv - av)",
    # peak of B inside the step (from B's state at the step start)
    "i_start = si/es",
    "v_start = (sv - pk*i_start)/em",
    "den = v_start*(tau_m - tau_s) + i_start*tau_s",
    "den_ok = int(den > 0*second)",
    "ratio = den_ok*(tau_m - tau_s)*(i_start - v_start)/clip(den, 1e-30*second, 1e30*second)",
    "s_peak = clip(log(clip(1 + ratio, 1e-30, 1e30))*tau_m*tau_s/(tau_m - tau_s), 0*second, dt)",
    "v_peak = v_start*exp(-s_peak/tau_m) + i_start*kk*(exp(-s_peak/tau_m) - exp(-s_peak/tau_s))",
    # B is the true trajectory only after this step's arrivals: its peak must come after them
    "graze = (1 - is_refr)*den_ok*int(v_peak >= theta)*int(s_peak > 0*second)*int(dt - s_peak < s_a)",
    "graze_u = dt - s_peak",
    "graze_v = v_peak",
    "fire = (1 - is_refr)*clip(int(xa >= theta) + graze, 0, 1)",
    "v = v + is_refr*(v_refr - sv)",
    "sv = sv + is_refr*(v_refr - sv)",
    "av = av + is_refr*(v_refr - av)",
    "ai = ai + is_refr*(si - ai)",
    "v_exact = sv",
])


def substep_condition() -> str:
    """Condition of the 'substep' event (refractory, ambiguous or possibly grazing neurons)."""
    return _SUBSTEP_CONDITION


def substep_code() -> str:
    """Code of the 'substep' event: exact end of refractoriness, crossings hidden inside the step."""
    return _SUBSTEP


def spike_condition() -> str:
    """Threshold of a precise LIF population: V at the step end above threshold, or a crossing
    inside the step found by the substep code, once refractoriness is over."""
    return "ref_end < t + dt and (sv >= theta or fire > 0.5)"


def _crossing(p: str, v_end: str, i_end: str, u_hi: str, x_hi: str, u_lo: str, x_lo: str) -> str:
    """Code locating the crossing of one trajectory, as the time ``{p}_u`` before the step end.

    The trajectory has end state (v_end, i_end) at T = t + dt; going back by u
    its V is ``v_end e^(u/tau_m) + i_end kk (e^(u/tau_m) - e^(u/tau_s))``. The
    crossing lies in the bracket [u_hi, u_lo] with V(u_hi) = x_hi >= theta
    and V(u_lo) = x_lo < theta: linear guess, then Newton steps clipped to the
    bracket. All results are finite for any input, so masked use is safe.
    """
    lines = [
        f"{p}_dx = {x_hi} - ({x_lo})",
        f"{p}_u = {u_hi} + ({u_lo} - {u_hi})*clip(({x_hi} - theta)/clip({p}_dx, 1e-30, 1e30), 0, 1)",
    ]
    for _ in range(NEWTON_STEPS):
        lines += [
            f"{p}_em = exp({p}_u/tau_m)",
            f"{p}_es = exp({p}_u/tau_s)",
            f"{p}_x = {v_end}*{p}_em + {i_end}*kk*({p}_em - {p}_es)",
            f"{p}_slope = ({p}_x - {i_end}*{p}_es)/tau_m",
            f"{p}_ok = int({p}_slope < 0/second)",
            f"{p}_u = clip({p}_u - {p}_ok*({p}_x - theta)/clip({p}_slope, -1e30/second, -1e-30/second), "
            f"{u_hi}, {u_lo})",
        ]
    lines.append(f"{p}_i = {i_end}*exp({p}_u/tau_s)")
    return "\n".join(lines)


def _shift_history(k: int, new_time: str, labels: bool) -> str:
    """Count an overflow if the oldest slot is still in flight, then push new_time (and this step).

    Without labels (LIF: time in (label dt, label dt + dt]), the oldest spike
    is in flight exactly when ``ts + hist_steps dt > t``.
    """
    last = k - 1
    if labels:
        lines = [f"overflow += int(tl{last} + hist_steps >= t_in_timesteps)"]
    else:
        lines = [f"overflow += int(ts{last} + hist_steps*dt > t)"]
    for n in range(last, 0, -1):
        lines += [f"ts{n} = ts{n - 1}"] + ([f"tl{n} = tl{n - 1}"] if labels else [])
    lines += [f"ts0 = {new_time}"] + (["tl0 = t_in_timesteps"] if labels else [])
    return "\n".join(lines)


def spike_code(k: int) -> str:
    """Code run for each spiking neuron before the synapses: exact time, reset, history.

    The true trajectory in the step is A up to this step's arrivals (lag s_a)
    and B after them: the crossing is A's if A is already above threshold at
    the arrivals (``on_a``), else B's, after them.
    """
    return "\n".join([
        "u_lo = dt - clip(ref_end - t, 0*second, dt)",
        _arrival_point("u_lo"),
        "on_a = int(xa >= theta)",
        "a_xlo = av*exp(u_lo/tau_m) + ai*kk*(exp(u_lo/tau_m) - exp(u_lo/tau_s))",
        _crossing("a", "av", "ai", "s_a", "xa", "u_lo", "a_xlo"),
        _crossing("b", "sv", "si", "graze*graze_u", "(graze*graze_v + (1 - graze)*sv)", "s_a", "xa"),
        "u_spike = on_a*a_u + (1 - on_a)*b_u",
        # strictly inside the step's window, so that the spike's step follows from its time
        "u_spike = clip(u_spike, 1e-9*dt, clip(u_lo - 1e-9*dt, 1e-9*dt, dt))",
        "t_spike = t + dt - u_spike",
        "imt = on_a*a_i + (1 - on_a)*b_i - theta",
        "ref_end = t_spike + tau_ref",
        "r = clip(t + dt - ref_end, 0*second, dt)",
        # crossing on A: this step's arrivals came after the spike and keep their own effect on V
        "i_base = on_a*ai + (1 - on_a)*si",
        "v_after = v_reset*exp(-r/tau_m) + i_base*exp(r/tau_s)*kk*(exp(-r/tau_m) - exp(-r/tau_s))",
        "v_after = v_after + on_a*int(r > 0*second)*(sv - av)",
        "v = v + v_after - sv",
        "v_exact = v_after",
        "sv = v_after",
        "graze = 0",
        "fire = 0",
        _shift_history(k, "t_spike", labels=False),
    ])


# ---- spike sources ------------------------------------------------------------------------------

def source_condition(lookup: str, precise: bool) -> str:
    """Threshold of a table-driven source: its next time (the expression `lookup`, s) is due.

    precise: in the window (t + dt, t + 2 dt] or earlier (one step ahead, see
    :func:`queue_steps`); grid: the nearest step (like SpikeGeneratorGroup).
    """
    return f"{lookup} <= t + 2*dt" if precise else f"{lookup} < t + 0.5*dt"


def source_spike_code(lookup: str, k: int) -> str:
    """Reset of a precise source: push the exact time into the history, advance the counter."""
    return _shift_history(k, lookup, labels=True) + "\ncnt += 1"


# ---- synapses -----------------------------------------------------------------------------------

def on_pre_code(k_pre: int, labels: bool, count_lost: bool = True) -> str:
    """on_pre of a precise projection whose source keeps a K-slot history.

    Picks the stored spike emitted ``queue_steps`` steps ago (the queue wait,
    equal to ``delay``/dt): with labels (sources), the one whose step label is
    the current step minus the queue wait; without (LIF), the one whose time
    lies in that step's window. Computes the exact arrival ``t_s + delay_exact`` and adds its
    effect on I and V at the step end by superposition (see the module
    docstring). count_lost: count a spike found zero or two times in the
    source's ``lost`` (a check; brian2cuda cannot run on_pre code that writes
    presynaptic variables in heterogeneous-delay mode, so it is left out there).
    """
    # the queue wait in steps is a synaptic variable of its own: brian2cuda frees the device copy
    # of `delay` once the spike queue is built, so on_pre code must not read it
    if labels:
        sel = ["emitted = t_in_timesteps - queue_steps"]
        sel += [f"sel{n} = int(tl{n}_pre == emitted)" for n in range(k_pre)]
    else:
        sel = ["window_mid = t - queue_steps*dt + 0.5*dt"]
        sel += [f"sel{n} = int(abs(ts{n}_pre - window_mid) <= 0.5*dt)" for n in range(k_pre)]
    hits = " + ".join(f"sel{n}" for n in range(k_pre))
    t_sp = " + ".join(f"ts{n}_pre*sel{n}" for n in range(k_pre))
    return "\n".join(sel + [
        f"u = t + dt - ({t_sp}) - delay_exact",
        "e_s = exp(-u*rate_s_post)",
        "e_m = exp(-u*rate_m_post)",
        "d_i = w*e_s",
        "d_v = w*kk_post*(e_m - e_s)",
        "I_post += d_i",
        "v_post += d_v",
        "far = int(u < -dt)",
        "f2i_post += far*d_i",
        "f2v_post += far*d_v",
    ] + ([f"lost_pre += 1 - ({hits})"] if count_lost else []))
