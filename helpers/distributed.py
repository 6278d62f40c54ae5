"""Data-parallel training over many processes with JAX's distributed runtime (notebook 13).

Three pieces, usable apart:

- :func:`initialize` joins this process to a group of processes (``jax.distributed``). A process
  started by :func:`launch` finds its rank and the coordinator in its environment; a process started
  by a cluster's scheduler with ``HELPERS_DISTRIBUTED=auto`` lets JAX detect them (SLURM, Open MPI,
  Kubernetes: see below); any other process stays alone (one process, its local devices).
- :class:`DataParallelTrainer` is :class:`helpers.MinibatchTrainer` with every minibatch built as one
  *global* array split along its examples over ``jax.devices()`` (all devices of all processes): each
  process gathers only the examples its own devices hold, the weights and the optimiser state are
  replicated, and XLA sums the devices' gradients (an all-reduce, over gloo between CPU processes).
  Every process therefore takes the same Adam step and holds the same weights. The same code runs on
  one device, on many devices of one process and on many processes.
- :func:`launch` starts N copies of a command on this machine, coordinated on the loopback address
  ``127.0.0.1`` only, and ends every one of them when one fails or on Ctrl-C
  (``python -m helpers train ... --processes N`` uses it).

The losses agree with one process to rounding, not bit for bit: the mean loss over a batch and the
gradient's sums over its examples are computed as one partial sum per device, added by the all-reduce
afterwards, so float32 additions happen in another order.

Clusters. Under SLURM, start one process per task (for GPUs, usually one per GPU) and let JAX read the
job from SLURM's variables (``SLURM_JOB_ID``, ``SLURM_NTASKS``, ``SLURM_PROCID``, ``SLURM_LOCALID``,
``SLURM_STEP_NODELIST``; the coordinator is the step's first node, on a port derived from the job id)::

    srun --nodes=2 --ntasks-per-node=4 --gpus-per-task=1 \\
        env HELPERS_DISTRIBUTED=auto python -m helpers train --dataset digits --batch 64

(without ``--processes``: the scheduler starts the processes, not the launcher). JAX detects Open MPI
(``OMPI_*``) and Kubernetes jobs the same way. Between machines the coordinator and the collectives
use the network, which this tutorial never does: that set-up is documented, not tested here.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from helpers.minibatch import MinibatchTrainer
from helpers.process_group import (
    ENV_AUTO,
    ENV_COORDINATOR,
    ENV_PROCESS_ID,
    ENV_PROCESSES,
    EXIT_PORT_IN_USE,
    LOOPBACK,
    PortInUseError,
    initialize,
    is_main_process,
    launched,
)
from helpers.validation import check_positive_int

__all__ = [
    "DataParallelTrainer",
    "EXIT_PORT_IN_USE",
    "PortInUseError",
    "free_port",
    "initialize",
    "is_main_process",
    "launch",
    "launched",
]
#: seconds the launcher waits for a stopped process before killing it
GRACE_S = 5.0


class DataParallelTrainer(MinibatchTrainer):
    """:class:`helpers.MinibatchTrainer` whose minibatches are global arrays over every process.

    Takes the same arguments as ``MinibatchTrainer`` except ``data_parallel`` (always on: the
    batches are split over ``jax.devices()``, every device of every process) and ``encoder`` (give
    spikes ``[T, N, n_inputs]``; encode before). ``batch_size`` must be a multiple of the number of
    devices. Every process passes the *same* splits (it loads the dataset itself) and gets the same
    history and weights back; of each minibatch it only gathers, on the host, the examples its own
    devices hold (:func:`jax.make_array_from_callback`), so the device memory a process needs is its
    share of the split. The loss of each batch, the gradient and the evaluation are computed over the
    global batch, as on one device.

    ``fit(..., start_epoch=k)`` continues a run whose weights and optimiser state were put back (with
    :meth:`load_weights` and ``optimizer.opt_state``) after ``k`` epochs: the batches of epoch ``k``
    onwards are those an uninterrupted run draws, so the losses are the same.
    """

    def __init__(self, net, **options):
        for refused in ("data_parallel", "encoder"):
            if refused in options:
                raise TypeError(f"DataParallelTrainer takes no {refused!r} (see its docstring)")
        super().__init__(net, **options)
        import brainstate
        import jax

        self._mesh = jax.sharding.Mesh(np.array(jax.devices()), ("data",))
        self._sharded_epoch = brainstate.transform.jit(self._sharded_epoch_fn)
        self._sharded_evaluate = brainstate.transform.jit(self._sharded_evaluate_fn)

    # -- where the data lives ---------------------------------------------------------------
    def _place_split(self, data, labels):
        """Keep a split on the host: each epoch gathers only this process's examples from it."""
        return np.asarray(data), np.asarray(labels, dtype=np.int32)

    def _sharding(self, *spec):
        import jax

        return jax.sharding.NamedSharding(self._mesh, jax.sharding.PartitionSpec(*spec))

    def _replicate_states(self) -> None:
        """Put the weights and the optimiser state on every device (nothing moves if they are there).

        Every process holds the same values (the same seed drew them, or the same steps updated
        them), so each builds its part of the global array from its own copy; ``jax.device_put``
        would first compare the copies across processes, a collective per array."""
        import brainstate
        import jax
        import jax.numpy as jnp

        replicated = self._sharding()

        def place(value):
            if getattr(value, "sharding", None) == replicated:
                return value
            host = np.asarray(jnp.asarray(value))  # JAX's dtype (float32), not Python's float64
            return jax.make_array_from_callback(host.shape, replicated, lambda index: host[index])

        for state in (*self.params.values(), *brainstate.graph.states(self.optimizer).values()):
            state.value = jax.tree.map(place, state.value)

    def _global_batches(self, spikes, labels, indices, mask):
        """The epoch's minibatches as global arrays split along the examples: spikes
        ``[n_batches, T, B, n_inputs]``, labels and mask ``[n_batches, B]``. Each process's callback
        is asked only for the slices its own devices hold."""
        import jax

        n_batches, batch = indices.shape

        def spikes_of(index):
            rows = indices[index[0]][:, index[2]]  # [n_b', b'] example numbers of this slice
            return np.moveaxis(spikes[:, rows], 0, 1)[:, index[1], :, index[3]]

        by_example = self._sharding(None, "data")
        x = jax.make_array_from_callback(
            (n_batches, spikes.shape[0], batch, spikes.shape[2]),
            self._sharding(None, None, "data", None),
            spikes_of,
        )
        y = jax.make_array_from_callback((n_batches, batch), by_example, lambda index: labels[indices[index]])
        m = jax.make_array_from_callback((n_batches, batch), by_example, lambda index: mask[index])
        return x, y, m

    # -- traced under jit -------------------------------------------------------------------
    def _sharded_epoch_fn(self, batches, labels, mask):
        import brainstate
        import jax.numpy as jnp

        def train_batch(batch):
            x, y, m = batch
            grads, _, ce = brainstate.transform.grad(
                self._batch_loss, self.params, has_aux=True, return_value=True
            )(x.astype(jnp.float32), y, m)
            self.optimizer.update(grads)
            return ce

        return brainstate.transform.for_loop(train_batch, (batches, labels, mask))

    def _sharded_evaluate_fn(self, batches, labels, mask):
        import brainstate
        import braintools
        import brainunit as u
        import jax.numpy as jnp

        def eval_batch(batch):
            x, y, m = batch
            outputs, hidden = self._run(x.astype(jnp.float32))
            logits = self._readout(outputs)
            per_example = braintools.metric.softmax_cross_entropy_with_integer_labels(logits, y)
            return (
                jnp.sum(per_example * m.astype(per_example.dtype)),
                u.math.argmax(logits, axis=1),
                jnp.sum(hidden, axis=0),
            )

        return brainstate.transform.for_loop(eval_batch, (batches, labels, mask))

    def _readout(self, outputs):
        from helpers.readout import readout

        return readout(outputs, self.readout_method)

    # -- the hooks MinibatchTrainer calls ----------------------------------------------------
    def _run_epoch(self, spikes, labels, indices, mask) -> np.ndarray:
        self._replicate_states()
        return np.asarray(self._sharded_epoch(*self._global_batches(spikes, labels, indices, mask)))

    def _run_evaluation(self, spikes, labels, indices, mask):
        from jax.experimental import multihost_utils

        self._replicate_states()
        loss_sums, predictions, counts = self._sharded_evaluate(
            *self._global_batches(spikes, labels, indices, mask)
        )
        # predictions and counts are split over the processes like the batches: gather them all
        return np.asarray(loss_sums), *multihost_utils.process_allgather((predictions, counts), tiled=True)


