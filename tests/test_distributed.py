"""helpers.distributed: data-parallel training over processes, and the loopback-only launcher.

The in-process tests check the single-process path (one device: the same losses as
``MinibatchTrainer``, bit for bit). The tests marked ``slow`` start real processes on 127.0.0.1:
two processes train the same losses as one (to rounding: each device sums its half of the batch and
the all-reduce adds the halves, another order of float32 additions), resuming continues the same
losses, a killed process ends the group with one line and no process left behind, Ctrl-C stops them
all, and a coordinator port that is taken is replaced. Nothing binds or connects beyond 127.0.0.1.
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

import brainstate
import brainunit as u
import numpy as np
import pytest

import helpers
from helpers import cli_datasets, distributed
from helpers.cli import main as cli_main

PYTHON = sys.executable


def _digits_part(n=48, hidden=8):
    brainstate.environ.set(dt=1.0 * u.ms)
    splits = helpers.datasets.load_digits()
    spikes = helpers.datasets.latency_code(splits.train[0][:n], 10)
    return (np.asarray(spikes), splits.train[1][:n])


def _trainer(cls, hidden=8, seed=0):
    brainstate.random.seed(seed)
    return cls(helpers.SNN(64, hidden, 10), lr=1e-2)


def test_one_device_is_minibatch_trainer_bit_for_bit():
    train = _digits_part()
    reference = _trainer(helpers.MinibatchTrainer).fit(train, 2, 16, seed=1, validation=train)
    parallel = _trainer(distributed.DataParallelTrainer).fit(train, 2, 16, seed=1, validation=train)
    for key in reference:
        np.testing.assert_array_equal(parallel[key], reference[key])


def resumed_and_whole(trainer, train) -> tuple[np.ndarray, np.ndarray]:
    """Losses of 3 epochs in one go, and of 1 epoch then 2 more after the weights and optimiser
    state were saved, the trainer reset to other weights and the saved state put back."""
    trainer.reinitialize(0)
    whole = trainer.fit(train, 3, 16, seed=2)["train_loss"]
    trainer.reinitialize(0)
    head = trainer.fit(train, 1, 16, seed=2)["train_loss"]
    weights, opt_state = trainer.weights(), trainer.optimizer.opt_state.value
    trainer.reinitialize(99)
    trainer.load_weights(weights)
    trainer.optimizer.opt_state.value = opt_state
    tail = trainer.fit(train, 3, 16, seed=2, start_epoch=1)["train_loss"]
    return np.concatenate([head, tail]), whole


def test_start_epoch_continues_the_same_losses():
    trainer = _trainer(distributed.DataParallelTrainer)
    resumed, whole = resumed_and_whole(trainer, _digits_part())
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
        distributed.launch([PYTHON, "-c", "pass"], 0)


def test_loopback_only(monkeypatch):
    port = distributed.free_port()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # free, and on the loopback address
    monkeypatch.setenv(distributed.ENV_PROCESS_ID, "0")
    monkeypatch.setenv(distributed.ENV_PROCESSES, "2")
    monkeypatch.setenv(distributed.ENV_COORDINATOR, "10.0.0.1:1234")
    with pytest.raises(ValueError, match="uses 127.0.0.1 only"):
        distributed.initialize()


def test_cli_refuses_processes_where_it_cannot(capsys, tmp_path):
    for argv, message in (
        (["--processes", "2"], "--processes: only for the real datasets"),
        (["--dataset", "digits", "--processes", "2", "--batch", "33"], "must be a multiple of --processes"),
    ):
        with pytest.raises(SystemExit) as stop:
            cli_main(["train", *argv, "--out", str(tmp_path / "run")])
        assert stop.value.code == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def _history(out):
    with open(out / "history.csv") as stream:
        rows = list(csv.DictReader(stream))
    return {key: np.array([float(r[key]) for r in rows]) for key in rows[0]}


@pytest.mark.slow
def test_two_processes_train_the_losses_of_one(tmp_path, monkeypatch):
    options = ["train", "--dataset", "digits", "--epochs", "1", "--hidden", "16", "--no-progress"]
    monkeypatch.setattr(cli_datasets, "MLP_MAX_ITER", {"digits": 20})
    assert cli_main([*options, "--out", str(tmp_path / "one")]) == 0
    two = subprocess.run(
        [PYTHON, "-m", "helpers", *options, "--processes", "2", "--out", str(tmp_path / "two")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert two.returncode == 0, two.stderr
    assert "[Gloo]" not in two.stdout and two.stdout.count("wrote history.csv") == 1
    # one complete run folder, written by process 0 alone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]
    assert {p.name for p in (tmp_path / "two").iterdir()} == {p.name for p in (tmp_path / "one").iterdir()}
    one, two = _history(tmp_path / "one"), _history(tmp_path / "two")
    np.testing.assert_allclose(two["train_loss"], one["train_loss"], rtol=1e-5)
    np.testing.assert_allclose(two["val_loss"], one["val_loss"], rtol=1e-5)
    assert json.loads((tmp_path / "two" / "run.json").read_text())["settings"]["processes"] == 2


RESUME = """
    import json, sys
    import numpy as np
    import helpers
    from tests.test_distributed import _digits_part, _trainer, resumed_and_whole
    trainer = _trainer(helpers.distributed.DataParallelTrainer)
    resumed, whole = resumed_and_whole(trainer, _digits_part())
    if helpers.distributed.is_main_process():
        print(json.dumps({"devices": len(__import__("jax").devices()), "whole": whole.tolist(),
                          "resumed": resumed.tolist()}))
