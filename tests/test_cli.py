"""The `neurodelay` command: train / evaluate with tiny configurations.

The evaluation printed by `neurodelay evaluate` is recomputed from the
checkpoint alone (the network rebuilt from the file), so agreeing with the
evaluation written at the end of training checks that the checkpoint holds
the trained network.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from neurodelay.cli import main
from neurodelay.io import read_netcdf
from neurodelay.train.checkpoint import load_checkpoint
from neurodelay.train.config import RunConfig
from neurodelay.train.runs import evaluate_checkpoint, train_run

TINY = ["--hidden", "6", "--epochs", "3", "--batch-size", "20", "--n-train", "60", "--n-validation", "40",
        "--n-test", "40", "--no-progress"]


def test_help_texts_name_the_commands_tasks_and_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "train" in text and "evaluate" in text
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for word in ("yinyang", "sequence", "mts_xor", "digits", "--learn", "--lr-delay", "--resume", "synaptic"):
        assert word in text, word


def test_console_script_entry_point_runs():
    out = subprocess.run([sys.executable, "-c", "import sys; from neurodelay.cli import main; "
                                                "sys.exit(main(['evaluate', '--help']))"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "--split" in out.stdout


def test_train_writes_every_file_and_evaluate_reproduces_the_test_accuracy(tmp_path, capsys):
    out = tmp_path / "run"
    status = main(["train", "yinyang", "--learn", "weight,dendritic", "--seed", "2", "--out", str(out)] + TINY)
    assert status == 0
    assert {p.name for p in out.iterdir()} == {"config.json", "last.nc", "best.nc", "history.nc", "evaluation.nc"}
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["learn"] == ["weight", "dendritic"] and cfg["hidden"] == 6 and cfg["seed"] == 2
    history = read_netcdf(out / "history.nc")
    assert history.sizes["epoch"] == 3
    assert "input->hidden.dendritic" in list(history["param"].values)
    written = read_netcdf(out / "evaluation.nc")
    capsys.readouterr()
    assert main(["evaluate", str(out / "last.nc"), "--split", "test"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["accuracy"] == written.attrs["accuracy"] and printed["n_trials"] == 40
    np.testing.assert_array_equal(evaluate_checkpoint(out / "last.nc")["prediction"].values,
                                  written["prediction"].values)
    # --quantise states the accuracy with and without rounding the delays
    assert main(["evaluate", str(out / "last.nc"), "--quantise", "5e-3"]) == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out.strip().splitlines()[-1])
    assert printed["accuracy_unquantised"] == written.attrs["accuracy"]
    assert printed["accuracy"] == evaluate_checkpoint(out / "last.nc", quantise=5e-3).attrs["accuracy"]
    assert "without quantisation" in captured.err


def test_version_task_defaults_and_plain_help(capsys):
    from neurodelay import __version__
    from neurodelay.train import RunConfig, resolve_config

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"neurodelay {__version__}"
    for command in ([], ["train"], ["evaluate"], ["sweep"]):
        with pytest.raises(SystemExit):
            main(command + ["--help"])
        text = capsys.readouterr().out
        assert "``" not in text and ":func:" not in text and ":mod:" not in text, f"RST markup in {command} help"
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    lines = capsys.readouterr().out.splitlines()
    for task in ("yinyang", "sequence", "mts_xor", "digits"):   # the table row shows the recipe's defaults
        cfg = resolve_config(RunConfig(task=task))
        row = next(line.split() for line in lines if line.split()[:1] == [task] and len(line.split()) >= 8)
        assert row[1:5] == [str(cfg.hidden), str(cfg.epochs), str(cfg.batch_size), f"{cfg.lr:g}"], row


def test_ctrl_c_prints_how_to_resume(tmp_path, capsys, monkeypatch):
    import neurodelay.train.trainer as trainer

    real_fit = trainer.fit

    def fit_interrupted_after_one_epoch(*args, **kwargs):
        def stop(event, info):
            if event == "epoch":
                raise KeyboardInterrupt
        return real_fit(*args, **dict(kwargs, callbacks=tuple(kwargs.get("callbacks", ())) + (stop,)))

    import neurodelay.train.runs as runs
    monkeypatch.setattr(runs, "fit", fit_interrupted_after_one_epoch)
    out = tmp_path / "run"
    argv = ["train", "sequence", "--epochs", "3", "--no-progress", "--out", str(out)]
    assert main(argv) == 130
    err = capsys.readouterr().err
    hint = err.strip().splitlines()[-1].strip()
    assert hint == "neurodelay " + " ".join(argv + ["--resume"])
    monkeypatch.setattr(runs, "fit", real_fit)
    assert main(hint.split()[1:]) == 0, "the printed command resumes the run"


def test_config_file_with_flag_overrides(tmp_path):
    (tmp_path / "seq.toml").write_text('learn = ["synaptic"]\nepochs = 2\nbatch_size = 10\nn_train = 20\n'
                                       'n_test = 20\nn_validation = 20\n')
    out = tmp_path / "seq"
    assert main(["train", "sequence", "--config", str(tmp_path / "seq.toml"), "--epochs", "3", "--out", str(out),
                 "--no-progress"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["epochs"] == 3 and cfg["batch_size"] == 10 and cfg["task"] == "sequence"


def test_bad_input_gives_a_clear_message_and_status_2(tmp_path, capsys):
    assert main(["train", "mnist", "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    assert "unknown task 'mnist'" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text('{"epoch": 3}')
    assert main(["train", "sequence", "--config", str(tmp_path / "bad.json"), "--no-progress"]) == 2
    assert "unknown configuration key" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "missing.nc")]) == 2
    assert "no NetCDF file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "yinyang", "--epochs", "0"])


def test_interrupted_training_leaves_a_readable_checkpoint_that_evaluates(tmp_path):
    cfg = RunConfig(task="yinyang", hidden=6, learn=["weight", "synaptic"], epochs=5, batch_size=20, n_train=60,
                    n_validation=40, n_test=40, seed=1)

    def interrupt(event, info):
        if event == "batch" and info["epoch"] == 3 and info["batch"] == 1:
            raise KeyboardInterrupt

    result, evaluation = train_run(cfg, tmp_path / "run", progress=False, callbacks=(interrupt,))
    assert result.stop_reason == "interrupted" and result.epoch == 2
    ckpt = load_checkpoint(tmp_path / "run" / "last.nc")
    assert ckpt.epoch == 2 and ckpt.history.sizes["epoch"] == 2
    assert read_netcdf(tmp_path / "run" / "history.nc").sizes["epoch"] == 2
    again = evaluate_checkpoint(tmp_path / "run" / "last.nc")
    assert again.attrs["accuracy"] == evaluation.attrs["accuracy"]
    resumed, _ = train_run(cfg, tmp_path / "run", resume=True, progress=False)
    assert resumed.epoch == 5 and resumed.history.sizes["epoch"] == 5