# -- the launcher ------------------------------------------------------------------------------
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the system's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def _stop(processes: Sequence[subprocess.Popen], how: int, grace_s: float = GRACE_S) -> None:
    """Send ``how`` (a signal) to every process still running, wait up to ``grace_s`` for them, then
    kill what is left, so that none outlives the launcher."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(how)
    deadline = time.monotonic() + grace_s
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _describe(status: int) -> str:
    if status < 0:
        try:
            return f"was killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"was killed by signal {-status}"
    return f"exited with status {status}"


def _last_line(path: Path) -> str:
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _run_group(command: Sequence[str], processes: int, port: int, workdir: Path) -> tuple[int, str, int]:
    """Start ``processes`` copies of ``command`` and wait for them.

    Returns ``(status, message, stdout_of_0)``: status 0 when every process ended with 0; otherwise the
    first failure's status and a one-line message naming the process (the others are stopped)."""
    group, files = [], []
    try:
        for rank in range(processes):
            env = os.environ | {
                ENV_COORDINATOR: f"{LOOPBACK}:{port}",
                ENV_PROCESSES: str(processes),
                ENV_PROCESS_ID: str(rank),
            }
            env.pop(ENV_AUTO, None)
            files.append(open(workdir / f"stdout{rank}", "wb"))  # noqa: SIM115 (closed below)
            # process 0 reports (progress bar, errors); the others' errors are shown if they fail
            files.append(None if rank == 0 else open(workdir / f"stderr{rank}", "wb"))  # noqa: SIM115
            group.append(
                subprocess.Popen(
                    list(command),
                    env=env,
                    stdout=files[-2],
                    stderr=files[-1],
                    start_new_session=True,  # Ctrl-C reaches the launcher, which stops them in order
                )
            )
        while True:
            statuses = [process.poll() for process in group]
            failed = [(rank, s) for rank, s in enumerate(statuses) if s not in (None, 0)]
            if failed:
                rank, status = failed[0]
                _stop(group, signal.SIGTERM)
                if rank == 0 and status == EXIT_PORT_IN_USE:
                    return status, "", 0
                detail = _last_line(workdir / f"stderr{rank}") if rank else ""
                message = f"process {rank} of {processes} {_describe(status)}"
                if detail:
                    message += f" ({detail})"
                return (status if status > 0 else 1), message, 0
            if all(s == 0 for s in statuses):
                return 0, "", 0
            time.sleep(0.05)
    except BaseException:  # Ctrl-C or anything else: no process outlives the launcher
        _stop(group, signal.SIGINT, grace_s=2 * GRACE_S)
        raise
    finally:
        for file in files:
            if file is not None:
                file.close()


