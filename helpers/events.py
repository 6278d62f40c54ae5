"""Event-driven input: feed the network the spikes that happened, not a mostly-zero matrix.

At 5 Hz and ``dt = 1 ms`` only 0.5 % of the entries of ``spikes [T, B, N]`` are ones. The dense input
projection ``spikes_t @ W`` multiplies all of them; the event-driven one looks up the weight row of each
input that fired and adds it to the current of its example::

    current[b] = bias + sum of W[i] over the events (b, i) of this step

Both give the same currents (the sum runs over the same rows in the same order, the zeros add
nothing); the event-driven one does about 1/200 of the work and, through ``grad``, scatters the gradient
back into only the rows that were used. The gradient sums run in another order than the dense
product's, so gradients agree to rounding rather than bit for bit.

Why not the stack's ``brainstate.nn.EventLinear`` (``brainevent.EventArray(spikes) @ W``)? Measured
on this project's CPU host (2 shared cores, under load; median of 5 calls of the jitted gradient of
the input projection over T = 100 steps of 5 Hz spikes, 100 inputs; benchmark grid points):

====================  ===============  ==========================  ============
T, B, hidden          helpers.events   EventLinear (``jax_raw``)   dense ``@``
====================  ===============  ==========================  ============
100, 128, 4           0.64 ms          26.7 ms                     41.5 ms
100, 128, 64          26.0 ms          78.0 ms                     55.3 ms
100, 128, 256         92.0 ms          148 ms                      185 ms
100, 1024, 256        1977 ms          5016 ms                     3435 ms
====================  ===============  ==========================  ============

On a CPU brainevent 0.2.1 runs its event kernels through ``numba``, which the pinned environment does
not install (``EventArray @ W`` then fails with ``KernelCompilationError``); its pure-JAX backend
(``brainevent.config.set_backend("cpu", "jax_raw")``) works but is 1.6-40x slower than the lookup and
``segment_sum`` here, and slower than the dense product at most points. So the input layer keeps
:func:`event_input`; adopt ``EventLinear`` when a backend that is at least as fast is available here
(the table comes from ``python -m benchmarks.eventlinear``).
"""

from __future__ import annotations

import brainunit as u
import jax
import numpy as np

from helpers.arraytypes import Array
from helpers.validation import check_spikes

__all__ = ["SpikeEvents", "SpikeInput", "spike_events", "event_input"]


@jax.tree_util.register_pytree_node_class
class SpikeEvents:
    """Input spikes as a list of events per time step, padded to the same length ``K``.

    Attributes
    ----------
    example
        ``int32 [T, K]``: the example (batch index) of each event.
    channel
        ``int32 [T, K]``: the input channel of each event; ``n_inputs`` marks a padding slot, which
        reads a zero weight row.
    batch_size, n_inputs
        The batch size ``B`` and the number of input channels ``N`` of the dense ``[T, B, N]`` spikes.

    A JAX pytree: ``example`` and ``channel`` are its leaves (so ``for_loop`` hands one step's ``[K]``
    events to the network), ``batch_size`` and ``n_inputs`` are static. Make one with
    :func:`spike_events`.
    """

    def __init__(self, example: jax.Array, channel: jax.Array, batch_size: int, n_inputs: int):
        self.example = example
        self.channel = channel
        self.batch_size = int(batch_size)
        self.n_inputs = int(n_inputs)

    @property
    def shape(self) -> tuple[int, int, int]:
        """The shape ``(T, B, N)`` of the dense spikes these events stand for."""
        return (self.example.shape[0], self.batch_size, self.n_inputs)

    def __repr__(self) -> str:
        slots = self.example.shape[-1] if self.example.ndim else "?"
        return f"SpikeEvents(shape={self.shape}, slots_per_step={slots})"

    def tree_flatten(self):
        return (self.example, self.channel), (self.batch_size, self.n_inputs)

    @classmethod
    def tree_unflatten(cls, static, leaves):
        return cls(*leaves, *static)

    def to_dense(self) -> np.ndarray:
        """The bool spikes ``[T, B, N]`` these events stand for (for checks and plots)."""
        n_steps, batch_size, n_inputs = self.shape
        dense = np.zeros((n_steps, batch_size, n_inputs + 1), dtype=bool)  # last column: padding
        steps = np.broadcast_to(np.arange(n_steps)[:, None], np.shape(self.example))
        dense[steps, np.asarray(self.example), np.asarray(self.channel)] = True
        return dense[..., :n_inputs]


#: What the network takes as input: dense spikes ``[T, B, N]`` or the same spikes as events.
SpikeInput = Array | SpikeEvents


def _padded_length(count: int) -> int:
    """Round ``count`` up to one of four lengths per octave (64, 80, 96, 112, 128, 160, ...), so that
    datasets of the same size and rate share one length and hence one compiled program."""
    if count <= 16:
        return 16
    step = 1 << (count.bit_length() - 3)
    return -(-count // step) * step


def spike_events(spikes: SpikeInput) -> SpikeEvents:
    """Convert concrete spikes ``[T, B, N]`` (bool, or floats that are exactly 0 or 1) to events.

    Runs on the host, outside ``jit`` (the number of events decides the shapes). Events of a step are
    ordered by example, then channel, which is the order in which a dense matrix product adds them.
    """
    if isinstance(spikes, SpikeEvents):
        return spikes
    if isinstance(spikes, jax.core.Tracer):
        raise TypeError(
            "spike_events needs concrete spikes (it runs outside jit: the number of events sets the "
            "shapes); convert the data before calling a jitted function"
        )
    check_spikes(spikes)  # any number of input channels
    values = np.asarray(spikes)
    if values.dtype != np.bool_:
        if not np.all((values == 0) | (values == 1)):
            raise ValueError(
                "spikes must hold only 0 and 1 to be used as events; got other values (for graded input "
                "use the dense input product: Trainer(..., event_driven=False))"
            )
        values = values != 0
    n_steps, batch_size, n_inputs = values.shape
    step, example, channel = np.nonzero(values)  # row-major: sorted by step, example, channel
    counts = np.bincount(step, minlength=n_steps)
    length = _padded_length(int(counts.max()))
    slot = np.arange(step.size) - np.repeat(np.cumsum(counts) - counts, counts)
    # padding: the last example (keeps each step's examples sorted) and the zero row n_inputs
    example_table = np.full((n_steps, length), batch_size - 1, dtype=np.int32)
    channel_table = np.full((n_steps, length), n_inputs, dtype=np.int32)
    example_table[step, slot] = example
    channel_table[step, slot] = channel
    # device_put, not jnp.asarray: no small program to compile per shape
    return SpikeEvents(jax.device_put(example_table), jax.device_put(channel_table), batch_size, n_inputs)


def event_input(events_t: SpikeEvents, weight: Array | u.Quantity, bias: Array | u.Quantity | None = None):
    """The input current of one step, ``[B, n_out]``: ``bias`` plus the rows of ``weight [N, n_out]``
    picked by the events ``(example, channel)`` of this step (``[K]`` each), summed per example.

    Equal to ``dense_spikes_t @ weight + bias``; keeps the unit of ``weight``.
    """
    mantissa, unit = u.get_mantissa(weight), u.get_unit(weight)
    # channel == N (padding) is out of range: mode="fill" reads zeros there and drops its gradient
    rows = mantissa.at[events_t.channel].get(mode="fill", fill_value=0)
    summed = jax.ops.segment_sum(rows, events_t.example, events_t.batch_size, indices_are_sorted=True)
    current = u.maybe_decimal(u.Quantity(summed, unit=unit))
    return current if bias is None else current + bias
