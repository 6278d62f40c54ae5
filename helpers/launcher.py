"""Start N copies of a command on this machine as one group of processes (notebook 13).

:func:`launch` is what ``python -m helpers train ... --processes N`` runs: it gives every copy its
rank and the coordinator's address on the loopback address ``127.0.0.1`` only (a free port, held for
the group so that nothing else takes it, and replaced if it is taken), waits for them, and ends every
one of them when one fails or on Ctrl-C, so that no process outlives it. The copies join the group
when they import ``helpers`` (:mod:`helpers.process_group`).
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
from typing import BinaryIO

from helpers.process_group import (
    ENV_AUTO,
    ENV_COORDINATOR,
    ENV_COORDINATOR_STATE,
    ENV_LAUNCHER,
    ENV_PROCESS_ID,
    ENV_PROCESSES,
    EXIT_PORT_IN_USE,
    LOOPBACK,
)
from helpers.validation import check_positive_int

__all__ = ["GRACE_S", "free_port", "launch", "reserve_port"]

#: seconds the launcher waits for a stopped process before killing it
GRACE_S = 5.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the system's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def reserve_port(port: int) -> socket.socket | None:
    """Hold ``port`` on 127.0.0.1 for the coordinator of a group about to start; close it once the
    group has ended. Raises :class:`OSError` if anything is bound to the port.

    The port is held by a socket bound with ``SO_REUSEPORT`` that never listens. JAX's coordinator (a
    gRPC server, which sets ``SO_REUSEPORT`` too) can still listen on it, and connections reach that
    alone, but any other program's bind fails. So the port cannot be taken in the seconds between
    this choice and process 0's bind; when it was, JAX (0.10.2) found its port taken and often died
    with SIGSEGV instead of raising. This relies on Linux's ``SO_REUSEPORT`` (both sockets set it, one
    user) and was tested there only; elsewhere the port is only checked free (``None`` is returned)
    and a port taken later shows as process 0's failure to start its coordinator, which is retried.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, port))  # fails if anything holds it, even a socket with SO_REUSEPORT
    if not sys.platform.startswith("linux"):
        return None
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind((LOOPBACK, port))
    except OSError:
        holder.close()
        raise
    return holder


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


def _run_group(command: Sequence[str], processes: int, port: int, workdir: Path) -> tuple[int, str, str]:
    """Start ``processes`` copies of ``command`` and wait for them.

    Returns ``(status, message, retry)``: status 0 when every process ended with 0; otherwise the
    first failure's status and a one-line message naming the process (the others are stopped).
    ``retry`` is non-empty (why) when process 0 failed to listen on ``port``: it exited with the
    port-in-use status, or it died by a signal while it was starting the coordinator."""
    group: list[subprocess.Popen] = []
    files: list[BinaryIO | None] = []
    state = workdir / "coordinator"  # process 0 writes "starting", then "started" (helpers.process_group)
    state.unlink(missing_ok=True)
    try:
        for rank in range(processes):
            env = os.environ | {
                ENV_COORDINATOR: f"{LOOPBACK}:{port}",
                ENV_COORDINATOR_STATE: str(state),
                ENV_PROCESSES: str(processes),
                ENV_PROCESS_ID: str(rank),
                ENV_LAUNCHER: str(os.getpid()),  # a copy ends itself if this process dies
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
                    return status, "", f"port {port} on {LOOPBACK} was in use"
                starting = state.exists() and state.read_text() == "starting"
                if rank == 0 and status < 0 and starting:  # JAX's coordinator crashed on its bind
                    why = f"process 0 {_describe(status)} while its coordinator started on {LOOPBACK}:{port}"
                    return status, "", why
                detail = _last_line(workdir / f"stderr{rank}") if rank else ""
                message = f"process {rank} of {processes} {_describe(status)}"
                if detail:
                    message += f" ({detail})"
                return (status if status > 0 else 1), message, ""
            if all(s == 0 for s in statuses):
                return 0, "", ""
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
    ``HELPERS_PROCESS_ID`` (0..N-1), and joins the group when it imports ``helpers``
    (:func:`helpers.process_group.initialize`). ``port`` (default: a free one) is the coordinator's;
    it is held (:func:`reserve_port`) until the group ends. If it is taken, or process 0 still fails
    to listen on it (its port-in-use status, or death by a signal while its coordinator starts),
    another free port is tried, ``attempts`` times in all, with a note on standard error. Process 0's
    standard output is printed at the end (without gloo's connection notices) and its errors as they
    come; when a process fails, the others are stopped, one line names it (with its last error
    line) on standard error, and its status is returned. Ctrl-C stops every process (SIGINT, then
    SIGKILL after a grace period) and is raised again as :class:`KeyboardInterrupt`.
    """
    processes = check_positive_int("processes", processes)
    attempts = check_positive_int("attempts", attempts)
    with tempfile.TemporaryDirectory(prefix="helpers-launch-") as folder:
        workdir = Path(folder)
        for _attempt in range(attempts):
            port = free_port() if port is None else port
            try:
                holder = reserve_port(port)
            except OSError:
                status, message, retry = EXIT_PORT_IN_USE, "", f"port {port} on {LOOPBACK} was in use"
            else:
                try:
                    status, message, retry = _run_group(command, processes, port, workdir)
                finally:
                    if holder is not None:
                        holder.close()
            if not retry:
                break
            print(f"note: {retry}; trying another port", file=sys.stderr)
            port = None
        else:
            print(
                f"error: no coordinator port on {LOOPBACK} after {attempts} attempts ({retry})",
                file=sys.stderr,
            )
            return EXIT_PORT_IN_USE
        output = (workdir / "stdout0").read_text(errors="replace")
        sys.stdout.write("".join(line for line in output.splitlines(True) if not line.startswith("[Gloo]")))
        sys.stdout.flush()
        if status:
            print(f"error: {message}; the other processes were stopped", file=sys.stderr)
        return status
