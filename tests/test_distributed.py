"""helpers.distributed (data parallel over processes), helpers.launcher (N local processes on
127.0.0.1) and helpers.process_group (joining them).

The in-process tests check resuming from a checkpoint, the refusals, and that importing ``helpers``
joins nothing unless asked; a small group of processes that need no JAX shows that a killed process
ends the group with one line and leaves none behind. The tests marked ``slow`` check the
single-process path (one device: the same losses as ``MinibatchTrainer``, bit for bit) and start real
groups on 127.0.0.1: two processes train the same losses as one (to rounding: each device sums its
half of the batch and the all-reduce adds the halves, another order of float32 additions) through the
command line and write one run folder; resuming over two processes continues the same losses; Ctrl-C
stops them all; a coordinator port that is taken is replaced; a launcher killed outright (SIGKILL)
takes its processes with it. Nothing binds or connects beyond 127.0.0.1.
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


@pytest.mark.slow
def test_resume_from_a_checkpoint_continues_the_same_losses(tmp_path):
    trainer = _trainer(distributed.DataParallelTrainer)
    resumed, whole = resumed_and_whole(trainer, _digits_part(), tmp_path / "c.msgpack")
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
    # the launcher alone, without the stack: helpers/launcher.py needs helpers.process_group and validation
    code = f"""
import sys, types
sys.modules["helpers"] = types.ModuleType("helpers")
sys.modules["helpers"].__path__ = [{str(ROOT / "helpers")!r}]
from helpers.launcher import launch
launch({command!r}, 2)
"""
    parent = subprocess.Popen([PYTHON, "-c", code])
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
def test_two_processes_train_the_losses_of_one(tmp_path):
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
    ]
    assert cli_main([*options, "--out", str(tmp_path / "one")]) == 0
    two = subprocess.run(
        [PYTHON, "-m", "helpers", *options, "--processes", "2", "--out", str(tmp_path / "two")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert two.returncode == 0, two.stderr
    assert "[Gloo]" not in two.stdout and two.stdout.count("wrote checkpoint.msgpack") == 1
    # one complete run folder, written by process 0 alone, nothing else beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]
    assert {p.name for p in (tmp_path / "two").iterdir()} == {p.name for p in (tmp_path / "one").iterdir()}
    one, two = _history(tmp_path / "one"), _history(tmp_path / "two")
    for key in ("train_loss", "val_loss"):
        np.testing.assert_allclose(two[key], one[key], rtol=ROUNDING)
    run = json.loads((tmp_path / "two" / "run.json").read_text())
    assert run["settings"]["processes"] == 2 and run["baselines"] == {}  # --no-baselines


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
def test_resume_over_two_processes(tmp_path, capfd, monkeypatch):
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
    _, single = resumed_and_whole(_trainer(distributed.DataParallelTrainer), _digits_part(), tmp_path / "1")
    np.testing.assert_allclose(result["whole"], single, rtol=ROUNDING)


@pytest.mark.slow
def test_ctrl_c_stops_every_process(tmp_path):
    script = tmp_path / "victim.py"
    script.write_text(textwrap.dedent(VICTIM))
    parent = subprocess.Popen(
        [PYTHON, "-c", "import sys; from helpers import launcher; "
         f"launcher.launch([sys.executable, {str(script)!r}, {str(tmp_path / 'pid')!r}, 'wait'], 2)"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        pids = _pids(tmp_path / "pid", 2, timeout=120)
        parent.send_signal(signal.SIGINT)
        assert parent.wait(60) != 0
        assert _gone(pids, timeout=0)
    finally:
        parent.kill()
        parent.wait()


BUSY = """
    import helpers  # joins the group (helpers.process_group) before the stack starts JAX
    import jax, numpy as np
    mesh = jax.sharding.Mesh(np.array(jax.devices()), ("data",))
    by_process = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    x = jax.make_array_from_callback((2,), by_process, lambda index: np.array([1.0, 2.0])[index])
    everywhere = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    total = jax.jit(lambda v: v.sum(), out_shardings=everywhere)(x)
    if jax.process_index() == 0:
        print("sum", float(total))
"""


@pytest.mark.slow
@pytest.mark.xfail(
    strict=False,
    reason="flaky (issue 22): once in two full runs, process 0's own check found the port free, then the "
    "coordinator's gRPC bind failed and JAX died with SIGSEGV instead of the port-in-use exit",
)
def test_a_busy_port_is_replaced(tmp_path, capfd):
    script = tmp_path / "busy.py"
    script.write_text(textwrap.dedent(BUSY))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status = launcher.launch([PYTHON, str(script)], 2, port=port)
    out, err = capfd.readouterr()
    assert status == 0, err
    assert f"note: port {port} on 127.0.0.1 was in use; trying another" in err
    assert out.strip().splitlines()[-1] == "sum 3.0"
