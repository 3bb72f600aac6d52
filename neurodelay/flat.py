"""A network flattened into the plain arrays that every engine reads.

Neurons of all populations get one global index (populations in insertion
order). Synapses of all projections are stored by presynaptic neuron (CSR),
each neuron's outgoing synapses sorted by transmission delay, so that the
arrivals caused by one spike come in time order.

Compiled kernels receive these arrays as positional arguments (numba compiles
plain arrays best); :class:`KernelNetwork` fixes their order in one place, and
every kernel takes ``*flat.kernel`` as its first arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np

from ._sorting import grouped_lexsort
from .network import LIF, Network, Readout, SpikeSource

__all__ = ["FlatNetwork", "KernelNetwork", "flatten", "is_closed_form", "KIND_SOURCE", "KIND_LIF",
           "KIND_READOUT"]

KIND_SOURCE, KIND_LIF, KIND_READOUT = 0, 1, 2


def is_closed_form(tau_m: np.ndarray, tau_s: np.ndarray) -> np.ndarray:
    """Neurons whose threshold crossing has the closed form (tau_m = 2 tau_s to 1e-14 relative; s)."""
    return np.abs(tau_m - 2.0 * tau_s) <= 1e-14 * tau_m


class KernelNetwork(NamedTuple):
    """The network arrays every compiled kernel takes first, in this order (``kernel(*flat.kernel, ...)``).

    The field names are the kernels' parameter names (checked by the engine tests), so the
    order is written down once, here.
    """

    kind: np.ndarray         # (N,) int8
    tau_m: np.ndarray        # (N,) s
    tau_s: np.ndarray        # (N,) s
    theta: np.ndarray        # (N,)
    reset: np.ndarray        # (N,)
    refractory: np.ndarray   # (N,) s
    closed_form: np.ndarray  # (N,) bool: tau_m = 2 tau_s (closed-form crossing)
    out_ptr: np.ndarray      # (N+1,) int64 CSR row pointers
    out_post: np.ndarray     # (S,) int64
    out_w: np.ndarray        # (S,)
    out_d: np.ndarray        # (S,) s, sorted within each row
    bias: np.ndarray         # (N,) constant input current (unit of theta; 0 for sources)


@dataclass(frozen=True)
class FlatNetwork:
    """Global-index arrays of a :class:`Network` (times in seconds)."""

    kind: np.ndarray        # (N,) int8: KIND_SOURCE / KIND_LIF / KIND_READOUT
    tau_m: np.ndarray       # (N,) s (1.0 for sources, unused)
    tau_s: np.ndarray       # (N,) s
    theta: np.ndarray       # (N,) threshold (inf for non-spiking)
    reset: np.ndarray       # (N,)
    refractory: np.ndarray  # (N,) s
    out_ptr: np.ndarray     # (N+1,) CSR row pointers over presynaptic neurons
    out_post: np.ndarray    # (S,) global postsynaptic index
    out_w: np.ndarray       # (S,) weight
    out_d: np.ndarray       # (S,) total delay, s (sorted within each row)
    out_proj: np.ndarray    # (S,) projection number
    out_syn: np.ndarray     # (S,) synapse number within its projection
    offsets: dict           # population name -> first global index
    sizes: dict             # population name -> n
    bias: np.ndarray = None     # (N,) constant input current (0 for sources)
    v_init: np.ndarray = None   # (N,) V at t = 0 from the description
    i_init: np.ndarray = None   # (N,) I at t = 0 from the description

    def __post_init__(self):
        for name in ("bias", "v_init", "i_init"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.zeros(len(self.kind)))

    @property
    def has_initial_state(self) -> bool:
        """True when some neuron starts away from rest (V or I nonzero at t = 0)."""
        return bool(np.any(self.v_init != 0.0) or np.any(self.i_init != 0.0))

    @cached_property
    def kernel(self) -> KernelNetwork:
        """The arrays the compiled kernels take first (see :class:`KernelNetwork`)."""
        return KernelNetwork(self.kind, self.tau_m, self.tau_s, self.theta, self.reset, self.refractory,
                             is_closed_form(self.tau_m, self.tau_s), self.out_ptr, self.out_post, self.out_w,
                             self.out_d, self.bias)

    @property
    def n_neurons(self) -> int:
        return len(self.kind)

    def global_index(self, population: str, local) -> np.ndarray:
        return self.offsets[population] + np.asarray(local)

    def population_of(self, global_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(population number, local index) of global neuron indices."""
        starts = np.array(list(self.offsets.values()))
        pop = np.searchsorted(starts, global_idx, side="right") - 1
        return pop, np.asarray(global_idx) - starts[pop]


def flatten(net: Network) -> FlatNetwork:
    """Flatten a :class:`Network` into global-index arrays (times in s) for the engines."""
    offsets = net.offsets()
    n = net.n_neurons
    kind = np.zeros(n, np.int8)
    tau_m = np.ones(n)
    tau_s = np.full(n, 0.5)
    theta = np.full(n, np.inf)
    reset = np.zeros(n)
    refractory = np.zeros(n)
    bias, v_init, i_init = np.zeros(n), np.zeros(n), np.zeros(n)
    for pop in net.populations:
        sl = slice(offsets[pop.name], offsets[pop.name] + pop.n)
        if isinstance(pop, SpikeSource):
            kind[sl] = KIND_SOURCE
            continue
        kind[sl] = KIND_LIF if isinstance(pop, LIF) else KIND_READOUT
        tau_m[sl], tau_s[sl] = pop.tau_m, pop.tau_s
        bias[sl], v_init[sl], i_init[sl] = pop.bias, pop.v_init, pop.i_init
        if isinstance(pop, LIF):
            theta[sl], reset[sl], refractory[sl] = pop.theta, pop.reset, pop.refractory
        else:
            assert isinstance(pop, Readout)
    pre, post, w, d, proj_no, syn_no = [], [], [], [], [], []
    for k, proj in enumerate(net.projections):
        pre.append(proj.pre_idx + offsets[proj.pre])
        post.append(proj.post_idx + offsets[proj.post])
        w.append(proj.weight)
        d.append(proj.total_delay())
        proj_no.append(np.full(proj.n_syn, k, np.int64))
        syn_no.append(np.arange(proj.n_syn, dtype=np.int64))
    cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt))
    pre, post = cat(pre, np.int64), cat(post, np.int64)
    w, d = cat(w, float), cat(d, float)
    proj_no, syn_no = cat(proj_no, np.int64), cat(syn_no, np.int64)
    order = grouped_lexsort(pre, n, d, post)      # np.lexsort((post, d, pre))
    out_ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(pre, minlength=n), out=out_ptr[1:])
    return FlatNetwork(kind, tau_m, tau_s, theta, reset, refractory, out_ptr,
                       post[order], w[order], d[order], proj_no[order], syn_no[order],
                       offsets, {p.name: p.n for p in net.populations}, bias, v_init, i_init)
