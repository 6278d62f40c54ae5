"""Reproducibility, checkpoints, divergence, stack checks and the command-line trainer end to end."""

import csv
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import brainstate
import braintools
import brainunit as u
import numpy as np
import pytest

import helpers

ROOT = Path(__file__).resolve().parent.parent
RUN_ONCE = """
import brainstate, brainunit as u, hashlib, helpers
brainstate.environ.set(dt=1.0 * u.ms)
brainstate.random.seed(0)
net = helpers.SNN()
spikes, labels = helpers.poisson_dataset(n_steps=50, batch_size=32)
trainer = helpers.Trainer(net)
losses = trainer.fit(spikes, labels, 40)
print(hashlib.sha256(losses.tobytes()).hexdigest(), trainer.accuracy(spikes, labels))
"""


def run_in_process(epochs=40):
    brainstate.random.seed(0)
    net = helpers.SNN()
    spikes, labels = helpers.poisson_dataset(n_steps=50, batch_size=32)
    trainer = helpers.Trainer(net)
    return trainer.fit(spikes, labels, epochs), trainer.accuracy(spikes, labels)


def test_same_seed_same_bits_in_two_runs_and_two_processes():
    import hashlib

    first, acc_first = run_in_process()
    second, acc_second = run_in_process()
    np.testing.assert_array_equal(first, second)
    assert acc_first == acc_second
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    processes = [
        subprocess.Popen([sys.executable, "-c", RUN_ONCE], stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300)[0].split() for p in processes]
    assert all(p.returncode == 0 for p in processes)
    assert outputs[0] == outputs[1] == [hashlib.sha256(first.tobytes()).hexdigest(), str(acc_first)]


# -- checkpoints ----------------------------------------------------------------------------------
@pytest.fixture
def trained(small_batch):
    spikes, labels = small_batch
    brainstate.random.seed(0)
    trainer = helpers.Trainer(helpers.SNN(), lr=1e-2)
    losses = trainer.fit(spikes, labels, 15)
    return trainer, losses, spikes, labels


def leaves(tree):
    """Plain arrays of every leaf, looking inside brainstate States."""
    import jax

    unwrap = lambda x: x.value if isinstance(x, brainstate.State) else x  # noqa: E731
    tree = jax.tree.map(unwrap, tree, is_leaf=lambda x: isinstance(x, brainstate.State))
    return [np.asarray(u.get_mantissa(x)) for x in jax.tree.leaves(tree)]


def test_checkpoint_round_trip_is_exact(trained, tmp_path):
    trainer, losses, *_ = trained
    path = helpers.save_checkpoint(
        tmp_path / "run.msgpack", trainer, epoch=15, losses=losses, extra={"seed": 0}
    )
    brainstate.random.seed(99)
    fresh = helpers.Trainer(helpers.SNN(), lr=1e-2)
    info = helpers.load_checkpoint(path, fresh)
    assert info["epoch"] == 15 and info["extra"] == {"seed": 0}
    np.testing.assert_array_equal(info["losses"], losses)
    saved = leaves(trainer.net.states(brainstate.ParamState)) + leaves(trainer.optimizer.opt_state.value)
    restored = leaves(fresh.net.states(brainstate.ParamState)) + leaves(fresh.optimizer.opt_state.value)
    assert len(saved) == len(restored) == 4 + 8 + 2  # 4 parameters, Adam's mu and nu, 2 step counts
    for a, b in zip(saved, restored, strict=True):
        np.testing.assert_array_equal(a, b)
    assert [p.name for p in tmp_path.iterdir()] == ["run.msgpack"]  # no temporary files left


def test_resumed_training_continues_the_same_history(small_batch, tmp_path):
    spikes, labels = small_batch
    brainstate.random.seed(0)
    uninterrupted = helpers.Trainer(helpers.SNN(), lr=1e-2).fit(spikes, labels, 30)

    brainstate.random.seed(0)
    first = helpers.Trainer(helpers.SNN(), lr=1e-2)
    head = first.fit(spikes, labels, 12)
    helpers.save_checkpoint(tmp_path / "c.msgpack", first, epoch=12, losses=head)
    second = helpers.Trainer(helpers.SNN(), lr=1e-2)  # other initial weights, overwritten by the load
    helpers.load_checkpoint(tmp_path / "c.msgpack", second)
    tail = second.fit(spikes, labels, 18)
    np.testing.assert_array_equal(np.concatenate([head, tail]), uninterrupted)


def test_checkpoint_of_another_network_is_refused(trained, tmp_path):
    trainer, losses, *_ = trained
    helpers.save_checkpoint(tmp_path / "c.msgpack", trainer, epoch=15, losses=losses)
    with pytest.raises(
        helpers.CheckpointError, match="saved from another network .*n_hidden: checkpoint 4, network 8"
    ):
        helpers.load_checkpoint(tmp_path / "c.msgpack", helpers.Trainer(helpers.SNN(n_hidden=8)))
    with pytest.raises(helpers.CheckpointError, match="trained with the 'mean' readout"):
        helpers.load_checkpoint(tmp_path / "c.msgpack", helpers.Trainer(helpers.SNN(), readout_method="max"))