"""


@pytest.mark.slow
def test_resume_over_two_processes(tmp_path, capfd, monkeypatch):
    script = tmp_path / "resume.py"
    script.write_text(textwrap.dedent(RESUME))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    monkeypatch.setenv("PYTHONPATH", root)  # the processes import this file's helpers
    status = distributed.launch([PYTHON, str(script)], 2)
    out, err = capfd.readouterr()
    assert status == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["devices"] == 2
    np.testing.assert_array_equal(result["resumed"], result["whole"])
    # and one process trains the same losses, to rounding
    _, single = resumed_and_whole(_trainer(distributed.DataParallelTrainer), _digits_part())
    np.testing.assert_allclose(result["whole"], single, rtol=1e-5)


#: a group member that needs no JAX: process 1 dies by SIGKILL, process 0 waits, recording its pid
VICTIM = """
    import os, signal, sys, time
    rank = int(os.environ["HELPERS_PROCESS_ID"])
    open(sys.argv[1] + str(rank), "w").write(str(os.getpid()))
    time.sleep(1.0)
    if rank == 1 and sys.argv[2] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie awaiting its parent counts as gone
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


def _pids(prefix, n):
    return [int(open(f"{prefix}{rank}").read()) for rank in range(n)]


@pytest.mark.slow
def test_a_killed_process_stops_the_group(tmp_path, capsys):
    script = tmp_path / "victim.py"
    script.write_text(textwrap.dedent(VICTIM))
    start = time.monotonic()
    status = distributed.launch([PYTHON, str(script), str(tmp_path / "pid"), "kill"], 2)
    assert time.monotonic() - start < 60
    assert status == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: process 1 of 2 was killed by SIGKILL; the other processes were stopped"]
    assert not any(_alive(pid) for pid in _pids(tmp_path / "pid", 2))


@pytest.mark.slow
def test_ctrl_c_stops_every_process(tmp_path):
    script = tmp_path / "victim.py"
    script.write_text(textwrap.dedent(VICTIM))
    launcher = subprocess.Popen(
        [PYTHON, "-c", "import sys; from helpers import distributed; "
         f"distributed.launch([sys.executable, {str(script)!r}, {str(tmp_path / 'pid')!r}, 'wait'], 2)"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"pid{rank}").exists() for rank in range(2)):
        assert time.monotonic() < deadline and launcher.poll() is None
        time.sleep(0.2)
    launcher.send_signal(signal.SIGINT)
    assert launcher.wait(60) != 0
    assert not any(_alive(pid) for pid in _pids(tmp_path / "pid", 2))


BUSY = """
    import sys
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
def test_a_busy_port_is_replaced(tmp_path, capfd):
    script = tmp_path / "busy.py"
    script.write_text(textwrap.dedent(BUSY))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status = distributed.launch([PYTHON, str(script)], 2, port=port)
    out, err = capfd.readouterr()
    assert status == 0, err
    assert f"note: port {port} on 127.0.0.1 was in use; trying another" in err
    assert out.strip().splitlines()[-1] == "sum 3.0"
