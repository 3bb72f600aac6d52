"""The ``neurodelay`` command: train networks with delays on the published tasks, evaluate checkpoints.

    neurodelay train TASK [--config FILE] [options]     train; write checkpoints, history, evaluation
    neurodelay evaluate CHECKPOINT [--split test]         accuracy of a checkpoint on a split

Run ``neurodelay train --help`` for the options. Expected errors (bad arguments, configuration
or files, a full disk) are reported in one line with exit status 2 (set NEURODELAY_TRACEBACK=1
for the traceback); Ctrl-C exits with status 130.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

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

Examples:
  neurodelay train yinyang --learn weight,synaptic --seed 1 --out runs/yy_syn
  neurodelay train sequence --epochs 30 --out runs/seq
  neurodelay evaluate runs/yy_syn/last.nc --split test --quantise 1e-4
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
    """An ArgumentParser whose usage errors are one line (exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``neurodelay`` command."""
    parser = _Parser(prog="neurodelay", description=__doc__.splitlines()[0],
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    tr = sub.add_parser("train", help="train a network on a task", epilog=_TRAIN_EPILOG,
                        description="Train a spiking network with exact (EventProp) gradients of weights, "
                                    "delays and time constants.",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    tr.add_argument("task", help="task name: yinyang, sequence, mts_xor or digits")
    tr.add_argument("--config", type=Path, help="JSON or TOML file with configuration keys (flags override it)")
    tr.add_argument("--out", type=Path, help="output folder (default: runs/TASK-seedN)")
    tr.add_argument("--hidden", type=_positive_int, help="hidden neurons")
    tr.add_argument("--learn", help="parameter kinds to train, comma-separated (e.g. weight,synaptic)")
    tr.add_argument("--epochs", type=_positive_int, help="number of epochs")
    tr.add_argument("--batch-size", type=_positive_int, help="trials per minibatch")
    tr.add_argument("--lr", type=_positive_float, help="Adam learning rate of the weights")
    tr.add_argument("--lr-delay", type=_positive_float, help="Adam learning rate of the delays (seconds per step)")
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
    tr.add_argument("--threads", type=_positive_int, help="worker threads (default: all usable cores)")
    tr.add_argument("--resume", action="store_true", help="continue from OUT/last.nc if it exists")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")

    ev = sub.add_parser("evaluate", help="evaluate a checkpoint on a data split",
                        description="Accuracy and loss of the network stored in a training checkpoint.")
    ev.add_argument("checkpoint", type=Path, help="checkpoint file (last.nc or best.nc of a training run)")
    ev.add_argument("--split", default="test", choices=("train", "validation", "test"),
                    help="data split (default: test)")
    ev.add_argument("--quantise", type=_positive_float, help="round the delays to multiples of this step (s) first")
    ev.add_argument("--out", type=Path, help="also write the evaluation (per-trial predictions) to this NetCDF file")
    return parser


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
                     quantise=args.quantise)
    cfg = RunConfig.from_dict(base).merged(overrides)
    out = args.out or Path("runs") / f"{cfg.task}-seed{cfg.seed}"
    result, evaluation = train_run(cfg, out, resume=args.resume, progress=not args.no_progress,
                                   n_threads=args.threads)
    h = result.history
    last = (f"train accuracy {h['train_accuracy'].values[-1]:.4f}, validation accuracy "
            f"{h['validation_accuracy'].values[-1]:.4f}, " if result.epoch else "")
    print(f"{cfg.task}: {result.stop_reason} after {result.epoch} epochs; {last}"
          f"test accuracy {evaluation.attrs['accuracy']:.4f}; results in {out}")
    return 130 if result.stop_reason == "interrupted" else 0


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
    ds = evaluate_checkpoint(args.checkpoint, args.split, args.quantise)
    q = f", delays quantised to {args.quantise:g} s" if args.quantise else ""
    print(json.dumps({"checkpoint": str(args.checkpoint), "epoch": int(ds.attrs["epoch"]), "split": args.split,
                      "accuracy": ds.attrs["accuracy"], "loss": ds.attrs["loss"], "n_trials": ds.attrs["n_trials"]}))
    print(f"{ds.attrs['task']} {args.split}: accuracy {ds.attrs['accuracy']:.4f} on {ds.attrs['n_trials']} "
          f"trials (epoch {ds.attrs['epoch']}{q})", file=sys.stderr)
    if args.out:  # after printing: a failing write does not lose the evaluation
        write_netcdf(ds, args.out)
    return 0


def main(argv=None) -> int:
    """Entry point of the ``neurodelay`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _train(args) if args.command == "train" else _evaluate(args)
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
