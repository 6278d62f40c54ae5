"""Data-parallel training over many processes with JAX's distributed runtime (notebook 13).

:class:`DataParallelTrainer` is :class:`helpers.MinibatchTrainer` with every minibatch built as one
*global* array split along its examples over ``jax.devices()`` (all devices of all processes): each
process gathers only the examples its own devices hold, the weights and the optimiser state are
replicated, and XLA sums the devices' gradients (an all-reduce, over gloo between CPU processes).
Every process therefore takes the same optimiser step and holds the same weights. The same code runs
on one device, on many devices of one process and on many processes.

How the processes find each other is :mod:`helpers.process_group` (joined when ``helpers`` is
imported by a launched process); :mod:`helpers.launcher` starts N of them on this machine
(``python -m helpers train ... --processes N``).

The losses agree with one process to rounding, not bit for bit: the mean loss over a batch and the
gradient's sums over its examples are computed as one partial sum per device, added by the all-reduce
afterwards, so float32 additions happen in another order.

Clusters. Under SLURM, start one process per task (for GPUs, usually one per GPU) and let JAX read the
job from SLURM's variables (``SLURM_JOB_ID``, ``SLURM_NTASKS``, ``SLURM_PROCID``, ``SLURM_LOCALID``,
``SLURM_STEP_NODELIST``; the coordinator is the step's first node, on a port derived from the job id).
Each task must see all GPUs of its node (JAX gives task *i* of a node its *i*-th GPU), so ask for GPUs
per node, not ``--gpus-per-task``::

    srun --nodes=2 --ntasks-per-node=4 --gpus-per-node=4 \\
        env HELPERS_DISTRIBUTED=auto python -m helpers train --dataset digits --batch 64

(without ``--processes``: the scheduler starts the processes, not the launcher). JAX detects Open MPI
(``OMPI_*``) and Kubernetes jobs the same way. Between machines the coordinator and the collectives
use the network, which this tutorial never does: that set-up is documented, not tested here.
"""

from __future__ import annotations

import numpy as np

from helpers.minibatch import MinibatchTrainer
from helpers.process_group import is_main_process

__all__ = ["DataParallelTrainer", "is_main_process"]


class DataParallelTrainer(MinibatchTrainer):
    """:class:`helpers.MinibatchTrainer` whose minibatches are global arrays over every process.

    Takes the same arguments as ``MinibatchTrainer`` except ``data_parallel`` (always on: the
    batches are split over ``jax.devices()``, every device of every process) and ``encoder`` (give
    spikes ``[T, N, n_inputs]``; encode before). ``batch_size`` must be a multiple of the number of
    devices. Every process passes the *same* splits (it loads the dataset itself) and gets the same
    history and weights back.

    It trains with ``MinibatchTrainer``'s own compiled epoch and evaluation (one training loop); what
    differs is where the data lives, in the three hooks of that class: a split stays on the host
    (:meth:`_place_split`); for each epoch every process gathers, of every minibatch, only the examples
    its own devices hold and they form one global array (:meth:`_program_arguments`, with
    :func:`jax.make_array_from_callback`), so the device memory a process needs is its share of the
    split; the outputs are gathered from every process (:meth:`_to_host`). The weights and the
    optimiser state are replicated on every device.

    ``fit(..., start_epoch=k)`` continues a run whose network and optimiser were put back with
    :func:`helpers.load_checkpoint` after ``k`` epochs (in every process): the batches of epoch ``k``
    onwards are those an uninterrupted run draws, so the losses are the same.
    """

    def __init__(self, net, **options):
        for refused in ("data_parallel", "encoder"):
            if refused in options:
                raise TypeError(f"DataParallelTrainer takes no {refused!r} (see its docstring)")
        super().__init__(net, data_parallel=True, **options)

    def _sharding(self, *spec):
        import jax

        assert self._mesh is not None  # data_parallel=True made it
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
            if isinstance(value, (bool, int, float)) or getattr(value, "sharding", None) == replicated:
                return value  # a Python number (the learning rate) is a constant to every process
            host = np.asarray(jnp.asarray(value))  # JAX's dtype (float32), not Python's float64
            return jax.make_array_from_callback(host.shape, replicated, lambda index: host[index])

        for state in (*self.params.values(), *brainstate.graph.states(self.optimizer).values()):
            state.value = jax.tree.map(place, state.value)

    # -- the hooks of MinibatchTrainer -------------------------------------------------------
    def _place_split(self, data, labels):
        """Keep a split on the host: each epoch gathers only this process's examples from it."""
        return np.asarray(data), np.asarray(labels, dtype=np.int32)

    def _pad_split(self, split, size: int):
        """No padding: :meth:`_program_arguments` gathers only the examples the indices name."""
        return split

    def _program_arguments(self, split, indices, mask) -> tuple:
        """The epoch's minibatches as global arrays split along the examples: spikes
        ``[n_batches, T, B, n_inputs]``, labels ``[n_batches, B]``, the batch numbers (replicated) and
        the mask ``[n_batches, B]``. Each process's callback is asked only for the slices its own
        devices hold."""
        import jax

        self._replicate_states()
        spikes, labels = split
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
        numbers = np.arange(n_batches, dtype=np.int32)
        b = jax.make_array_from_callback((n_batches,), self._sharding(), lambda index: numbers[index])
        m = jax.make_array_from_callback((n_batches, batch), by_example, lambda index: mask[index])
        return x, y, b, m

    def _to_host(self, values):
        """Gather a program's outputs from every process (each holds its devices' part)."""
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(values, tiled=True)
