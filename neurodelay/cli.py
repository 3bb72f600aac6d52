"""The ``neurodelay`` command: train networks with delays on the published tasks, evaluate checkpoints.

    neurodelay train TASK [--config FILE] [options]     train; write checkpoints, history, evaluation
    neurodelay evaluate CHECKPOINT [--split test]         accuracy of a checkpoint on a split
    neurodelay sweep CONFIG [--workers N | --scheduler ADDRESS | --slurm | --serial] [--out DIR]
    neurodelay sweep collect DIR                           merge a sweep folder into DIR/merged.nc

Run ``neurodelay train --help`` or ``neurodelay sweep --help`` for the options. Expected errors
(bad arguments, configuration or files, a full disk) are reported in one line with exit status 2
(set NEURODELAY_TRACEBACK=1 for the traceback); Ctrl-C exits with status 130.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

__all__ = ["main", "build_parser"]

_TRAIN_EPILOG = """\
Tasks and what they train by default (see neurodelay.train.recipes):
  yinyang   Yin-Yang, DelGrad's settings: 5 inputs -> 30 hidden LIF -> 3 output LIF,
            tau_m = 2 tau_s = 10 ms, first-spike MSE with margin 0.2 tau_s,
            Adam lr 0.005, batch 150, 300 epochs
  sequence  two-neuron sequence detection: synaptic delays only, from the worst start
  mts_xor   multi-time-scale XOR with a hidden LIF layer
  digits    permuted sequential 8x8 digits, recurrent hidden layer

Parameter kinds for --learn: weight, axonal, dendritic, synaptic, tau_m, tau_s
(comma-separated, e.g. --learn weight,synaptic).

The output folder receives config.json, last.nc and best.nc (checkpoints,
written atomically after every epoch), history.nc and evaluation.nc (test
split). Ctrl-C stops after keeping the last finished epoch; run the same
command with --resume to continue bit for bit.

A configuration file (.json or .toml) holds the same keys as the flags, with
underscores (e.g. batch_size = 150, learn = ["weight", "synaptic"],
model_options = {hidden_init = [1.5, 0.8]}); flags override it.

Delays as hardware stores them: --delay-step S (s) or --delay-bits B
(2**B levels over [0, d_max]) trains them on that grid (quantisation-aware,
straight-through gradients); --quantise only rounds them after training.
The grid recipe (defaults: neurodelay.train.recipes.QAT_DEFAULTS): continuous
delays for the first --qat-warmup fraction of the epochs, then the grid with
the delays' learning rate times --qat-delay-lr (0: rounded once and fixed,
the weights fine-tuned on them); --qat-ramp grows the step from fine to full,
--qat-rounding stochastic rounds stochastically in training minibatches.

Examples:
  neurodelay train yinyang --learn weight,synaptic --seed 1 --out runs/yy_syn
  neurodelay train sequence --epochs 30 --out runs/seq
  neurodelay train yinyang --learn weight,synaptic --delay-step 1e-3 --out runs/yy_syn_1ms
  neurodelay evaluate runs/yy_syn/last.nc --split test --quantise 1e-4
"""


_SWEEP_EPILOG = """\
A sweep runs a function at every point of a grid of parameters x seeds. Each
point's result (a small xarray Dataset) is written atomically to its own NetCDF
file in the sweep folder, so a finished point is never lost or computed again:
running the same command again resumes the sweep. Failed points are retried
(--retries), then recorded with their error; the sweep goes on (and exits with
status 1 at the end, after writing the result). At the end (and
with `neurodelay sweep collect DIR`) the points are merged into DIR/merged.nc:
one dimension per grid key plus `seed`, with per-point status, error, wall
time and host.

The configuration file (.toml or .json):

  function = "mypackage.experiments:rate_point"  # called as f(**fixed, **point, seed=INT)
  seeds = 5             # seeds per grid point; seed k = SeedSequence(root_seed).spawn(n)[k]
  root_seed = 0
  retries = 1
  out = "build/sweeps/rates"     # the sweep folder (--out overrides)
  [grid]                         # one dimension per key, in this order
  rate = [5.0, 10.0, 20.0]
  mode = ["weights", "delays"]
  [fixed]                        # the same for every call (optional)
  duration = 0.5
  [slurm]                        # for --slurm: cores, memory, walltime, queue, account, jobs, ...
  cores = 8
  memory = "16GB"
  walltime = "02:00:00"
  queue = "compute"

