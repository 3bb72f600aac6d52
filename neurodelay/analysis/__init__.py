"""Analyses of what delays do: one module per scientific question.

Every public function takes plain SI floats or Brian2 quantities and an
explicit ``seed``, simulates through the engines' public interface, and
returns an :mod:`xarray` object with SI values, ``units`` attributes and
provenance attributes (parameters, seed, neurodelay version), ready for
:func:`neurodelay.io.write_netcdf`.

Modules
-------
common
    Shared helpers: argument checks, provenance, spike-pattern generators.
coincidence
    Coincidence detection: the window of two input spikes (exact), firing
    probability against interval and jitter, the Rossant et al. 2011 gain
    from a few synchronous inputs, the Jeffress delay-line map.
expressivity
    What delays add to one neuron: Cover's count, shattering of binary
    patterns (weights / delays / both), tempotron capacity and alpha_c.
polychrony
    Polychronous groups (Izhikevich 2006): the network with STDP in Brian2, the
    activity-triggered group search, shuffled and equal-delay controls.
hierarchy
    Temporal hierarchy: layer-wise tau profiles, accuracy against delta_tau
    (Moro et al. 2024), learned tau per layer, gamma / log-normal fits.

The question modules (expressivity, coincidence, ...) are imported on demand::

    from neurodelay.analysis import expressivity
"""

__all__ = ["common", "coincidence", "expressivity", "hierarchy", "polychrony"]
