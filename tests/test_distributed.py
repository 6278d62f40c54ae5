"""helpers.distributed (data parallel over processes), helpers.launcher (N local processes on
127.0.0.1) and helpers.process_group (joining them).

The in-process tests check resuming from a checkpoint, the refusals, that importing ``helpers`` joins
nothing unless asked, and that a held coordinator port is refused to anyone else; small groups of
processes that need no JAX show that a killed process ends the group with one line and leaves none
behind, and that a process 0 that dies while its coordinator starts (as JAX's did on a taken port) is
started again on another port. The tests marked ``slow`` check the single-process path (one device:
the same losses as ``MinibatchTrainer``, bit for bit) and start real groups on 127.0.0.1: two
processes train the same losses as one (to rounding: each device sums its half of the batch and the
all-reduce adds the halves, another order of float32 additions) through the command line, on another
port when the first is taken, and write one run folder; resuming over two processes continues the
same losses; Ctrl-C stops them all; a launcher killed outright (SIGKILL) takes its processes with it.
Nothing binds or connects beyond 127.0.0.1. The groups are few, as each process imports the stack.
"""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import brainstate
import brainunit as u
import jax
import numpy as np
import pytest

import helpers
from helpers import distributed, launcher, process_group
from helpers.cli import main as cli_main

PYTHON = sys.executable
ROOT = Path(__file__).resolve().parents[1]
#: rtol of one process against two: float32 sums in another order, over a few epochs of Adam
ROUNDING = 1e-5


def _digits_part(n=48):
    brainstate.environ.set(dt=1.0 * u.ms)
    splits = helpers.realdata.load_digits()
    spikes = helpers.realdata.latency_code(splits.train[0][:n], 10)
    return (np.asarray(spikes), splits.train[1][:n])


def _trainer(cls, hidden=8, seed=0):
    brainstate.environ.set(dt=1.0 * u.ms)
    brainstate.random.seed(seed)
    return cls(helpers.SNN(64, hidden, 10), lr=1e-2)


@pytest.mark.slow
def test_one_device_is_minibatch_trainer_bit_for_bit():
    train = _digits_part()
    trainers = [_trainer(helpers.MinibatchTrainer), _trainer(distributed.DataParallelTrainer)]
    reference, parallel = (
        t.fit(train, 2, 16, seed=1, validation=train, eval_batch_size=32) for t in trainers
    )
    for key in reference:
        np.testing.assert_array_equal(parallel[key], reference[key])
    reference, parallel = (t.evaluate(train, 32) for t in trainers)  # the compiled evaluation again
    for key in ("predictions", "hidden_counts"):
        np.testing.assert_array_equal(parallel[key], reference[key])


def resumed_and_whole(trainer, train, checkpoint) -> tuple[np.ndarray, np.ndarray]:
    """Losses of 3 epochs in one go, and of 1 epoch, a checkpoint (written by process 0), the trainer
    set to other weights, the checkpoint loaded (by every process) and 2 more epochs."""
    trainer.reinitialize(0)
    whole = trainer.fit(train, 3, 16, seed=2)["train_loss"]
    trainer.reinitialize(0)
    head = trainer.fit(train, 1, 16, seed=2)["train_loss"]
    if distributed.is_main_process():
        helpers.save_checkpoint(checkpoint, trainer.net, trainer.optimizer, epoch=1, losses=head)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("checkpoint written")
    trainer.reinitialize(99)
    restored = helpers.load_checkpoint(checkpoint, trainer.net, trainer.optimizer)
    tail = trainer.fit(train, 3, 16, seed=2, start_epoch=restored["epoch"])["train_loss"]
    return np.concatenate([restored["losses"], tail]), whole


@pytest.fixture(scope="module")
def one_process_resume(tmp_path_factory):
    """:func:`resumed_and_whole` in this process (one device), and its trainer; shared by the tests
    of resuming in one process and of two processes against one."""
    trainer = _trainer(distributed.DataParallelTrainer)
    resumed, whole = resumed_and_whole(trainer, _digits_part(), tmp_path_factory.mktemp("one") / "c.msgpack")
    return resumed, whole, trainer


@pytest.mark.slow
def test_resume_from_a_checkpoint_continues_the_same_losses(one_process_resume):
    resumed, whole, trainer = one_process_resume
    np.testing.assert_array_equal(resumed, whole)
    with pytest.raises(ValueError, match="start_epoch=3 must be below epochs=3"):
        trainer.fit(_digits_part(), 3, 16, start_epoch=3)


def test_refuses_what_it_does_not_do():
    net = helpers.SNN(4, 2, 2)
    with pytest.raises(TypeError, match="no 'encoder'"):
        distributed.DataParallelTrainer(net, encoder=lambda x: x)
    with pytest.raises(TypeError, match="no 'data_parallel'"):
        distributed.DataParallelTrainer(net, data_parallel=True)
    with pytest.raises(ValueError, match="processes must be a positive integer"):
        launcher.launch([PYTHON, "-c", "pass"], 0)