Executors: a local Dask cluster (default; --workers N worker processes, one
engine thread each), a running Dask scheduler (--scheduler tcp://HOST:8786),
SLURM through dask-jobqueue (--slurm; --print-job-script shows the batch script
without submitting), or this process (--serial, for debugging).

Examples:
  neurodelay sweep rates.toml --workers 2
  neurodelay sweep rates.toml --scheduler tcp://scheduler.example.org:8786 --out /shared/sweeps/rates
  neurodelay sweep rates.toml --slurm --jobs 10 --queue compute --walltime 04:00:00
  neurodelay sweep collect build/sweeps/rates
"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (exit status 2), and whose epilog may be
    computed only when the help is shown (``epilog_factory``: the task defaults need the recipes)."""

    epilog_factory = None

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def format_help(self):
        if self.epilog_factory is not None:
            self.epilog = self.epilog_factory()
        return super().format_help()


def _task_defaults() -> str:
    """The train epilog with a table of each task's default settings (from the recipes)."""
    from .train import RECIPES, RunConfig, resolve_config

    rows = ["Default settings per task (flags or a --config file override them):",
            f"  {'task':<9} {'hidden':>6} {'epochs':>6} {'batch':>5} {'lr':>7} {'lr-delay':>9} {'lr-tau':>7} "
            f"{'d-max':>7}  learn"]
    for task in RECIPES:
        c = resolve_config(RunConfig(task=task))
        rows.append(f"  {task:<9} {c.hidden:>6} {c.epochs:>6} {c.batch_size:>5} {c.lr:>7g} {c.lr_delay:>8g}s "
                    f"{c.lr_tau:>7g} {c.d_max * 1e3:>5g}ms  {','.join(c.learn)}")
    return "\n".join(rows) + "\n\n" + _TRAIN_EPILOG


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``neurodelay`` command."""
    from . import __version__

    parser = _Parser(prog="neurodelay", description=__doc__.splitlines()[0].replace("``", ""),
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"neurodelay {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    tr = sub.add_parser("train", help="train a network on a task", epilog=_TRAIN_EPILOG,
                        description="Train a spiking network with exact (EventProp) gradients of weights, "
                                    "delays and time constants (or with the online three-factor rule: "
                                    "--rule three-factor).",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    tr.epilog_factory = _task_defaults
    tr.add_argument("task", help="task name: yinyang, sequence, mts_xor or digits")
    tr.add_argument("--config", type=Path, help="JSON or TOML file with configuration keys (flags override it)")
    tr.add_argument("--out", type=Path, help="output folder (default: runs/TASK-seedN)")
    tr.add_argument("--hidden", type=_positive_int, help="hidden neurons")
    tr.add_argument("--learn", help="parameter kinds to train, comma-separated (e.g. weight,synaptic)")
    tr.add_argument("--epochs", type=_positive_int, help="number of epochs")
    tr.add_argument("--batch-size", type=_positive_int, help="trials per minibatch")
    tr.add_argument("--lr", type=_positive_float,
                    help="Adam learning rate of the weights (default: the recipe's, which may differ per --rule)")
    tr.add_argument("--lr-delay", type=_positive_float,
                    help="Adam learning rate of the delays (seconds per step; default as --lr)")
    tr.add_argument("--lr-tau", type=_positive_float,
                    help="Adam learning rate of tau_m / tau_s (relative change per step: trained in log space)")
    tr.add_argument("--d-max", type=_positive_float, help="largest allowed delay (s)")
    tr.add_argument("--delay-mode", choices=("clip", "sigmoid"),
                    help="keep delays in [0, d_max] by clipping or by d = d_max * sigmoid(u)")
    tr.add_argument("--seed", type=int, help="seed of initialisation, batch order and noise (default 0)")
    tr.add_argument("--n-train", type=_positive_int, help="use only the first N training trials")
    tr.add_argument("--n-validation", type=_positive_int, help="use only the first N validation trials")
    tr.add_argument("--n-test", type=_positive_int, help="use only the first N test trials")
    tr.add_argument("--patience", type=_positive_int,
                    help="stop after this many epochs without a better validation accuracy")
    tr.add_argument("--quantise", type=_positive_float,
                    help="evaluate with the delays rounded to multiples of this step (s)")
    tr.add_argument("--delay-step", type=_positive_float,
                    help="quantisation-aware training: the network only sees delays on this grid (s)")
    tr.add_argument("--delay-bits", type=_positive_int,
                    help="quantisation-aware training: delays stored in this many bits over [0, d_max]")
    tr.add_argument("--qat-warmup", type=float, metavar="FRACTION",
                    help="grid training: fraction of the epochs with continuous delays first")
    tr.add_argument("--qat-delay-lr", type=float, metavar="FACTOR",
                    help="grid training: the delays' learning rate x this on the grid (0: fixed)")
    tr.add_argument("--qat-ramp", type=float, metavar="FRACTION",
                    help="grid training: fraction of the epochs over which the step grows to full")
    tr.add_argument("--qat-rounding", choices=("nearest", "stochastic", "stochastic-warmup"),
                    help="grid training: rounding in training minibatches")
    tr.add_argument("--rule", choices=("eventprop", "three-factor"),
                    help="what computes the updates: exact EventProp gradients (default) or the online "
                         "three-factor rule (weights, synaptic and axonal delays; event engine)")
    tr.add_argument("--pseudo-derivative", choices=("gaussian", "exact"),
                    help="three-factor: Gaussian surrogate (default) or the exact 1/(dV/dt) at each spike")
    tr.add_argument("--sigma", type=_positive_float,
                    help="three-factor: width of the Gaussian surrogate in units of theta (default: the "
                         "recipe's, Yin-Yang 0.1, else 0.3)")
    tr.add_argument("--feedback", choices=("symmetric", "random"),
                    help="three-factor: feedback to hidden neurons through the output weights (default) or "
                         "fixed random weights")
    tr.add_argument("--feedback-seed", type=int, help="three-factor: seed of the random feedback (default: --seed)")
    tr.add_argument("--threads", type=_positive_int, help="worker threads (default: all usable cores)")
    tr.add_argument("--engine", default="auto",
                    help="simulation engine: auto (default), events, brian, ... (see neurodelay.engines)")
    tr.add_argument("--resume", action="store_true", help="continue from OUT/last.nc if it exists")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")

    ev = sub.add_parser("evaluate", help="evaluate a checkpoint on a data split",
                        description="Accuracy and loss of the network stored in a training checkpoint.")
    ev.add_argument("checkpoint", type=Path, help="checkpoint file (last.nc or best.nc of a training run)")
    ev.add_argument("--split", default="test", choices=("train", "validation", "test"),
                    help="data split (default: test)")
    ev.add_argument("--quantise", type=_positive_float, help="round the delays to multiples of this step (s) first")
    ev.add_argument("--out", type=Path, help="also write the evaluation (per-trial predictions) to this NetCDF file")
    ev.add_argument("--engine", default="auto",
                    help="simulation engine: auto (default), events, brian, ... (see neurodelay.engines)")

    sw = sub.add_parser("sweep", help="run a function over a grid of parameters x seeds (Dask)",
                        epilog=_SWEEP_EPILOG, usage="neurodelay sweep CONFIG [options]\n"
                                                    "       neurodelay sweep collect DIR [--out FILE]",
                        description="Run a sweep from a configuration file, or merge a sweep folder "
                                    "(`neurodelay sweep collect DIR`).",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    sw.add_argument("config", metavar="CONFIG", help="sweep configuration (.toml or .json), or `collect`")
    sw.add_argument("folder", nargs="?", metavar="DIR", type=Path, help="with `collect`: the sweep folder")
    where = sw.add_mutually_exclusive_group()
    where.add_argument("--workers", type=_positive_int, metavar="N", help="local Dask cluster of N worker processes "
                                                             "(default: one per usable core)")
    where.add_argument("--scheduler", metavar="ADDRESS", help="address of a running Dask scheduler")
    where.add_argument("--slurm", action="store_true", help="SLURM jobs through dask-jobqueue "
                                                            "(settings from the config's [slurm] table)")
    where.add_argument("--serial", action="store_true", help="run the points in this process (debugging)")
    sl = sw.add_argument_group("SLURM (with --slurm; override the config's [slurm] table)")
    sl.add_argument("--jobs", type=_positive_int, metavar="N", help="SLURM jobs to start")
    sl.add_argument("--cores", type=_positive_int, metavar="N", help="cores per job")
    sl.add_argument("--memory", help="memory per job, e.g. 16GB")
    sl.add_argument("--walltime", help="time limit per job, HH:MM:SS")
    sl.add_argument("--queue", help="SLURM partition")
    sl.add_argument("--account", help="SLURM account")
    sl.add_argument("--print-job-script", action="store_true", help="print the job script and submit nothing")
    sw.add_argument("--out", type=Path, help="sweep folder (default: the config's `out`, else "
                                             "build/sweeps/CONFIG-NAME); with collect: the merged file "
                                             "(default DIR/merged.nc)")
    sw.add_argument("--retries", type=int, help="further attempts for a failing point (default: config, else 1)")
    sw.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _sweep_summary(ds) -> str:
    counts = json.loads(ds.attrs["sweep_counts"])
    wall = ds["wall_time"].values
    return (f"{counts['ok']} ok, {counts['failed']} failed, {counts['missing']} missing, {counts['corrupt']} corrupt"
            f" of {ds['status'].size} points"
            + (f"; {float(np.nansum(wall)):.1f} s of point wall time" if np.isfinite(wall).any() else ""))


def _sweep(args) -> int:
    from .io import write_netcdf
    from .sweep import DaskExecutor, LocalExecutor, SerialExecutor, SlurmExecutor, collect, run_sweep
    from .sweep._config import load_sweep_config

    if args.config == "collect":
        if args.folder is None:
            raise ValueError("collect needs the sweep folder: neurodelay sweep collect DIR")
        ds = collect(args.folder)
        out = write_netcdf(ds, args.out or args.folder / "merged.nc")
        print(f"{args.folder}: {_sweep_summary(ds)} -> {out}")
        return 0
    if args.folder is not None:
        raise ValueError(f"unexpected argument {args.folder} (only `collect` takes a folder)")
    cfg = load_sweep_config(args.config)
    slurm = dict(cfg["slurm"])
    slurm.update({k: v for k, v in dict(jobs=args.jobs, cores=args.cores, memory=args.memory,
                                         walltime=args.walltime, queue=args.queue,
                                         account=args.account).items() if v is not None})
    if args.print_job_script and not args.slurm:
        raise ValueError("--print-job-script needs --slurm")
    if args.slurm:
        try:
            executor = SlurmExecutor(**slurm)
        except TypeError as exc:
            raise ValueError(f"{args.config}: bad [slurm] settings ({exc})") from None
        if args.print_job_script:
            print(executor.job_script())
            return 0
    elif args.scheduler:
        executor = DaskExecutor(args.scheduler)
    elif args.serial:
        executor = SerialExecutor()
    else:
        executor = LocalExecutor(workers=args.workers)
    folder = args.out or (Path(cfg["out"]) if cfg["out"] else Path("build") / "sweeps" / cfg["name"])
    ds = run_sweep(cfg["function"], cfg["grid"], seeds=cfg["seeds"], folder=folder, root_seed=cfg["root_seed"],
                   executor=executor, retries=cfg["retries"] if args.retries is None else args.retries,
                   progress=not args.no_progress, fixed=cfg["fixed"])
    out = write_netcdf(ds, folder / "merged.nc")
    print(f"{folder}: {_sweep_summary(ds)} -> {out}")
    return 1 if (ds["status"] != "ok").any() else 0


def _train(args) -> int:
    from .train.config import RunConfig, load_config_file
    from .train.runs import train_run

    base = load_config_file(args.config) if args.config else {}
    if "task" in base and base["task"] != args.task:
        raise ValueError(f"{args.config} is for task {base['task']!r}, the command line says {args.task!r}")
    base["task"] = args.task
    overrides = dict(hidden=args.hidden, learn=args.learn, epochs=args.epochs, batch_size=args.batch_size,
                     lr=args.lr, lr_delay=args.lr_delay, lr_tau=args.lr_tau, d_max=args.d_max,
                     delay_mode=args.delay_mode, seed=args.seed, n_train=args.n_train,
                     n_validation=args.n_validation, n_test=args.n_test, patience=args.patience,
                     quantise=args.quantise, delay_step=args.delay_step, delay_bits=args.delay_bits,
                     qat_warmup=args.qat_warmup, qat_delay_lr=args.qat_delay_lr, qat_ramp=args.qat_ramp,
                     qat_rounding=args.qat_rounding,
                     rule=args.rule, pseudo_derivative=args.pseudo_derivative, sigma=args.sigma,
                     feedback=args.feedback, feedback_seed=args.feedback_seed)
    cfg = RunConfig.from_dict(base).merged(overrides)
    out = args.out or Path("runs") / f"{cfg.task}-seed{cfg.seed}"
    result, evaluation = train_run(cfg, out, resume=args.resume, progress=not args.no_progress,
                                   n_threads=args.threads, engine=args.engine)
    h = result.history
    last = (f"train accuracy {h['train_accuracy'].values[-1]:.4f}, validation accuracy "
            f"{h['validation_accuracy'].values[-1]:.4f}, " if result.epoch else "")
    print(f"{cfg.task}: {result.stop_reason} after {result.epoch} epochs; {last}"
          f"test accuracy {evaluation.attrs['accuracy']:.4f}; results in {out}")
    if result.stop_reason == "interrupted":
        words = list(getattr(args, "argv", None) or sys.argv[1:])
        if args.out is None:
            words += ["--out", str(out)]
        if "--resume" not in words:
            words.append("--resume")
        print(f"interrupted: epoch {result.epoch} is saved in {out / 'last.nc'}; to continue bit for bit, run\n"
              f"  neurodelay {' '.join(words)}", file=sys.stderr)
        return 130
    return 0


def _check_writable(path: Path) -> None:
    """Raise an OSError naming `path` if no file can be written there (checked before long work)."""
    import tempfile

    if path.is_dir():
        raise IsADirectoryError(f"--out {path} is a folder; give a file name (e.g. {path / 'evaluation.nc'})")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.stem}.", suffix=".probe"):
            pass
    except OSError as exc:
        raise type(exc)(exc.errno, f"cannot write --out {path}: {exc.strerror or exc}") from None


def _evaluate(args) -> int:
    from .io import write_netcdf
    from .train.runs import evaluate_checkpoint

    if args.out:
        _check_writable(args.out)
    ds = evaluate_checkpoint(args.checkpoint, args.split, args.quantise, engine=args.engine)
    summary = {"checkpoint": str(args.checkpoint), "epoch": int(ds.attrs["epoch"]), "split": args.split,
               "accuracy": ds.attrs["accuracy"], "loss": ds.attrs["loss"], "n_trials": ds.attrs["n_trials"]}
    q = ""
    if args.quantise:   # the same network without rounding, to state what the quantisation costs
        exact = evaluate_checkpoint(args.checkpoint, args.split, None, engine=args.engine)
        summary.update(quantise=args.quantise, accuracy_unquantised=exact.attrs["accuracy"])
        ds.attrs["accuracy_unquantised"] = exact.attrs["accuracy"]
        q = (f", delays quantised to {args.quantise:g} s; without quantisation "
             f"{exact.attrs['accuracy']:.4f}")
    print(json.dumps(summary))
    print(f"{ds.attrs['task']} {args.split}: accuracy {ds.attrs['accuracy']:.4f} on {ds.attrs['n_trials']} "
          f"trials (epoch {ds.attrs['epoch']}{q})", file=sys.stderr)
    if args.out:  # after printing: a failing write does not lose the evaluation
        write_netcdf(ds, args.out)
    return 0


def main(argv=None) -> int:
    """Entry point of the ``neurodelay`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return {"train": _train, "evaluate": _evaluate, "sweep": _sweep}[args.command](args)
    except EXPECTED_ERRORS as exc:
        if os.environ.get("NEURODELAY_TRACEBACK"):  # for debugging: the full traceback
            raise
        print(f"neurodelay {args.command}: error: {error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"neurodelay {args.command}: interrupted", file=sys.stderr)
        return 130


#: what a wrong argument, configuration or file raises: reported in one line, exit status 2
EXPECTED_ERRORS = (ValueError, TypeError, KeyError, OSError)


def error_line(exc: BaseException) -> str:
    """An expected error as one line (a KeyError's message without its quotes)."""
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return " ".join(text.split()) or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
