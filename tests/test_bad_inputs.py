"""An inventory of bad input, to the helpers and to the command-line trainer.

Each case asserts the message a user sees, and that nothing was written, not even half a file.
"""

from pathlib import Path

import brainstate
import brainunit as u
import jax.numpy as jnp
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


HELPER_CASES = [
    ("spikes of the wrong width", lambda: helpers.SNN().simulate(jnp.zeros((5, 2, 99), bool)),
     ValueError, "99 input channels but the network expects n_inputs=100"),
    ("integer spikes", lambda: helpers.SNN().simulate(jnp.zeros((5, 2, 100), jnp.int32)),
     TypeError, "bool or floating point"),
    ("NaN in the spikes", lambda: helpers.SNN().simulate(jnp.full((5, 2, 100), jnp.nan)),
     ValueError, "NaN or infinite"),
    ("labels out of range",
     lambda: helpers.accuracy(helpers.SNN(), jnp.zeros((5, 2, 100)), jnp.array([0, 2])),
     ValueError, r"labels must lie in \[0, 1\]"),
    ("batch mismatch", lambda: helpers.fit(helpers.SNN(), jnp.zeros((5, 2, 100)), jnp.array([0, 1, 1])),
     ValueError, "batch mismatch: spikes hold 2 examples but labels hold 3"),
    ("time constant without units", lambda: helpers.SNN(tau_mem=20.0),
     TypeError, "tau_mem must be a quantity with units of"),
    ("negative rate", lambda: helpers.poisson_dataset(rate=-1 * u.Hz),
     ValueError, "rate must be a positive, finite scalar"),
    ("zero steps", lambda: helpers.poisson_spikes(0, 2, 3, 5 * u.Hz),
     ValueError, "n_steps must be a positive integer"),
]  # fmt: skip


@pytest.mark.parametrize("case, call, error, message", HELPER_CASES, ids=[c[0] for c in HELPER_CASES])
def test_helpers_bad_input(case, call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_checkpoint_into_a_missing_folder_writes_nothing(tmp_path):
    trainer = helpers.Trainer(helpers.SNN())
    with pytest.raises(FileNotFoundError, match="no such folder"):
        helpers.save_checkpoint(tmp_path / "missing" / "c.msgpack", trainer, epoch=0)
    with pytest.raises(ValueError, match="epoch must be a non-negative integer"):
        helpers.save_checkpoint(tmp_path / "c.msgpack", trainer, epoch=-1)
    assert list(tmp_path.iterdir()) == []