def test_importing_helpers_joins_nothing():
    """This process imported helpers without being asked to join a group: nothing was joined."""
    assert not process_group.wanted()
    assert not jax.distributed.is_initialized() and jax.process_count() == 1
    assert not process_group.initialize()  # and asking without the environment joins nothing


def test_loopback_only(monkeypatch):
    port = launcher.free_port()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # free, and on the loopback address
    monkeypatch.setenv(process_group.ENV_PROCESS_ID, "0")
    monkeypatch.setenv(process_group.ENV_PROCESSES, "2")
    monkeypatch.setenv(process_group.ENV_COORDINATOR, "10.0.0.1:1234")
    with pytest.raises(ValueError, match="uses 127.0.0.1 only"):
        process_group.initialize()


#: a group member that needs no JAX: it records its pid, then process 1 dies by SIGKILL ("kill") or all
#: wait; "orphan" also makes each end itself when its launcher dies (helpers.process_group, loaded alone)
VICTIM = """
    import importlib.util, os, signal, sys, time
    rank = int(os.environ["HELPERS_PROCESS_ID"])
    if sys.argv[2] == "orphan":
        spec = importlib.util.spec_from_file_location("process_group", sys.argv[3])
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module._die_with_launcher()
    open(sys.argv[1] + str(rank), "w").write(str(os.getpid()))
    time.sleep(0.5)
    if rank == 1 and sys.argv[2] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie awaiting its parent counts as gone
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _pids(prefix, n, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not all(Path(f"{prefix}{rank}").exists() for rank in range(n)):
        assert time.monotonic() < deadline, "the processes did not start"
        time.sleep(0.05)
    time.sleep(0.1)  # written whole
    return [int(Path(f"{prefix}{rank}").read_text()) for rank in range(n)]


def _gone(pids, timeout=10.0) -> bool:
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_killed_process_stops_the_group(tmp_path, capsys):
    script = tmp_path / "victim.py"
    script.write_text(textwrap.dedent(VICTIM))
    start = time.monotonic()
    status = launcher.launch([PYTHON, str(script), str(tmp_path / "pid"), "kill"], 2)
    assert time.monotonic() - start < 60
    assert status == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: process 1 of 2 was killed by SIGKILL; the other processes were stopped"]
    assert _gone(_pids(tmp_path / "pid", 2), timeout=0)


def _launcher_alone(command: list[str]) -> subprocess.Popen:
    """A process that launches two copies of ``command`` with helpers.launcher loaded without the rest
    of the package (it needs helpers.process_group and helpers.validation alone)."""
    code = f"""
import signal, sys, types
signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C, even if started with SIGINT ignored
sys.modules["helpers"] = types.ModuleType("helpers")
sys.modules["helpers"].__path__ = [{str(ROOT / "helpers")!r}]
from helpers.launcher import launch
launch({command!r}, 2)
"""
    return subprocess.Popen([PYTHON, "-c", code], stderr=subprocess.PIPE, text=True)


@pytest.mark.slow  # its launcher imports helpers.validation, hence JAX: several seconds
def test_a_killed_launcher_leaves_no_process(tmp_path):
    """Even a launcher killed outright (SIGKILL, no clean-up) leaves no process behind."""
    script = tmp_path / "victim.py"
    script.write_text(textwrap.dedent(VICTIM))
    command = [
        PYTHON,
        str(script),
        str(tmp_path / "pid"),
        "orphan",
        str(ROOT / "helpers" / "process_group.py"),
    ]
    parent = _launcher_alone(command)
    try:
        pids = _pids(tmp_path / "pid", 2)
        parent.kill()
        parent.wait(10)
        assert _gone(pids), "a launched process outlived its launcher"
    finally:
        parent.kill()
        parent.wait()
        for pid in _pids(tmp_path / "pid", 2, timeout=0) if (tmp_path / "pid1").exists() else []:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _history(out):
    with open(out / "history.csv") as stream:
        rows = list(csv.DictReader(stream))
    return {key: np.array([float(r[key]) for r in rows]) for key in rows[0]}


@pytest.mark.slow
def test_two_processes_train_the_losses_of_one(tmp_path, capfd, monkeypatch):
    """Through the command line (its launcher in this process, as ``python -m helpers`` runs it), and
    with the first coordinator port it picks taken by another program: another port is used. With
    ``--refit``, the refit's losses too."""
    options = [
        "train",
        "--dataset",
        "digits",
        "--epochs",
        "2",
        "--hidden",
        "16",
        "--no-progress",
        "--no-baselines",
        "--refit",
    ]
    assert cli_main([*options, "--out", str(tmp_path / "one")]) == 0
    capfd.readouterr()
    free_port = launcher.free_port
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        offered = iter([port])
        monkeypatch.setattr(launcher, "free_port", lambda: next(offered, None) or free_port())
        status = cli_main([*options, "--processes", "2", "--out", str(tmp_path / "two")])
    out, err = capfd.readouterr()
    assert status == 0, err
    assert err.strip().splitlines() == [f"note: port {port} on 127.0.0.1 was in use; trying another port"]
    assert "[Gloo]" not in out and out.count("wrote checkpoint.msgpack") == 1
    # one complete run folder, written by process 0 alone, nothing else beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]
    assert {p.name for p in (tmp_path / "two").iterdir()} == {p.name for p in (tmp_path / "one").iterdir()}
    one, two = _history(tmp_path / "one"), _history(tmp_path / "two")
    for key in ("train_loss", "val_loss"):
        np.testing.assert_allclose(two[key], one[key], rtol=ROUNDING)
    run = json.loads((tmp_path / "two" / "run.json").read_text())
    assert run["settings"]["processes"] == 2 and run["baselines"] == {}  # --no-baselines
    alone = json.loads((tmp_path / "one" / "run.json").read_text())
    assert run["test_weights"] == "refit" and run["refit"]["epochs"] == alone["refit"]["epochs"]
    np.testing.assert_allclose(run["refit"]["train_loss"], alone["refit"]["train_loss"], rtol=ROUNDING)


