"""Joining a group of processes (``jax.distributed``) before the stack touches a device.

``helpers/__init__.py`` calls :func:`initialize` first thing, but only when this process was asked to
join a group: started by :func:`helpers.launcher.launch` (``HELPERS_PROCESS_ID`` in its environment)
or by a cluster's scheduler with ``HELPERS_DISTRIBUTED=auto``. It has to be there: the stack
(brainpy, brainunit) creates arrays while it is imported, which starts JAX's backend, and
``jax.distributed.initialize`` must come before that; ``python -m helpers`` imports the package
before it runs anything. Any other process (a notebook, a test, a script) is left alone: importing
``helpers`` then starts, joins and binds nothing. This module imports nothing of the stack but JAX,
and that only inside its functions. :mod:`helpers.distributed` explains the rest (notebook 13).
"""

from __future__ import annotations

import os
import sys

__all__ = ["PortInUseError", "initialize", "is_main_process", "launched", "wanted"]

#: the environment a launched process reads (set by :func:`launch`)
ENV_COORDINATOR = "HELPERS_COORDINATOR"
ENV_PROCESSES = "HELPERS_NUM_PROCESSES"
ENV_PROCESS_ID = "HELPERS_PROCESS_ID"
#: a file in which process 0 writes "starting", then "started", around starting the coordinator, so
#: that the launcher tells a coordinator that crashed on its port from any other failure
ENV_COORDINATOR_STATE = "HELPERS_COORDINATOR_STATE"
#: the launcher's process id: a launched process ends itself when the launcher dies
ENV_LAUNCHER = "HELPERS_LAUNCHER_PID"
#: ``auto``: let ``jax.distributed`` detect a cluster's processes (SLURM, Open MPI, Kubernetes)
ENV_AUTO = "HELPERS_DISTRIBUTED"
#: the only address the local launcher binds or connects to
LOOPBACK = "127.0.0.1"
#: exit status of a process whose coordinator port was taken (the launcher then tries another)
EXIT_PORT_IN_USE = 3
#: seconds a process waits for the others to join before giving up
JOIN_TIMEOUT_S = 60


class PortInUseError(SystemExit):
    """The coordinator's port was taken when process 0 tried to listen on it (exit status 3)."""

    def __init__(self, address: str):
        super().__init__(EXIT_PORT_IN_USE)
        self.address = address


def launched() -> bool:
    """Whether this process was started by :func:`launch` (its rank is in the environment)."""
    return ENV_PROCESS_ID in os.environ


def _die_with_launcher() -> None:
    """End this process (SIGKILL) as soon as the launcher that started it dies, even by SIGKILL, so
    that no launched process is left behind (Linux ``prctl(PR_SET_PDEATHSIG)``; elsewhere the
    launcher's own clean-up is all there is)."""
    launcher = os.environ.get(ENV_LAUNCHER)
    if launcher is None or not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != int(launcher):  # the launcher died before the line above
        os._exit(1)


def _write(path: str | None, text: str) -> None:
    if path is not None:
        with open(path, "w") as file:
            file.write(text)


def _use_loopback_collectives() -> None:
    """Make the CPU backend's gloo collectives listen on 127.0.0.1 only.

    Without this, gloo listens on the address the machine's host name resolves to, which may be a
    network interface. JAX offers no public option for it, so this registers the CPU backend again
    with gloo told its host name (``jax._src`` API of jax 0.10; it must run before the first device
    is touched, which :func:`initialize` ensures)."""
    from jax._src import distributed as jax_distributed
    from jax._src import xla_bridge
    from jax._src.lib import _jax

    def make_cpu_client():
        collectives = _jax.make_gloo_tcp_collectives(
            distributed_client=jax_distributed.global_state.client, hostname=LOOPBACK
        )
        return xla_bridge.make_cpu_client(collectives=collectives)

    xla_bridge.register_backend_factory("cpu", make_cpu_client, priority=0, fail_quietly=False)


def initialize() -> bool:
    """Join the group of processes this one belongs to; return whether there is more than one.

    A process started by :func:`launch` reads the coordinator (``127.0.0.1:PORT``), the number of
    processes and its rank from ``HELPERS_COORDINATOR``, ``HELPERS_NUM_PROCESSES`` and
    ``HELPERS_PROCESS_ID``; with ``HELPERS_DISTRIBUTED=auto`` JAX detects a cluster's processes
    (see the module's docstring); otherwise nothing happens (one process). Must run before anything
    touches a JAX device. Raises :class:`PortInUseError` in process 0 if the coordinator's port is taken.
    """
    import jax

    if jax.distributed.is_initialized():
        return jax.process_count() > 1
    if launched():
        address = os.environ[ENV_COORDINATOR]
        host, port = address.rsplit(":", 1)
        if host != LOOPBACK:
            raise ValueError(f"{ENV_COORDINATOR}={address}: the local launcher uses {LOOPBACK} only")
        process_id, processes = int(os.environ[ENV_PROCESS_ID]), int(os.environ[ENV_PROCESSES])
        _die_with_launcher()
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        state = os.environ.get(ENV_COORDINATOR_STATE) if process_id == 0 else None
        _write(state, "starting")
        try:
            jax.distributed.initialize(
                coordinator_address=address,
                num_processes=processes,
                process_id=process_id,
                coordinator_bind_address=address,  # JAX's default listens on every interface
                initialization_timeout=JOIN_TIMEOUT_S,
            )
        except Exception as error:
            if process_id == 0 and "Failed to start RPC server" in str(error):
                raise PortInUseError(address) from None
            raise
        _write(state, "started")
        _use_loopback_collectives()
        return processes > 1
    if os.environ.get(ENV_AUTO) == "auto":
        jax.distributed.initialize()
        return jax.process_count() > 1
    return False


def is_main_process() -> bool:
    """Whether this is process 0, the one that prints results and writes files."""
    import jax

    return jax.process_index() == 0


def wanted() -> bool:
    """Whether this process was started as part of a group (by the launcher or a cluster)."""
    return launched() or os.environ.get(ENV_AUTO) == "auto"
