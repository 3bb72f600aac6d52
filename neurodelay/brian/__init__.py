"""Brian2 models of neurodelay networks: grid or exact (sub-step) timing, on every Brian2 device.

* :class:`BrianSimulator` / :func:`simulate`: build a
  :class:`~neurodelay.network.Network` once on the ``runtime``,
  ``cpp_standalone`` or ``cuda_standalone`` device and run trials; the result
  is the event engine's :class:`~neurodelay.events.EventRecord`;
* :func:`build_objects`: the Brian2 objects themselves (groups, synapses,
  monitors, network) to extend with ordinary Brian2 code;
* :func:`from_brian`: a Network description from existing Brian2 Synapses;
* :func:`three_factor_gradients`: the three-factor rule
  (:class:`~neurodelay.plasticity.ThreeFactorRule`) as plain Brian2 code, traces
  as synaptic variables (see :mod:`neurodelay.brian.plasticity`); the builder's
  :class:`BuildExtension` is how such code is added to a build.

Timing modes: ``"grid"`` (plain Brian2, delays rounded to the step) and
``"precise"`` (exact spike and arrival times in plain Brian2 code, see
:mod:`neurodelay.brian.precise`).
"""

from .builder import MODES, BrianObjects, BuildExtension, build_objects, default_history
from .devices import DEVICES, cache_root, gpu_visible, nvcc_path
from .importer import from_brian
from .record import HistoryOverflowError
from .plasticity import ThreeFactorResult, TraceWindowError, three_factor_gradients
from .simulator import BrianSimulator, simulate

__all__ = ["MODES", "DEVICES", "BrianObjects", "BrianSimulator", "BuildExtension", "HistoryOverflowError",
           "ThreeFactorResult", "TraceWindowError", "build_objects", "cache_root", "default_history", "from_brian",
           "gpu_visible", "nvcc_path", "simulate", "three_factor_gradients"]