def test_truncated_foreign_and_incomplete_files_are_refused(trained, tmp_path):
    trainer, losses, *_ = trained
    good = helpers.save_checkpoint(tmp_path / "good.msgpack", trainer, epoch=15, losses=losses)
    truncated = tmp_path / "truncated.msgpack"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(helpers.CheckpointError, match="not a readable checkpoint"):
        helpers.load_checkpoint(truncated, trainer)
    text = tmp_path / "notes.txt"
    text.write_text("these are not weights\n")
    with pytest.raises(helpers.CheckpointError, match="not a readable checkpoint"):
        helpers.load_checkpoint(text, trainer)
    foreign = tmp_path / "foreign.msgpack"
    braintools.file.msgpack_save(str(foreign), {"weights": np.zeros(3)})
    with pytest.raises(helpers.CheckpointError, match="not an snn-tutorial checkpoint"):
        helpers.load_checkpoint(foreign, trainer)
    incomplete = tmp_path / "incomplete.msgpack"
    braintools.file.msgpack_save(
        str(incomplete), {"format": "snn-tutorial-checkpoint", "version": 1, "config": {}, "epoch": 3}
    )
    with pytest.raises(helpers.CheckpointError, match="lacks losses, params, opt_state"):
        helpers.load_checkpoint(incomplete, trainer)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        helpers.load_checkpoint(tmp_path / "missing.msgpack", trainer)


# -- failure modes ----------------------------------------------------------------------------------
def test_divergence_stops_with_the_epoch():
    brainstate.random.seed(0)
    spikes, labels = helpers.poisson_dataset()
    # natively the loss overflows to NaN; compiled for SSE4.2 it stays finite at ~1e30: both are divergence
    became = r"the loss became (-?nan|-?inf|\d\.\d+e\+\d+) at epoch 2"
    expected = became + r"; lower the learning rate \(lr=1e\+30\)"
    with pytest.raises(FloatingPointError, match=expected):
        helpers.fit(helpers.SNN(), spikes, labels, epochs=50, lr=1e30)


def test_import_fails_clearly_without_brainpy_state(tmp_path):
    fake = tmp_path / "brainpy"
    fake.mkdir()
    (fake / "__init__.py").write_text("__version__ = '2.6.0'  # an old brainpy without brainpy.state\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", "import helpers"], capture_output=True, text=True, env=env)
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("ImportError: helpers needs brainpy.state.LIF")
    assert "tested with brainstate 0.5.4, brainpy 2.8.2" in last_line
    assert "AttributeError" not in result.stderr


def test_other_versions_give_a_one_line_warning():
    faked = dict(helpers.TESTED_VERSIONS, brainstate="0.6.0", jax="0.11.0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        helpers.check_stack(faked)
    assert len(caught) == 1 and caught[0].category is helpers.StackWarning
    message = str(caught[0].message)
    assert "\n" not in message and "found brainstate 0.6.0, jax 0.11.0" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        helpers.check_stack(dict(helpers.TESTED_VERSIONS))  # the pinned versions: silent


# -- the command-line trainer, end to end -------------------------------------------------------------
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


def test_command_line_train_and_resume(tmp_path):
    """One run end to end in a subprocess, as a user types it; resumed and straight runs in-process."""
    from helpers.cli import main

    common = ["--steps", "40", "--batch", "16", "--rate", "20", "--seed", "3"]
    first = cli("train", *common, "--epochs", "25", "--out", str(tmp_path / "a"))
    assert first.returncode == 0, first.stderr
    assert "training" in first.stderr and "loss=" in first.stderr  # the progress bar
    assert "final loss" in first.stdout
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "checkpoint.msgpack",
        "loss.png",
        "losses.csv",
        "run.json",
    ]
    assert (tmp_path / "a" / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((tmp_path / "a" / "run.json").read_text())
    assert summary["epochs"] == 25 and summary["versions"] == helpers.stack_versions()

    checkpoint = str(tmp_path / "a" / "checkpoint.msgpack")
    assert (
        main(
            ["train", "--resume", checkpoint, "--epochs", "40", "--out", str(tmp_path / "b"), "--no-progress"]
        )
        == 0
    )
    assert main(["train", *common, "--epochs", "40", "--out", str(tmp_path / "c"), "--no-progress"]) == 0
    assert read_losses(tmp_path / "b") == read_losses(tmp_path / "c")
    assert read_losses(tmp_path / "b")[:25] == read_losses(tmp_path / "a")
    assert json.loads((tmp_path / "b" / "run.json").read_text())["resumed_from_epoch"] == 25


def test_command_line_divergence_writes_nothing(tmp_path, capsys):
    from helpers.cli import main

    assert (
        main(["train", "--lr", "1e30", "--epochs", "20", "--out", str(tmp_path / "out"), "--no-progress"])
        == 1
    )
    err = capsys.readouterr().err
    assert "the loss became" in err and "at epoch 2" in err and "nothing was written" in err
    assert not (tmp_path / "out").exists()


def test_readme_documents_checkpoints_and_the_trainer():
    readme = (ROOT / "README.md").read_text()
    assert "python -m helpers train" in readme and "--resume" in readme
    assert "save_checkpoint" in readme and "load_checkpoint" in readme
