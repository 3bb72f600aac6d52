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
hierarchy
    Temporal hierarchy: layer-wise tau profiles, accuracy against delta_tau
    (Moro et al. 2024), learned tau per layer, gamma / log-normal fits.

The question modules (expressivity, coincidence, ...) are imported on demand::

    from neurodelay.analysis import expressivity
"""

__all__ = ["common", "hierarchy"]
