"""helpers.cli: the command-line trainer, end to end, and every bad option it refuses.

Each bad-option case asserts the message a user sees, and that nothing was written, not even half a file.
"""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import brainstate
import pytest

import helpers
from helpers.cli import main as cli_main

GOOD = ["train", "--steps", "10", "--batch", "4", "--epochs", "2", "--no-progress"]


def run_cli(args, out: Path, capsys) -> str:
    """Run the trainer in-process; expect a usage error (exit 2); return what it printed."""
    with pytest.raises(SystemExit) as stop:
        cli_main([*args, "--out", str(out)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m helpers")
    assert "Traceback" not in err
    return err.splitlines()[-1]


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    brainstate.random.seed(0)
    spikes, labels = helpers.poisson_dataset(10, 4)
    trainer = helpers.Trainer(helpers.SNN())
    losses = trainer.fit(spikes, labels, 3)
    extra = {"dataset": "random", "steps": 10, "batch": 4, "rate": 5.0, "seed": 0, "lr": 3e-3}
    return helpers.save_checkpoint(tmp_path / "ckpt.msgpack", trainer, epoch=3, losses=losses, extra=extra)


CLI_CASES = [
    ("zero hidden neurons", ["--hidden", "0"], "argument --hidden: expected a positive integer, got '0'"),
    ("negative epochs", ["--epochs", "-5"], "argument --epochs: expected a positive integer, got '-5'"),
    ("learning rate not a number", ["--lr", "fast"], "argument --lr: expected a positive number, got 'fast'"),
    (
        "infinite learning rate",
        ["--lr", "inf"],
        "argument --lr: expected a positive, finite number, got 'inf'",
    ),
    ("negative seed", ["--seed", "-1"], "argument --seed: expected a non-negative integer, got '-1'"),
    ("rate above one spike per step", ["--rate", "2000"], "rate * dt must be a probability <= 1"),
    ("unknown dataset", ["--dataset", "mnist"], "argument --dataset: invalid choice: 'mnist'"),
    ("unknown readout", ["--readout", "median"], "argument --readout: invalid choice: 'median'"),
    ("classes the dataset lacks", ["--outputs", "3"], "--outputs 3: the 'random' dataset has 2 classes"),
    ("unknown option", ["--neurons", "4"], "unrecognized arguments: --neurons 4"),
]


@pytest.mark.parametrize("case, extra_args, message", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_options(case, extra_args, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert message in run_cli([*GOOD, *extra_args], out, capsys)
    assert not out.exists(), f"{case}: something was written"


def test_cli_output_path_is_a_file(tmp_path, capsys):
    out = tmp_path / "a_file"
    out.write_text("keep me\n")
    assert "exists and is not a folder" in run_cli(GOOD, out, capsys)
    assert out.read_text() == "keep me\n"


def test_cli_resume_problems(checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    missing = run_cli([*GOOD, "--resume", str(tmp_path / "nope.msgpack")], out, capsys)
    assert "--resume: no checkpoint at" in missing
    notes = tmp_path / "notes.txt"
    notes.write_text("not a checkpoint")
    assert "not a readable checkpoint" in run_cli([*GOOD, "--resume", str(notes)], out, capsys)
    done = run_cli(["train", "--epochs", "2", "--resume", str(checkpoint)], out, capsys)
    assert "--epochs 2: the checkpoint already holds 3 epochs" in done
    assert not out.exists()


def test_cli_succeeds_on_good_options(checkpoint, tmp_path, capsys):
    """The control case: the same call without the bad option writes the four outputs."""
    out = tmp_path / "out"
    assert (
        cli_main(["train", "--epochs", "5", "--resume", str(checkpoint), "--out", str(out), "--no-progress"])
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.msgpack",
        "loss.png",
        "losses.csv",
        "run.json",
    ]


def cli(*args, cwd=None):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, "-m", "helpers", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def read_losses(folder: Path) -> list[float]:
    with open(folder / "losses.csv") as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == ["epoch", "loss"]
    assert [int(r[0]) for r in rows[1:]] == list(range(1, len(rows)))
    return [float(r[1]) for r in rows[1:]]


@pytest.mark.slow
def test_a_run_as_a_user_types_it(tmp_path):
    """python -m helpers train in a fresh interpreter: progress bar, summary line, the four files."""
    result = cli("train", "--steps", "20", "--batch", "8", "--epochs", "5", "--out", str(tmp_path / "a"))
    assert result.returncode == 0, result.stderr
    assert "training" in result.stderr and "loss=" in result.stderr  # the progress bar
    assert "final loss" in result.stdout
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "checkpoint.msgpack",
        "loss.png",
        "losses.csv",
        "run.json",
    ]
    assert (tmp_path / "a" / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((tmp_path / "a" / "run.json").read_text())
    assert summary["epochs"] == 5 and summary["versions"] == helpers.stack_versions()
    assert len(read_losses(tmp_path / "a")) == 5


@pytest.mark.slow
def test_resume_continues_the_same_history_with_the_checkpoints_settings(tmp_path):
    """--resume takes data, seed and learning rate from the checkpoint: a resumed run equals a straight
    one bit for bit, though the resuming command names none of those options."""
    common = [
        "--steps",
        "40",
        "--batch",
        "16",
        "--rate",
        "20",
        "--seed",
        "3",
        "--lr",
        "0.01",
        "--no-progress",
    ]
    assert cli_main(["train", *common, "--epochs", "15", "--out", str(tmp_path / "a")]) == 0
    checkpoint = str(tmp_path / "a" / "checkpoint.msgpack")
    resume = [
        "train",
        "--resume",
        checkpoint,
        "--epochs",
        "25",
        "--out",
        str(tmp_path / "b"),
        "--no-progress",
    ]
    assert cli_main(resume) == 0
    assert cli_main(["train", *common, "--epochs", "25", "--out", str(tmp_path / "c")]) == 0
    assert read_losses(tmp_path / "b") == read_losses(tmp_path / "c")
    assert read_losses(tmp_path / "b")[:15] == read_losses(tmp_path / "a")
    summary = json.loads((tmp_path / "b" / "run.json").read_text())
    assert summary["resumed_from_epoch"] == 15 and summary["settings"]["lr"] == 0.01


def test_command_line_divergence_writes_nothing(tmp_path, capsys):
    assert (
        cli_main(["train", "--lr", "1e30", "--epochs", "20", "--out", str(tmp_path / "out"), "--no-progress"])
        == 1
    )
    err = capsys.readouterr().err
    assert "the loss became" in err and "at epoch 2" in err and "nothing was written" in err
    assert not (tmp_path / "out").exists()
