"""Diagnostics of compiled programs: how many were compiled, and how much memory XLA plans for one.

>>> with count_compilations() as compiled:
...     trainer.fit(spikes, labels, 100)
>>> compiled.jitted  # the training step's compilations: 1 the first time, 0 after
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import jax

__all__ = ["CompilationLog", "count_compilations", "xla_memory"]


class CompilationLog(list):
    """The names of the XLA programs compiled inside a :func:`count_compilations` block.

    ``len(log)`` counts every program (JAX compiles small helper programs too, for example to move or
    slice arrays); :attr:`jitted` counts only the programs compiled from functions wrapped in
    ``brainstate.transform.jit``, such as a training step.
    """

    #: the name XLA gives to every program compiled from a ``brainstate.transform.jit`` function
    BRAINSTATE_PROGRAM = "jit(jaxpr_call)"

    @property
    def jitted(self) -> int:
        """How many programs compiled from ``brainstate.transform.jit`` functions the log holds."""
        return sum(name == self.BRAINSTATE_PROGRAM for name in self)


@contextlib.contextmanager
def count_compilations() -> Iterator[CompilationLog]:
    """Collect the names of the XLA programs compiled inside the ``with`` block.

    >>> with count_compilations() as compiled:
    ...     trainer.step(spikes, labels)
    >>> compiled.jitted  # the training step's compilations: 1 the first time, 0 after
    """
    compiled = CompilationLog()
    active = [True]

    def listener(event: str, duration_secs: float, **kwargs: str | int) -> None:
        if active[0] and event == "/jax/core/compile/backend_compile_duration":
            compiled.append(str(kwargs.get("fun_name", "?")))

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield compiled
    finally:
        active[0] = False
        jax.monitoring.unregister_event_duration_listener(listener)


def xla_memory(compiled: jax.stages.Compiled) -> dict[str, float]:
    """XLA's memory estimate (MiB) for a compiled program (``jitted.lower(...).compile()``).

    Returns ``arguments``, ``outputs`` and ``temporaries`` (for a training step, mostly the states BPTT
    keeps for the backward pass) and their ``total``, which counts buffers that an output reuses from
    an argument once.
    """
    analysis = compiled.memory_analysis()
    if analysis is None:
        raise RuntimeError("this backend gives no memory estimate for compiled programs")
    mib = {
        "arguments": analysis.argument_size_in_bytes / 2**20,
        "outputs": analysis.output_size_in_bytes / 2**20,
        "temporaries": analysis.temp_size_in_bytes / 2**20,
    }
    mib["total"] = (
        mib["arguments"] + mib["outputs"] + mib["temporaries"] - analysis.alias_size_in_bytes / 2**20
    )
    return mib