def launch(command: Sequence[str], processes: int, *, port: int | None = None, attempts: int = 3) -> int:
    """Run ``processes`` copies of ``command`` on this machine as one group; return the exit status.

    Each copy gets ``HELPERS_COORDINATOR=127.0.0.1:PORT``, ``HELPERS_NUM_PROCESSES`` and
    ``HELPERS_PROCESS_ID`` (0..N-1) and calls :func:`initialize`. ``port`` (default: a free one) is
    the coordinator's; if process 0 finds it taken, another free port is tried, ``attempts`` times in
    all. Process 0's standard output is printed at the end (without gloo's connection notices) and its
    errors as they come; when a process fails, the others are stopped, one line names it (with its last
    error line) on standard error, and its status is returned. Ctrl-C stops every process (SIGINT,
    then SIGKILL after a grace period) and is raised again as :class:`KeyboardInterrupt`.
    """
    processes = check_positive_int("processes", processes)
    attempts = check_positive_int("attempts", attempts)
    with tempfile.TemporaryDirectory(prefix="helpers-launch-") as folder:
        workdir = Path(folder)
        for _attempt in range(attempts):
            port = free_port() if port is None else port
            status, message, _ = _run_group(command, processes, port, workdir)
            if status != EXIT_PORT_IN_USE or message:
                break
            print(f"note: port {port} on {LOOPBACK} was in use; trying another", file=sys.stderr)
            port = None
        else:
            print(f"error: no free coordinator port on {LOOPBACK} after {attempts} attempts", file=sys.stderr)
            return EXIT_PORT_IN_USE
        output = (workdir / "stdout0").read_text(errors="replace")
        sys.stdout.write("".join(line for line in output.splitlines(True) if not line.startswith("[Gloo]")))
        sys.stdout.flush()
        if status:
            print(f"error: {message}; the other processes were stopped", file=sys.stderr)
        return status
