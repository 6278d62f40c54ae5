"""Start N copies of a command on this machine as one group of processes (notebook 13).

:func:`launch` is what ``python -m helpers train ... --processes N`` runs: it gives every copy its
rank and the coordinator's address on the loopback address ``127.0.0.1`` only (a free port, replaced
if it turns out taken), waits for them, and ends every one of them when one fails or on Ctrl-C, so that
no process outlives it. The copies join the group when they import ``helpers``
(:mod:`helpers.process_group`).
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
    ENV_LAUNCHER,
    ENV_PROCESS_ID,
    ENV_PROCESSES,
    EXIT_PORT_IN_USE,
    LOOPBACK,
)
from helpers.validation import check_positive_int

__all__ = ["GRACE_S", "free_port", "launch"]

#: seconds the launcher waits for a stopped process before killing it
GRACE_S = 5.0


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


def _run_group(command: Sequence[str], processes: int, port: int, workdir: Path) -> tuple[int, str]:
    """Start ``processes`` copies of ``command`` and wait for them.

    Returns ``(status, message)``: status 0 when every process ended with 0; otherwise the first
    failure's status and a one-line message naming the process (the others are stopped)."""
    group: list[subprocess.Popen] = []
    files: list[BinaryIO | None] = []
    try:
        for rank in range(processes):
            env = os.environ | {
                ENV_COORDINATOR: f"{LOOPBACK}:{port}",
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
                    return status, ""
                detail = _last_line(workdir / f"stderr{rank}") if rank else ""
                message = f"process {rank} of {processes} {_describe(status)}"
                if detail:
                    message += f" ({detail})"
                return (status if status > 0 else 1), message
            if all(s == 0 for s in statuses):
                return 0, ""
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
    (:func:`helpers.process_group.initialize`). ``port`` (default: a free one) is
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
            status, message = _run_group(command, processes, port, workdir)
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
