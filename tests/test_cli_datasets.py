"""helpers.cli_datasets: ``python -m helpers train --dataset digits|mnist1d``, end to end, in-process.

The splits are cut down (``load_splits`` monkeypatched) and the baselines' iteration budgets lowered
so that the runs take seconds; everything else is what the command line runs. No trained number is
hard-coded: each is checked against what the files themselves say.
"""

import csv
import json
import os
from pathlib import Path

import brainstate
import brainunit as u
import numpy as np
import pytest

import helpers
import helpers.cli as cli_module
from helpers import cli_datasets, runfolder, shd
from helpers.cli import main as cli_main

FILES = {"checkpoint.msgpack", "history.csv", "history.png", "run.json"}


@pytest.fixture
def small(monkeypatch, shrink_splits):
    """Real splits, cut to a few examples per part; cheap baselines."""
    load = shrink_splits((96, 64, 64))
    monkeypatch.setattr(cli_datasets, "MLP_MAX_ITER", {"digits": 20, "mnist1d": 5})
    monkeypatch.setattr(cli_datasets, "LOGISTIC_MAX_ITER", 50)
    monkeypatch.setattr(cli_datasets, "LOGISTIC_GRID", (0.1, 1.0))
    monkeypatch.setattr(cli_datasets, "MLP_GRID", {"digits": (1e-4, 1.0), "mnist1d": (1e-4, 1.0)})
    return load


def _history(out):
    with open(out / "history.csv") as stream:
        rows = list(csv.DictReader(stream))
    return {key: np.array([float(r[key]) for r in rows]) for key in rows[0]}


def _check_run(out, dataset, epochs, baseline_names):
    assert {p.name for p in out.iterdir()} == FILES
    run = json.loads((out / "run.json").read_text())
    history = _history(out)
    assert list(history["epoch"]) == list(range(1, epochs + 1))
    assert run["dataset"] == dataset and run["epochs"] == epochs
    # the best epoch on validation is the one recorded (the first of equally good ones)
    assert run["best_epoch"] == int(np.argmax(history["val_accuracy"])) + 1
    assert run["validation_accuracy"] == pytest.approx(history["val_accuracy"].max(), abs=1e-7)
    assert 0 <= run["test_accuracy"] <= 1
    assert set(run["baselines"]) == set(baseline_names)
    for baseline in run["baselines"].values():  # the setting chosen on validation, test scored once
        assert set(baseline) == {"setting", "validation_accuracy", "test_accuracy"}
        assert 0 <= baseline["validation_accuracy"] <= 1 and 0 <= baseline["test_accuracy"] <= 1
    return run, history


