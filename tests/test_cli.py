"""helpers.cli: the command-line trainer, end to end, and every bad option it refuses.

Each bad-option case asserts the message a user sees, and that nothing was written, not even half a file.
"""

import contextlib
import csv
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import brainstate
import numpy as np
import pytest

import helpers
import helpers.cli as cli_module
from helpers import runfolder
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
    path = tmp_path / "ckpt.msgpack"
    return helpers.save_checkpoint(path, trainer.net, trainer.optimizer, epoch=3, losses=losses, extra=extra)


SEEDS = r"an integer from 0 to 2**32 - 1 = 4294967295 (seeds are 32-bit)"
NO_MEMORY = "B of memory (estimate), more than the"

CLI_CASES = [
    ("zero hidden neurons", ["--hidden", "0"], "argument --hidden: expected a positive integer, got '0'"),
    ("negative epochs", ["--epochs", "-5"], "argument --epochs: expected a positive integer, got '-5'"),
    ("learning rate not a number", ["--lr", "fast"], "argument --lr: expected a positive number, got 'fast'"),
    (
        "infinite learning rate",
        ["--lr", "inf"],
        "argument --lr: expected a positive, finite number, got 'inf'",
    ),
    ("negative seed", ["--seed", "-1"], f"argument --seed: expected {SEEDS}, got '-1'"),
    ("seed beyond 64 bits", ["--seed", "99999999999999999999"], f"argument --seed: expected {SEEDS}, got"),
    ("seed that would wrap to 0", ["--seed", "4294967296"], f"argument --seed: expected {SEEDS}, got"),
    ("rate above one spike per step", ["--rate", "2000"], "rate * dt must be a probability <= 1"),
    ("unknown dataset", ["--dataset", "mnist"], "argument --dataset: invalid choice: 'mnist'"),
    ("unknown readout", ["--readout", "median"], "argument --readout: invalid choice: 'median'"),
    ("classes the dataset lacks", ["--outputs", "3"], "--outputs 3: the 'random' dataset has 2 classes"),
    ("unknown option", ["--neurons", "4"], "unrecognized arguments: --neurons 4"),
    # sizes that once aborted the process (XLA: Check failed: buffer_.IsConcrete()) or ran out of memory:
    # refused from an estimate computed without allocating, before any data is drawn
    ("steps beyond memory", ["--steps", "1000000000"], NO_MEMORY),
    ("batch beyond memory", ["--batch", "100000000"], NO_MEMORY),
    ("hidden layer beyond memory", ["--hidden", "1000000000"], NO_MEMORY),
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_cli_succeeds_on_good_options(checkpoint, tmp_path, capsys):
    """The control case: the same call without the bad option writes the four outputs."""
    out = tmp_path / "out"
    assert (
        cli_main(
            # --hidden 4 and --lr 0.003 repeat the checkpoint's own settings: accepted
            ["train", "--epochs", "5", "--resume", str(checkpoint), "--hidden", "4", "--lr", "3e-3"]
            + ["--out", str(out), "--no-progress"]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.msgpack",
        "history.csv",
        "history.png",
        "run.json",
    ]


def cli(*args, cwd=None):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, "-m", "helpers", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def read_losses(folder: Path) -> list[float]:
    with open(folder / "history.csv") as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == ["epoch", "train_loss"]
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
        "history.csv",
        "history.png",
        "run.json",
    ]
    assert (tmp_path / "a" / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
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


@pytest.mark.slow
def test_command_line_divergence_writes_nothing(tmp_path, capsys):
    assert (
        cli_main(["train", "--lr", "1e30", "--epochs", "20", "--out", str(tmp_path / "out"), "--no-progress"])
        == 1
    )
    err = capsys.readouterr().err
    assert "the loss became" in err and "at epoch 2" in err and "nothing was written" in err
    assert not (tmp_path / "out").exists()


# -- --out: refused before training when it cannot be written ------------------------------------------
def folder_state(folder: Path) -> dict:
    """Every file under ``folder`` (relative name -> bytes); hidden temporaries included."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_cli_out_empty_name_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # '' would have meant the current folder
    with pytest.raises(SystemExit) as stop:
        cli_main([*GOOD, "--out", ""])
    assert stop.value.code == 2
    assert "argument --out: expected a folder name, got ''" in capsys.readouterr().err.splitlines()[-1]
    assert list(tmp_path.iterdir()) == []


def test_cli_out_under_a_file(tmp_path, capsys):
    (tmp_path / "a_file").write_text("keep me\n")
    message = run_cli(GOOD, tmp_path / "a_file" / "run", capsys)
    assert f"{tmp_path / 'a_file'} is a file, not a folder" in message
    assert folder_state(tmp_path) == {"a_file": b"keep me\n"}


def test_cli_out_not_writable(tmp_path, capsys):
    if os.geteuid() == 0:  # root writes through permissions: use a folder no one can create files in
        out, expected = Path("/proc/snn-tutorial/run"), "cannot write there"
    else:
        (tmp_path / "locked").mkdir(mode=0o555)
        out, expected = tmp_path / "locked" / "run", "cannot write there (Permission denied)"
    assert expected in run_cli(GOOD, out, capsys)
    assert not out.exists()


def test_cli_out_on_a_full_disk(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(runfolder.shutil, "disk_usage", lambda path: type("usage", (), {"free": 1000})())
    message = run_cli(GOOD, tmp_path / "out", capsys)
    assert "the outputs need about" in message and "has 1000 bytes free" in message
    assert list(tmp_path.iterdir()) == []


def test_cli_out_holding_other_files_is_not_replaced(tmp_path, capsys):
    """A run replaces a previous run's folder as a whole, so it refuses a folder holding anything else."""
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine\n")
    message = run_cli(GOOD, tmp_path / "out", capsys)
    assert "the folder holds other files (notes.txt); give an empty or new folder" in message
    assert folder_state(tmp_path) == {"out/notes.txt": b"mine\n"}


def test_cli_out_as_a_symbolic_link(tmp_path, capsys):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert "is a symbolic link; give the folder it points to" in run_cli(GOOD, tmp_path / "link", capsys)
    assert list((tmp_path / "real").iterdir()) == []


def test_cli_memory_estimate_against_the_available_memory(tmp_path, capsys, monkeypatch):
    assert cli_module.available_memory() > 2**20  # the real one reads /proc/meminfo or os.sysconf
    monkeypatch.setattr(cli_module, "available_memory", lambda: 16 * 1024)
    needed = cli_module.training_memory(10, 4, 100, 4, 2, 5.0, epochs=2)["total"]
    message = run_cli(GOOD, tmp_path / "out", capsys)
    assert message.endswith(
        f"--steps 10 --batch 4 --inputs 100 --hidden 4: training needs about {needed / 1024:.3g} KiB of "
        "memory (estimate), more than the 16 KiB available; use fewer steps, a smaller batch or fewer neurons"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("sizes", [(100, 128, 100, 4, 2), (50, 32, 400, 64, 2), (20, 16, 100, 8, 10)])
def test_memory_estimate_from_the_sizes_bounds_xlas(sizes):
    """The estimate computed from the sizes alone is above XLA's estimate of the compiled training step,
    and not far above (within 4x)."""
    steps, batch, inputs, hidden, outputs = sizes
    spikes, labels = helpers.poisson_dataset(steps, batch, inputs, seed=1)
    if outputs != 2:
        labels = labels * (outputs - 1)
    xla = helpers.Trainer(helpers.SNN(inputs, hidden, outputs)).memory_estimate(spikes, labels)["total"]
    ours = cli_module.training_memory(steps, batch, inputs, hidden, outputs, 5.0, epochs=1)["step"] / 2**20
    assert xla <= ours <= 4 * xla


# -- --resume: its settings come from the checkpoint -----------------------------------------------------
def test_cli_resume_refuses_other_settings(checkpoint, tmp_path, capsys):
    message = run_cli(
        [
            "train",
            "--epochs",
            "5",
            "--resume",
            str(checkpoint),
            "--hidden",
            "8",
            "--lr",
            "0.5",
            "--seed",
            "7",
        ],
        tmp_path / "out",
        capsys,
    )
    assert message.endswith(
        "--resume continues the checkpoint's run with its own settings (--hidden 4, --lr 0.003, --seed 0); "
        "drop --hidden 8, --lr 0.5, --seed 7, or train a new run without --resume"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_cli_resume_refuses_a_crafted_checkpoint(checkpoint, tmp_path, capsys):
    import braintools

    raw = braintools.file.msgpack_load(str(checkpoint), target=None)
    weight = raw["params"]["input_layer"]["weight"]["weight"]
    weight["mantissa"] = np.zeros((3, 3), np.float32)
    braintools.file.msgpack_save(str(tmp_path / "bad.msgpack"), raw)
    message = run_cli([*GOOD[:-2], "5", "--resume", str(tmp_path / "bad.msgpack")], tmp_path / "out", capsys)
    assert (
        "does not match the network's parameters: params/input_layer/weight/weight/mantissa must " in message
    )
    raw["epoch"] = "3"
    braintools.file.msgpack_save(str(tmp_path / "bad.msgpack"), raw, overwrite=True)
    message = run_cli([*GOOD[:-2], "5", "--resume", str(tmp_path / "bad.msgpack")], tmp_path / "out", capsys)
    assert "not a valid checkpoint: epoch must be a non-negative integer, got str '3'" in message
    raw = braintools.file.msgpack_load(str(checkpoint), target=None)
    raw["extra"]["steps"] = "many"
    braintools.file.msgpack_save(str(tmp_path / "bad.msgpack"), raw, overwrite=True)
    message = run_cli([*GOOD[:-2], "5", "--resume", str(tmp_path / "bad.msgpack")], tmp_path / "out", capsys)
    assert "--resume: the checkpoint's steps is 'many': expected a positive integer, got 'many'" in message
    raw["extra"]["steps"] = 10
    raw["losses"] = raw["losses"][:2]
    braintools.file.msgpack_save(str(tmp_path / "bad.msgpack"), raw, overwrite=True)
    message = run_cli([*GOOD[:-2], "5", "--resume", str(tmp_path / "bad.msgpack")], tmp_path / "out", capsys)
    assert "--resume: the checkpoint holds 3 epochs but 2 losses" in message
    assert not (tmp_path / "out").exists()


# -- training that blows up, Ctrl-C, failures while writing ---------------------------------------------
@pytest.mark.slow
def test_cli_warns_when_the_loss_blows_up(tmp_path, capsys):
    """--lr 1e3 sends the loss of this run from ln 2 to thousands of nats without NaN (--lr 10: 31.6)."""
    out = tmp_path / "out"
    assert cli_main([*GOOD[:-2], "30", "--lr", "1e3", "--no-progress", "--out", str(out)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: training blew up: the loss rose from 0.693 to ")
    assert err[0].endswith("; lower the learning rate (lr=1000; try 100)")
    assert len(read_losses(out)) == 30


@pytest.fixture
def old_run(tmp_path) -> Path:
    """A folder holding a complete earlier run (seed 0, 2 epochs)."""
    out = tmp_path / "out"
    assert cli_main([*GOOD, "--out", str(out)]) == 0
    return out


@pytest.mark.slow
def test_cli_ctrl_c_during_training(old_run, tmp_path, capsys, monkeypatch):
    before = folder_state(tmp_path)
    capsys.readouterr()

    def fit(self, *args, on_epoch, **kwargs):
        def stop_at_epoch_2(row):
            on_epoch(row)
            if row["epoch"] == 2:
                raise KeyboardInterrupt

        return original(self, *args, on_epoch=stop_at_epoch_2, **kwargs)

    original = helpers.Trainer.fit
    monkeypatch.setattr(helpers.Trainer, "fit", fit)
    assert cli_main([*GOOD[:-2], "5", "--no-progress", "--seed", "9", "--out", str(old_run)]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"interrupted: nothing was written, {old_run} was left as it was"
    assert folder_state(tmp_path) == before


@pytest.mark.slow
def test_cli_ctrl_c_while_writing_keeps_the_old_run(old_run, tmp_path, capsys, monkeypatch):
    before = folder_state(tmp_path)
    capsys.readouterr()
    written = []

    def write_file(path, content):
        written.append(path.name)
        if len(written) == 3:
            raise KeyboardInterrupt
        original(path, content)

    original = runfolder._write_file
    monkeypatch.setattr(runfolder, "_write_file", write_file)
    assert cli_main([*GOOD, "--seed", "9", "--out", str(old_run)]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        f"interrupted: {old_run} holds the previous run or the new one, complete"
    )
    assert folder_state(tmp_path) == before


@pytest.mark.slow
def test_cli_disk_full_while_writing(old_run, tmp_path, capsys, monkeypatch):
    before = folder_state(tmp_path)
    capsys.readouterr()

    def write_file(path, content):
        if path.name == "history.png":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        original(path, content)

    original = runfolder._write_file
    monkeypatch.setattr(runfolder, "_write_file", write_file)
    assert cli_main([*GOOD, "--seed", "9", "--out", str(old_run)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"error: could not write to {old_run} ([Errno 28] No space left on device); it was left as it was"
    ]
    assert folder_state(tmp_path) == before


def test_cli_out_of_memory_while_training(tmp_path, capsys, monkeypatch):
    def fit(self, *args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(helpers.Trainer, "fit", fit)
    assert cli_main([*GOOD, "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: out of memory while training; use fewer steps, a smaller batch or fewer neurons; "
        "nothing was written"
    ]
    assert list(tmp_path.iterdir()) == []


OLD = {name: f"old {name}".encode() for name in runfolder.RUN_FILES}


@contextlib.contextmanager
def _sigint_not_ignored():
    """Start a child with Ctrl-C not ignored: a child inherits an ignored SIGINT from its parent (a test
    process may have one), and Python then leaves it ignored; a handler, unlike SIG_IGN, is not
    inherited across exec. (No preexec_fn: forking a process that runs JAX's threads can deadlock.)"""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)


@pytest.mark.slow
def test_a_real_ctrl_c_during_training(tmp_path):
    """SIGINT to `python -m helpers train` while it trains: one line, exit 130, the old run untouched."""
    out = tmp_path / "out"
    out.mkdir()
    for name, data in OLD.items():
        (out / name).write_bytes(data)
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, "-m", "helpers", *GOOD[:-2], "100000", "--out", str(out)]
    with _sigint_not_ignored():
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    os.set_blocking(process.stderr.fileno(), False)
    seen, deadline = b"", time.monotonic() + 240
    while b"loss=" not in seen and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
        seen += process.stderr.read() or b""
    assert b"loss=" in seen, seen.decode()[-2000:]  # training is under way
    process.send_signal(signal.SIGINT)
    os.set_blocking(process.stderr.fileno(), True)
    stdout, rest = process.communicate(timeout=120)
    err = (seen + rest).decode()
    assert process.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    assert (
        err.strip().splitlines()[-1].endswith(f"interrupted: nothing was written, {out} was left as it was")
    )
    assert folder_state(tmp_path) == {f"out/{name}": data for name, data in OLD.items()}


@pytest.mark.slow
def test_ctrl_c_as_the_run_ends_prints_one_line_at_most(tmp_path):
    """SIGINT over and over from the moment the run folder appears until the process is gone (the last
    lines, the interpreter's exit and JAX's atexit clean-up): at most one line, never a traceback, and
    the folder complete."""
    out = tmp_path / "out"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, "-m", "helpers", *GOOD, "--out", str(out)]
    with _sigint_not_ignored():
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 240
    while not out.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.001)
    sent = 0
    while process.poll() is None and time.monotonic() < deadline:
        process.send_signal(signal.SIGINT)
        sent += 1
        time.sleep(0.002)
    stdout, err = process.communicate(timeout=60)
    err = err.decode()
    assert "Traceback" not in err and "Exception ignored" not in err, err[-3000:]
    assert len(err.strip().splitlines()) <= 1, err[-3000:]
    assert process.returncode in (0, 130), err
    assert sorted(p.name for p in out.iterdir()) == sorted(runfolder.RUN_FILES)
