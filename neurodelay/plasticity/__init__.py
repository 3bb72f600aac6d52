r"""Online learning rules that act on an unchanged network: the three-factor rule.

A rule is a frozen description (:class:`ThreeFactorRule`) naming the projections and
parameter kinds it updates. :func:`three_factor_gradients` runs it on a batch in the
exact event engine (a plastic variant of the event loop, :mod:`neurodelay.events.plastic`)
or, with ``engine="brian"``, as plain Brian2 code (:mod:`neurodelay.brian.plasticity`), and
returns its update as a gradient estimate with the keys of
:func:`neurodelay.gradients.loss_and_grad`, so the two can be swapped (in the
trainer: ``neurodelay train TASK --rule three-factor``) or compared key by key.

Derivation
----------
Model (:mod:`neurodelay.network`): ``tau_m dV/dt = -V + I``, ``tau_s dI/dt = -I``; an arrival
at ``a = t_i^k + d_ji`` (d the total delay: synaptic + axonal + dendritic) makes ``I_j`` jump by
``w_ji``, which adds ``w_ji c (exp(-(t-a)/tau_m) - exp(-(t-a)/tau_s))`` to ``V_j`` for t > a,
with ``c = tau_s / (tau_m - tau_s)``.

**Traces** (per synapse, two numbers; no list of events)::

    p_ji(t) = sum_{a <= t} exp(-(t-a)/tau_m)       q_ji(t) = sum_{a <= t} exp(-(t-a)/tau_s)

each +1 at an arrival on ji and decaying in between. Differentiating the sum of PSPs,

    eps^w_ji(t) = dV_j/dw_ji  = c (p_ji - q_ji)
    eps^d_ji(t) = dV_j/dd_ji  = w_ji c (p_ji/tau_m - q_ji/tau_s)

(the derivative of a PSP with respect to its own arrival time, the same for the synaptic,
axonal and dendritic part of d_ji; an axonal delay d_i sums over its outgoing synapses,
``dd_i = sum_j dd_ji``). Both are exact as long as nothing but the arrivals changes V_j,
i.e. up to j's first spike.

**Pseudo-derivative.** A spike of j at t_s where V_j reaches theta with slope
``Vdot = (I_j - theta)/tau_m`` moves by ``dt_s/dx = -eps^x_ji(t_s) / Vdot`` (implicit
function theorem on ``V_j(t_s; x) = theta``). The rule accumulates the *advance*

    E^x_ji = sum_s eps^x_ji(t_s) / Vdot_j(t_s-)                         ("exact")
           = integral_0^T delta(V_j(t) - theta) eps^x_ji(t) dt  over rising crossings

or, with the one-sided Gaussian surrogate ``psi(V) = 2 N(V; theta, (sigma theta)^2)`` for
``V <= theta`` (0 above; the factor 2 makes the integral over one crossing tend to 1/Vdot
as sigma -> 0),

    E^x_ji = integral_0^T psi(V_j(t)) eps^x_ji(t) dt                     ("gaussian")

Both are linear in the traces, so the rule keeps per synapse only the two integrals
``A_ji = int psi p_ji dt`` and ``B_ji = int psi q_ji dt`` (exact mode: the sums of
``p_ji(t_s)/Vdot``, ``q_ji(t_s)/Vdot``), and ``E^w = c (A - B)``,
``E^d = w c (A/tau_m - B/tau_s)`` at the end. They are kept *lazily*: between two events of j,
V_j is closed form and ``p_ji(t) = p_ji(t0) exp(-(t-t0)/tau_m)``, so per neuron the
cumulative integrals ``G_m(t) = int psi(V_j(u)) exp((u - t_ref)/tau_m) du`` (and ``G_s``) are
enough (16-point Gauss-Legendre per piece of each inter-event interval, restricted to where
V_j > theta - 8 sigma theta; an exact-mode spike adds ``exp((t_s - t_ref)/tau)/Vdot``); a
synapse settles ``A += p e^{-(t0 - t_ref)/tau_m} (G_m(t) - G_m(t0))`` only at its own arrivals
and at the end of the trial (and when t_ref is moved on to keep the exponentials finite,
O(fan-in) every few hundred tau_s). Work per arrival O(1) (exact mode: O(1) per spike too),
per interval of a neuron one quadrature; memory per trial O(synapses + neurons), independent
of the number of events.

**Readout synapses** (losses on the maximum of a readout's voltage, and the missing-spike
penalty of the first-spike losses, which reads the maximum of a silent LIF neuron's V) need
no pseudo-derivative: ``dVhat_k/dx = eps^x_kj(that_k)`` at the time ``that_k`` of the maximum
(exact: dV_k/dt = 0 there). Each synapse keeps a snapshot of (p, q) at its neuron's running
maximum, taken at its own arrivals (O(1)); at the end the trace at the final ``that_k`` is
the decayed current trace or that snapshot. Where the maximum is a kink (an inhibitory
arrival on synapse kj turns V down at ``that_k``) it moves with that arrival, and the delay
term of that synapse is ``dV_k/dt(that_k-) + eps^d_kj(that_k-)`` instead (the slope just
before the kink is kept with the maximum).

**Learning signal** (third factor), one per neuron and trial, from the loss's
:class:`~neurodelay.record.AdjointSources` on the trial's record. The rule's gradient
estimate is ``grad x_ji = L_j E^x_ji + sum_{jumps of j} g eps^x_ji(t_jump)`` (the update is
``-lr`` times it), with

* an output LIF neuron: ``L_j = -sum_s dL/dt_s`` (the loss's sensitivity to advancing j's
  spikes: E is an advance, ``-dt/dx``);
* a point voltage source ``g = dL/dV_j(t)`` (readout maxima, missing-spike penalty): its own
  term above, exact;
* a hidden neuron: ``L_j = sum_k B_kj err_k`` over the synapses j -> k into neurons that
  have an error, ``err_k = L_k + sum_{jumps of k} g`` ("earlier/more" has the same sign
  for both), with ``B = w`` (symmetric feedback, current weights, parallel synapses summed)
  or B fixed random (see :class:`ThreeFactorRule`).

Departures from the exact gradient
----------------------------------
1. The traces ignore the reset, the refractory clamp and the dependence of j's earlier
   spikes on the parameter (e-prop's approximation): exact up to j's first spike.
2. Gaussian mode: sub-threshold excursions within a few sigma of theta count, and a crossing
   counts by the integral of psi along it instead of 1/Vdot; sigma -> 0 recovers "exact".
3. One learning signal per neuron and trial (the sum of its spikes' dL/dt) instead of one per
   spike; hidden neurons get the output error through B, once (no propagation of spike-time
   changes through the hidden layer's dynamics; deeper layers get the error of the layer
   above through its B, a linear chain, not the adjoint).
4. The readout terms and point sources are evaluated at the *current* times of the maxima.
5. Recurrent projections (those on a cycle of the population graph, e.g. ``hidden->hidden``;
   :func:`~neurodelay.plasticity.signals.recurrent_projections`), as in e-prop: the
   traces of a recurrent synapse i -> j are the same local p_ji, q_ji, driven by its own
   arrivals (i's spikes, delayed), so ``E^x_ji`` is the *direct* dependence of j's spikes on x
   through that synapse only; the learning signal of j is the one above, from the error of
   the populations outside j's recurrent group that j projects to, through B (and j's own
   spike-time sources, e.g. a spike-count regulariser); no error is fed back along recurrent
   synapses. Ignored: every indirect path, x -> t_j -> arrivals at k (j -> k recurrent) -> t_k
   -> ... -> loss. Each such path crosses at least one recurrent synapse k <- j and carries
   the factor ``dt_k/dt_j``, proportional to w_kj (the PSP it delivers, times 1/Vdot_k);
   with all recurrent weights 0 the ignored part is exactly 0, and its size grows with them.
   This is what limits the rule on the recurrent digits task (``python bench/online_departures.py``,
   seeds 0-2): exact training makes the recurrent weights 4.6x larger (root mean square 0.088 ->
   0.408), and the cosine between the rule's update and the exact gradient falls from 0.86 / 0.77 /
   0.46 (input weights / recurrent weights / recurrent delays, initial network) to 0.18 / 0.14 /
   -0.01; on the same trained networks with their recurrent weights set to 0 it is 0.88 / 0.86
   (weights), and the exact pseudo-derivative does not help (0.19 / 0.21 / 0.07). Feeding the
   per-trial error back along the recurrent synapses as along feedforward ones (1-4 hops) made the
   cosine worse (seed 0, trained network: 0.36 -> between 0.12 and -0.28 for the input weights; a prototype,
   not kept), presumably because whether a recurrent spike advances or delays its target's spikes
   depends on its timing, which one signal per neuron and trial cannot carry.

Hence: on a one-layer network whose outputs spike at most once, with a first-spike loss and
``pseudo_derivative="exact"``, departures 1-3 vanish and the estimate equals the exact
EventProp gradient (checked to ~1e-12 in tests/test_plasticity.py); readout synapses are exact
in every mode. The same holds with a recurrent projection onto the outputs whose weights are 0
(departure 5 vanishes too): the recurrent weights' estimate, ``-dL/dt_j eps^w_ji(t_j)/Vdot``,
is then their exact gradient (tests/test_plasticity.py; with nonzero recurrent weights the
test reports the cosine).
"""

from .rule import APPLY_MODES, FEEDBACKS, PSEUDO_DERIVATIVES, RULE_KINDS, ThreeFactorRule
from .signals import feedback_weights, learning_signals, recurrent_projections
from .three_factor import ENGINES, three_factor_gradients
from .alignment import cosine, cosine_to_exact

__all__ = ["ThreeFactorRule", "three_factor_gradients", "cosine_to_exact", "cosine", "feedback_weights",
           "learning_signals", "recurrent_projections", "RULE_KINDS", "PSEUDO_DERIVATIVES", "FEEDBACKS",
           "APPLY_MODES", "ENGINES"]
