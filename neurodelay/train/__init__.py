"""Training networks with delays: optimiser, constraints, initialisation, checkpoints, the training loop.

One concept per module:

* :mod:`.optim` — Adam with learning rates and schedules per parameter key or kind;
* :mod:`.constraints` — delay bounds (clip or sigmoid), log-parametrised time constants,
  quantisation of delays to a hardware grid;
* :mod:`.init` — initial weights and delays of the papers' schemes;
* :mod:`.model` — the interface the trainer needs; :mod:`.classifier` — a spiking network as such a model;
* :mod:`.network_state` — a Network as an xarray Dataset; :mod:`.checkpoint` — NetCDF checkpoints;
* :mod:`.trainer` — the loop (:func:`fit`); :mod:`.config` — run settings;
  :mod:`.recipes` — the published task set-ups; :mod:`.runs` — a run from settings to files.
"""

from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .classifier import SpikingClassifier, decide
from .config import RunConfig, load_config_file
from .constraints import Constraint, constraint_for, grid_step, quantise_delays
from .init import calibrate_rates, init_delays, init_weights, psp_peak
from .model import BatchResult, Evaluation, Model
from .optim import Adam, Schedule
from .recipes import RECIPES, build_model, get_recipe, make_constraints, make_optimiser, resolve_config
from .runs import evaluate_checkpoint, model_from_checkpoint, train_run
from .trainer import TrainResult, fit

__all__ = ["Adam", "Schedule", "Constraint", "constraint_for", "quantise_delays", "grid_step", "init_weights", "init_delays",
           "psp_peak", "calibrate_rates", "Model", "BatchResult", "Evaluation", "SpikingClassifier", "decide", "Checkpoint",
           "save_checkpoint", "load_checkpoint", "fit", "TrainResult", "RunConfig", "load_config_file", "RECIPES",
           "get_recipe", "build_model", "make_optimiser", "make_constraints", "resolve_config", "train_run",
           "evaluate_checkpoint", "model_from_checkpoint"]