@pytest.mark.slow
def test_digits_end_to_end(tmp_path, small, capsys, train_usage_error):
    out = tmp_path / "digits"
    args = ["train", "--dataset", "digits", "--hidden", "16", "--epochs", "3", "--batch", "32"]
    assert cli_main([*args, "--no-progress", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "best validation accuracy" in printed and "baseline mlp_128_pixels" in printed
    run, history = _check_run(
        out,
        "digits",
        3,
        ["logistic_regression_pixels", "logistic_regression_latency_counts", "mlp_128_pixels"],
    )
    settings = run["settings"]
    assert (settings["inputs"], settings["hidden"], settings["outputs"], settings["steps"]) == (
        64,
        16,
        10,
        20,
    )
    assert (settings["batch"], settings["lr"]) == (32, 1e-2)  # given, and the notebook's default

    # the checkpoint holds the best-on-validation weights: reloaded, they score what run.json says
    brainstate.environ.set(dt=1.0 * u.ms)
    net = helpers.SNN(64, 16, 10)
    restored = helpers.load_checkpoint(out / "checkpoint.msgpack", net, helpers.Trainer(net).optimizer)
    assert restored["epoch"] == run["best_epoch"] and restored["extra"]["dataset"] == "digits"
    train, val, test = cli_datasets.encode("digits", small("digits"), 20)
    trainer = helpers.MinibatchTrainer(net, lr=1e-2)
    assert trainer.evaluate(val)["accuracy"] == pytest.approx(run["validation_accuracy"], abs=1e-12)
    assert trainer.evaluate(test)["accuracy"] == pytest.approx(run["test_accuracy"], abs=1e-12)

    # the epochs are MinibatchTrainer.fit's from the same first weights (seed 0): the same batches,
    # updates and validation scores
    trainer.reinitialize(0)
    fitted = trainer.fit(train, 3, 32, seed=0, validation=val)
    np.testing.assert_allclose(history["train_loss"], fitted["train_loss"], rtol=1e-6)
    np.testing.assert_allclose(history["val_accuracy"], fitted["val_accuracy"], atol=1e-7)

    # resuming it as a random-data run is refused, clearly
    checkpoint = out / "checkpoint.msgpack"
    message = (
        f"--resume: {checkpoint} holds a --dataset digits run; only --dataset random runs can be resumed"
    )
    assert train_usage_error(["--resume", str(checkpoint)], tmp_path / "resumed") == message


@pytest.mark.slow
def test_digits_refit(tmp_path, small, capsys):
    """--refit: the epoch count chosen on validation, trained again from the seed's fresh weights on
    training + validation; the checkpoint holds those final weights and they score the test accuracy."""
    out = tmp_path / "refit"
    args = ["train", "--dataset", "digits", "--hidden", "16", "--epochs", "3", "--no-baselines", "--refit"]
    assert cli_main([*args, "--no-progress", "--out", str(out)]) == 0
    assert "refit on training + validation (160 examples)" in capsys.readouterr().out
    run, history = _check_run(out, "digits", 3, [])
    assert run["test_weights"] == "refit"
    assert run["refit"]["epochs"] == run["best_epoch"] and run["refit"]["examples"] == 96 + 64

    brainstate.environ.set(dt=1.0 * u.ms)
    train, val, test = cli_datasets.encode("digits", small("digits"), 20)
    both = (np.concatenate([train[0], val[0]], axis=1), np.concatenate([train[1], val[1]]))
    trainer = helpers.MinibatchTrainer(helpers.SNN(64, 16, 10), lr=1e-2)
    trainer.reinitialize(0)
    refit = trainer.fit(both, run["best_epoch"], 32, seed=0)
    np.testing.assert_allclose(run["refit"]["train_loss"], refit["train_loss"], rtol=1e-6)
    net = helpers.SNN(64, 16, 10)
    restored = helpers.load_checkpoint(out / "checkpoint.msgpack", net, helpers.Trainer(net).optimizer)
    assert restored["epoch"] == run["best_epoch"] and restored["extra"]["weights"] == "refit"
    np.testing.assert_allclose(restored["losses"], run["refit"]["train_loss"], rtol=1e-12)
    scored = helpers.MinibatchTrainer(net, lr=1e-2).evaluate(test)
    assert scored["loss"] == pytest.approx(run["test_loss"], rel=1e-6)  # the refit's weights, not the best
    assert scored["loss"] == pytest.approx(trainer.evaluate(test)["loss"], rel=1e-6)
    assert scored["accuracy"] == pytest.approx(run["test_accuracy"], abs=1e-12)


@pytest.mark.slow
def test_mnist1d_end_to_end(tmp_path, small):
    out = tmp_path / "mnist1d"
    args = ["train", "--dataset", "mnist1d", "--hidden", "8", "--epochs", "2", "--no-progress"]
    assert cli_main([*args, "--out", str(out)]) == 0
    run, _ = _check_run(out, "mnist1d", 2, ["logistic_regression_sequence", "mlp_100_100_sequence"])
    settings = run["settings"]
    assert (settings["inputs"], settings["steps"], settings["batch"], settings["lr"]) == (32, 40, 128, 2e-2)


@pytest.mark.parametrize(
    ("dataset", "option", "value"),
    [
        ("digits", "--inputs", "64"),
        ("digits", "--outputs", "10"),
        ("digits", "--rate", "5"),
        ("mnist1d", "--steps", "40"),
        ("mnist1d", "--inputs", "32"),
    ],
)
def test_refused_options(tmp_path, dataset, option, value, train_usage_error):
    message = f"{option}: not an option for --dataset {dataset} (the dataset fixes it)"
    assert train_usage_error(["--dataset", dataset, option, value], tmp_path / "out") == message


@pytest.mark.parametrize("dataset", ["digits", "mnist1d"])
def test_resume_refused(tmp_path, dataset, train_usage_error):
    message = f"--resume: not supported for --dataset {dataset} (only for --dataset random)"
    args = ["--dataset", dataset, "--resume", str(tmp_path / "checkpoint.msgpack")]
    assert train_usage_error(args, tmp_path / "out") == message


def test_help_names_the_datasets(capsys):
    with pytest.raises(SystemExit):
        cli_main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "{random,digits,mnist1d,shd,ssc}" in text and "does not support --resume" in text
    # an unset option's help says what happens without it, not "(default: None)"
    assert "(default: None)" not in text and "(default: 100)" in text


# -- one command line: every dataset refuses the same cases before training ---------------------------
DATASET_ARGS = {
    "random": ["--steps", "10", "--batch", "4", "--epochs", "2"],
    "digits": ["--dataset", "digits", "--epochs", "2"],
    "mnist1d": ["--dataset", "mnist1d", "--epochs", "2"],
    "shd": ["--dataset", "shd", "--epochs", "2"],  # and --data-dir: files in SHD's layout the test writes
}


def _path_cases(tmp_path):
    (tmp_path / "a_file").write_text("keep me\n")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine\n")
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    not_writable = "/proc/snn-tutorial/run" if os.geteuid() == 0 else None
    if not_writable is None:
        (tmp_path / "locked").mkdir(mode=0o555)
        not_writable = tmp_path / "locked" / "run"
    return {
        "out under a file": (tmp_path / "a_file" / "sub", "is a file, not a folder"),
        "out is a file": (tmp_path / "a_file", "exists and is not a folder"),
        "out not writable": (not_writable, "cannot write there"),
        "out in /proc": (Path("/proc/nope"), "cannot write there"),
        "out holding other files": (tmp_path / "full", "the folder holds other files (notes.txt)"),
        "out a symbolic link": (tmp_path / "link", "is a symbolic link"),
    }


@pytest.mark.parametrize("dataset", list(DATASET_ARGS))
@pytest.mark.parametrize(
    "case",
    ["out under a file", "out is a file", "out not writable", "out in /proc", "out holding other files",
     "out a symbolic link", "full disk", "memory", "seed", "processes", "data-dir", "no-baselines",
     "processes online", "refit"],
)  # fmt: skip
def test_every_dataset_refuses_before_training(dataset, case, tmp_path, capsys, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("trained")

    monkeypatch.setattr(helpers.Trainer, "fit", no_training)
    monkeypatch.setattr(helpers.MinibatchTrainer, "fit", no_training)
    args, out, expected = list(DATASET_ARGS[dataset]), tmp_path / "new", None
    if dataset == "shd":
        data_dir = tmp_path / "shd_data"
        data_dir.mkdir()
        for name, n in (("shd_train.h5", 40), ("shd_test.h5", 20)):
            shd.write_synthetic(data_dir / name, n, seed=n)
        args += ["--data-dir", str(tmp_path / "nowhere" if case == "data-dir" else data_dir)]
    if case.startswith("out"):
        out, expected = _path_cases(tmp_path)[case]
    elif case == "full disk":
        monkeypatch.setattr(runfolder.shutil, "disk_usage", lambda path: type("u", (), {"free": 1000})())
        expected = "has 1000 bytes free"
    elif case == "memory":
        monkeypatch.setattr(cli_module, "available_memory", lambda: 16 * 1024)
        expected = "B of memory (estimate), more than the 16 KiB available"
    elif case == "processes":  # the synthetic task trains in one process; a batch splits evenly
        args += ["--processes", "3", "--batch", "4" if dataset == "random" else "32"]
        expected = (
            "--processes: only for the real datasets"
            if dataset == "random"
            else "--batch 32: must be a multiple of --processes 3"
        )
    elif case == "processes online" and dataset != "random":  # data parallelism is a BPTT path
        args += ["--processes", "2", "--learning", "d_rtrl"]
        expected = "--processes: data parallelism trains with bptt only, not --learning d_rtrl"
    elif case == "processes online":
        args += ["--processes", "2", "--learning", "d_rtrl"]
        expected = "--processes: only for the real datasets"
    elif case == "no-baselines" and dataset == "random":  # only the real datasets have baselines
        args += ["--no-baselines"]
        expected = "--no-baselines: only for the real datasets"
    elif case == "no-baselines":  # accepted: the other refusals still come first
        args += ["--no-baselines", "--seed", "4294967296"]
        expected = "argument --seed: expected an integer from 0 to 2**32 - 1"
    elif case == "refit" and dataset == "random":  # the synthetic task has no validation part
        args += ["--refit"]
        expected = "--refit: only for the real datasets"
    elif case == "refit":  # the online trainers do not refit
        args += ["--refit", "--learning", "d_rtrl"]
        expected = "--refit: with bptt only, not --learning d_rtrl"
    elif case == "data-dir":  # only for shd and ssc, where it must hold their files
        if dataset != "shd":
            args += ["--data-dir", str(tmp_path)]
        expected = "no such folder" if dataset == "shd" else "--data-dir: only for --dataset shd or ssc"
    else:
        args += ["--seed", "4294967296"]
        expected = "argument --seed: expected an integer from 0 to 2**32 - 1"
    before = {str(p) for p in tmp_path.rglob("*")}
    with pytest.raises(SystemExit) as stop:
        cli_main(["train", *args, "--no-progress", "--out", str(out)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and expected in err.splitlines()[-1], err
    assert {str(p) for p in tmp_path.rglob("*")} == before


def test_digits_steps_beyond_memory_are_refused(tmp_path, train_usage_error):
    """Once an XLA abort (rc 134): refused from the estimate before the spikes are encoded."""
    message = train_usage_error(["--dataset", "digits", "--steps", "100000000"], tmp_path / "out")
    assert "B of memory (estimate), more than the" in message


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["digits", "mnist1d"])
def test_every_dataset_warns_when_the_loss_blows_up(dataset, tmp_path, small, capsys):
    """--lr 1e3 sends the loss to hundreds of thousands of nats in the first epoch: measured against
    the untrained loss (the first batch's) and ln 10, the rule warns, as on the synthetic task."""
    out = tmp_path / "out"
    args = ["train", "--dataset", dataset, "--hidden", "16", "--epochs", "2", "--lr", "1e3", "--no-progress"]
    assert cli_main([*args, "--out", str(out)]) in (0, 1)
    err = capsys.readouterr().err.strip().splitlines()
    assert err and (err[-1].startswith("warning: training blew up") or "diverged" in err[-1]), err


@pytest.mark.slow
def test_a_refit_that_blows_up_is_reported(tmp_path, small, capsys, monkeypatch):
    """--refit: the rule runs on the refit's own losses, against the refit's own first loss, beside the
    run that chose the epoch (here the refit's losses are made to blow up after it has trained)."""
    refit = cli_module._RealData._refit

    def refit_blowing_up(self, on_epoch):
        fit = self.trainer.fit

        def blown(*args, **kwargs):
            rows = fit(*args, **kwargs)
            return rows | {"train_loss": np.asarray(rows["train_loss"]) * 1e6}

        self.trainer.fit = blown
        return refit(self, on_epoch)

    monkeypatch.setattr(cli_module._RealData, "_refit", refit_blowing_up)
    args = ["train", "--dataset", "digits", "--hidden", "16", "--epochs", "2", "--no-baselines", "--refit"]
    assert cli_main([*args, "--no-progress", "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        [line for line in err if line.startswith("warning:")]
        == [line for line in err if line.startswith("warning: refit: training blew up")]
        != []
    ), err
