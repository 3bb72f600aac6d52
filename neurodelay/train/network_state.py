"""A :class:`~neurodelay.network.Network` as an xarray Dataset and back (lossless, no pickle).

Layout (times in seconds, float64)::

    pop{k}_<param>   (pop{k}_neuron)   tau_m, tau_s, theta, reset, refractory, bias, v_init,
                                       i_init of population k (readouts: tau_m, tau_s, bias,
                                       v_init, i_init; datasets written before bias existed
                                       lack the last three, read as 0)
    proj{k}_pre_idx, proj{k}_post_idx, proj{k}_weight        (proj{k}_synapse)
    proj{k}_synaptic (proj{k}_synapse), proj{k}_axonal (proj{k}_pre), proj{k}_dendritic (proj{k}_post)

Population k's name, class and size (and for LIF populations the unit of
theta, ``voltage_unit``), and projection k's pre/post names are variable
attributes; delay kinds that are absent have no variable.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..delays import DELAY_KINDS, Delays
from ..network import LIF, Network, Readout, SpikeSource

__all__ = ["network_to_dataset", "network_from_dataset"]

_CLASSES = {"SpikeSource": SpikeSource, "LIF": LIF, "Readout": Readout}
_STATE = ("bias", "v_init", "i_init")
_POP_PARAMS = {"SpikeSource": (), "LIF": ("tau_m", "tau_s", "theta", "reset", "refractory") + _STATE,
               "Readout": ("tau_m", "tau_s") + _STATE}
_SECONDS = {"tau_m", "tau_s", "refractory"}


def network_to_dataset(net: Network) -> xr.Dataset:
    """Every population and projection of `net` as Dataset variables (see the module docstring)."""
    variables = {}
    for k, pop in enumerate(net.populations):
        cls = type(pop).__name__
        dim = f"pop{k}_neuron"
        head = {"name": pop.name, "class": cls}
        if isinstance(pop, LIF):
            head["voltage_unit"] = pop.voltage_unit
        variables[f"pop{k}"] = ((), np.int64(pop.n), head)
        for param in _POP_PARAMS[cls]:
            attrs = {"units": "s"} if param in _SECONDS else {}
            variables[f"pop{k}_{param}"] = (dim, np.asarray(getattr(pop, param), float), attrs)
    for k, proj in enumerate(net.projections):
        syn, pre, post = f"proj{k}_synapse", f"proj{k}_pre", f"proj{k}_post"
        variables[f"proj{k}"] = ((), np.int64(proj.n_syn), {"pre": proj.pre, "post": proj.post})
        variables[f"proj{k}_pre_idx"] = (syn, proj.pre_idx.astype(np.int64))
        variables[f"proj{k}_post_idx"] = (syn, proj.post_idx.astype(np.int64))
        variables[f"proj{k}_weight"] = (syn, np.asarray(proj.weight, float))
        for kind, dim in zip(DELAY_KINDS, (pre, post, syn)):
            value = getattr(proj.delays, kind)
            if value is not None:
                variables[f"proj{k}_{kind}"] = (dim, np.asarray(value, float), {"units": "s"})
    return xr.Dataset(variables, attrs={"n_populations": len(net.populations),
                                        "n_projections": len(net.projections)})


def network_from_dataset(ds: xr.Dataset) -> Network:
    """The Network stored by :func:`network_to_dataset` (bit-identical arrays)."""
    try:
        n_pops, n_projs = int(ds.attrs["n_populations"]), int(ds.attrs["n_projections"])
    except KeyError:
        raise ValueError("dataset holds no network (attributes n_populations / n_projections missing)") from None
    pops = []
    for k in range(n_pops):
        head = ds[f"pop{k}"]
        cls = str(head.attrs["class"])
        if cls not in _CLASSES:
            raise ValueError(f"population {k}: unknown class {cls!r}")
        params = {p: ds[f"pop{k}_{p}"].values for p in _POP_PARAMS[cls]
                  if p not in _STATE or f"pop{k}_{p}" in ds.variables}
        if cls == "LIF" and "voltage_unit" in head.attrs:  # theta given in volts or dimensionless
            params["voltage_unit"] = str(head.attrs["voltage_unit"])
        pops.append(_CLASSES[cls](str(head.attrs["name"]), int(head.values), **params))
    net = Network().add(*pops)
    for k in range(n_projs):
        head = ds[f"proj{k}"]
        delays = Delays(**{kind: ds[f"proj{k}_{kind}"].values for kind in DELAY_KINDS
                           if f"proj{k}_{kind}" in ds.variables})
        net = net.connect(str(head.attrs["pre"]), str(head.attrs["post"]), ds[f"proj{k}_weight"].values,
                          connectivity=(ds[f"proj{k}_pre_idx"].values.astype(np.int64),
                                        ds[f"proj{k}_post_idx"].values.astype(np.int64)),
                          delays=delays)
    return net