RESUME = """
    import json
    import jax
    import helpers
    from test_distributed import _digits_part, _trainer, resumed_and_whole
    trainer = _trainer(helpers.distributed.DataParallelTrainer)
    resumed, whole = resumed_and_whole(trainer, _digits_part(), {checkpoint!r})
    if helpers.distributed.is_main_process():
        result = {{"devices": len(jax.devices()), "whole": whole.tolist(), "resumed": resumed.tolist()}}
        print(json.dumps(result))
"""


@pytest.mark.slow
def test_resume_over_two_processes(tmp_path, capfd, monkeypatch, one_process_resume):
    script = tmp_path / "resume.py"
    script.write_text(textwrap.dedent(RESUME.format(checkpoint=str(tmp_path / "c.msgpack"))))
    monkeypatch.setenv("PYTHONPATH", f"{ROOT / 'tests'}{os.pathsep}{ROOT}")  # they import this file
    status = launcher.launch([PYTHON, str(script)], 2)
    out, err = capfd.readouterr()
    assert status == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["devices"] == 2
    np.testing.assert_array_equal(result["resumed"], result["whole"])
    # and one process trains the same losses, to rounding
    np.testing.assert_allclose(result["whole"], one_process_resume[1], rtol=ROUNDING)


@pytest.mark.slow
def test_ctrl_c_stops_every_process(tmp_path):
    script = tmp_path / "victim.py"
    script.write_text(textwrap.dedent(VICTIM))
    parent = _launcher_alone([PYTHON, str(script), str(tmp_path / "pid"), "wait"])
    try:
        pids = _pids(tmp_path / "pid", 2, timeout=120)
        parent.send_signal(signal.SIGINT)
        assert parent.wait(60) != 0
        assert _gone(pids, timeout=0)
    finally:
        parent.kill()
        parent.wait()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the port is held on Linux only")
def test_a_held_port_is_refused_to_others_and_a_taken_one_is_refused():
    port = launcher.free_port()
    holder = launcher.reserve_port(port)
    try:
        with socket.socket() as other, pytest.raises(OSError):
            other.bind(("127.0.0.1", port))  # held until the group ends: nothing else can take it
        with pytest.raises(OSError):
            launcher.reserve_port(port)  # nor can a second group
    finally:
        if holder is not None:
            holder.close()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        with pytest.raises(OSError):
            launcher.reserve_port(port)


#: a group member that needs no JAX: on the first port it is given, process 0 says it is starting the
#: coordinator and dies by SIGSEGV, as JAX's coordinator did when its port was taken
CRASH_ON_FIRST_PORT = """
    import os, signal, sys
    rank, address = int(os.environ["HELPERS_PROCESS_ID"]), os.environ["HELPERS_COORDINATOR"]
    if rank == 0:
        open(os.environ["HELPERS_COORDINATOR_STATE"], "w").write("starting")
        if not os.path.exists(sys.argv[1]):
            open(sys.argv[1], "w").write(address)
            os.kill(os.getpid(), signal.SIGSEGV)
        open(os.environ["HELPERS_COORDINATOR_STATE"], "w").write("started")
        print("second", address)
"""


def test_a_coordinator_that_crashes_on_its_port_is_given_another(tmp_path, capfd):
    script = tmp_path / "crash.py"
    script.write_text(textwrap.dedent(CRASH_ON_FIRST_PORT))
    assert launcher.launch([PYTHON, str(script), str(tmp_path / "first")], 2) == 0
    out, err = capfd.readouterr()
    first = (tmp_path / "first").read_text()
    assert err.strip().splitlines() == [
        f"note: process 0 was killed by SIGSEGV while its coordinator started on {first}; trying another port"
    ]
    assert out.startswith("second 127.0.0.1:") and out.split()[-1] != first
    # a crash after the coordinator started is an error like any other, not retried
    (tmp_path / "first").unlink()
    script.write_text(textwrap.dedent(CRASH_ON_FIRST_PORT).replace('"starting"', '"started"'))
    assert launcher.launch([PYTHON, str(script), str(tmp_path / "first")], 2) == 1
    assert capfd.readouterr().err.strip().splitlines() == [
        "error: process 0 of 2 was killed by SIGSEGV; the other processes were stopped"
    ]
