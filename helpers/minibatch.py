"""Minibatch training over a dataset: seeded shuffles, a padded and masked last batch, one compiled
program per epoch, and evaluation of a whole split in batches.

Why not ``braintools.trainer.DataLoader``? It is sound for what it does (a seeded shuffle that
changes every epoch, with a partial last batch or ``drop_last``), but it gathers examples one by one
in Python and hands each batch back to Python. A partial last batch has a different shape, so a
jitted step compiles twice; and one Python call per batch costs more than a small SNN's step on a
CPU. Here the whole split stays on the device, :class:`EpochPlan` only decides *which* examples form
each batch (``int`` indices ``[n_batches, batch_size]``, with the last batch padded by repeating
index 0 and a ``mask`` that is ``False`` on the padding), and one compiled ``for_loop`` over the
batches runs a whole epoch: one compilation for every epoch, every seed, and the partial batch. The
padded examples are simulated but weigh zero in the loss, so the gradient is exactly that of the
real examples (the mask of :meth:`helpers.training.TrainingCore.loss_of`).

:class:`MinibatchTrainer` is a :class:`~helpers.training.TrainingCore`: re-initialisation, the loss,
the optimiser and the divergence rule are the full-batch trainer's. Introduced in notebook 9.
"""

from __future__ import annotations

from collections.abc import Callable

import brainstate
import braintools
import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from helpers.model import SNN
from helpers.readout import readout
from helpers.training import TrainingCore
from helpers.validation import (
    check_bool,
    check_labels,
    check_non_negative_int,
    check_positive_int,
    check_seed,
)

__all__ = ["EpochPlan", "MinibatchTrainer"]


class EpochPlan:
    """Which examples form each minibatch of each epoch.

    ``EpochPlan(n_examples, batch_size, seed=s)`` shuffles the examples afresh every epoch with a
    generator seeded by ``(s, epoch)``, so epoch ``e`` of seed ``s`` has the same batches on every
    machine and in every run, whatever ran before. With ``shuffle=False`` the order is the dataset's
    (for evaluation). The last batch is filled up with index 0 and masked out.
    """

    def __init__(self, n_examples: int, batch_size: int, *, seed: int = 0, shuffle: bool = True):
        self.n_examples = check_positive_int("n_examples", n_examples)
        self.batch_size = check_positive_int("batch_size", batch_size)
        seed = check_seed("seed", seed)
        check_bool("shuffle", shuffle)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.n_batches = -(-self.n_examples // self.batch_size)  # ceiling division

    def epoch(self, epoch: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``(indices int32 [n_batches, batch_size], mask bool [n_batches, batch_size])`` of ``epoch``.

        Every example appears exactly once where ``mask`` is ``True``.
        """
        epoch = check_non_negative_int("epoch", epoch)
        order = np.arange(self.n_examples)
        if self.shuffle:
            order = np.random.default_rng((self.seed, int(epoch))).permutation(self.n_examples)
        size = self.n_batches * self.batch_size
        indices = np.zeros(size, dtype=np.int32)
        indices[: self.n_examples] = order
        mask = np.arange(size) < self.n_examples
        return indices.reshape(self.n_batches, self.batch_size), mask.reshape(self.n_batches, self.batch_size)


def _pad_examples(data, labels, size: int):
    """``(data, labels)`` with zeros appended along the example axis up to ``size`` examples (axis 1 of
    spikes ``[T, N, F]``, axis 0 of values ``[N, F]`` and of labels ``[N]``), on the device."""
    missing = size - labels.shape[0]
    if missing <= 0:
        return data, labels
    data, labels = np.asarray(data), np.asarray(labels)
    axis = 1 if data.ndim == 3 else 0
    widths = [(0, 0)] * data.ndim
    widths[axis] = (0, missing)
    return jnp.asarray(np.pad(data, widths)), jnp.asarray(np.pad(labels, (0, missing)))


class MinibatchTrainer(TrainingCore):
    """Trains an :class:`~helpers.SNN` on minibatches of a dataset with BPTT and an optimiser (default
    Adam with ``lr``; any ``braintools.optim`` optimiser as ``optimizer``).

    ``fit(train, epochs, batch_size)`` takes a split ``(spikes [T, N, n_inputs], labels int [N])``,
    keeps it on the device and runs each epoch as one compiled program (see the module's docstring).
    ``evaluate`` scores a split in batches of ``eval_batch_size`` (the memory of one batch, not of the
    whole split, bounds its cost).

    ``loss`` names the loss of :data:`helpers.readout.LOSSES` it trains (default ``ce``, the
    cross-entropy of the readout; output spikes take snnTorch's rate and count losses); the history's
    and :meth:`evaluate`'s losses are that loss, without the regulariser.

    ``regularizer``, if given, is a function of the hidden spikes ``[T, B, n_hidden]`` and the mask
    ``[B]`` returning a scalar added to the loss (for example :func:`helpers.activity.rate_penalty`).
    Spikes are simulated as dense 0/1 input (not event-driven): minibatches of a few dozen examples
    are small enough that the dense product is as fast.

    ``encoder``, if given, is a function from values ``[B, F]`` to spikes ``[T, B, F]`` that runs
    *inside* the compiled epoch on every batch, for example a rate code drawn with brainstate's
    generator (``braintools.PoissonEncoder``): then every epoch sees fresh spike trains of the same
    examples, and a split may be given as values ``(x [N, F], labels)`` instead of spikes. Splits given
    as spikes ``[T, N, F]`` are used as they are, with or without an encoder.

    With ``data_parallel=True`` every batch is split along its examples over all local devices
    (``jax.devices()``; the batch size must be a multiple of their number), the weights are replicated,
    and XLA adds up the devices' gradients: the same losses as on one device, to rounding. To try it on
    a CPU, start Python with ``XLA_FLAGS=--xla_force_host_platform_device_count=2``. Over many
    processes, :class:`helpers.distributed.DataParallelTrainer` runs these same compiled programs on
    batches gathered by each process (notebook 13).

    Extension points of a data-parallel strategy (all on the host, around the same compiled epoch and
    evaluation): :meth:`_place_split` (where a checked split lives), :meth:`_program_arguments` (what
    the compiled programs take for an epoch's batches) and :meth:`_to_host` (their outputs as numpy).
    """

    def __init__(
        self,
        net: SNN,
        *,
        lr: float = 3e-3,
        optimizer: braintools.optim.Optimizer | None = None,
        readout_method: str = "mean",
        regularizer: Callable | None = None,
        encoder: Callable | None = None,
        data_parallel: bool = False,
        loss: str = "ce",
    ):
        super().__init__(net, lr=lr, optimizer=optimizer, readout_method=readout_method, loss=loss)
        if regularizer is not None and not callable(regularizer):
            raise TypeError(f"regularizer must be a function of (hidden_spikes, mask), got {regularizer!r}")
        if encoder is not None and not callable(encoder):
            raise TypeError(
                f"encoder must be a function from values [B, F] to spikes [T, B, F], got {encoder!r}"
            )
        self.encoder = encoder
        check_bool("data_parallel", data_parallel)
        # data parallelism: every batch is split over all local devices along the example axis; the
        # weights stay replicated and XLA inserts the sum of the devices' gradients
        self._mesh = jax.sharding.Mesh(np.array(jax.devices()), ("data",)) if data_parallel else None
        self.regularizer = regularizer
        self._epoch = brainstate.transform.jit(self._epoch_fn)
        self._evaluate = brainstate.transform.jit(self._evaluate_fn)

    # -- traced under jit -------------------------------------------------------------------
    def _run(self, spikes):
        """Readout ``[T, B, C]`` and hidden spikes ``[T, B, H]`` from a fresh state."""
        recorded = self.net.record(spikes, keep=("output", "spikes"))
        return recorded["output"], recorded["spikes"]

    def _batch_input(self, data, idx):
        """The spikes ``float [T, B, n_inputs]`` of the examples ``idx`` of a split (spikes or values),
        or, for an epoch's batches gathered beforehand (``[n_batches, T, B, n_inputs]``, see
        :meth:`_program_arguments`), of batch number ``idx``."""
        if data.ndim == 2:  # values: encode this batch now (fresh random spikes with a random encoder)
            assert self.encoder is not None  # _device_split refuses values without an encoder
            spikes = jnp.asarray(self.encoder(data[idx]), dtype=jnp.float32)
        elif data.ndim == 4:  # batches gathered on the host: the idx-th
            spikes = data[idx].astype(jnp.float32)
        else:
            spikes = data[:, idx].astype(jnp.float32)
        if self._mesh is not None:
            by_example = jax.sharding.NamedSharding(
                self._mesh, jax.sharding.PartitionSpec(None, "data", None)
            )
            spikes = jax.lax.with_sharding_constraint(spikes, by_example)
        return spikes

    def batch_loss(self, spikes, labels, mask=None):
        outputs, hidden = self._run(spikes)
        loss = self.loss_of(outputs, labels, mask)
        if self.regularizer is None:
            return loss, loss
        return loss + self.regularizer(hidden, mask), loss

    def _epoch_fn(self, spikes, labels, indices, mask):
        # the states in the batch's shape before the loop over batches, which must keep their shapes
        # (a network that resets its states in place, SNN(online=True), would otherwise change them)
        self.net.fresh_state(mask.shape[1])  # mask [n_batches, B] on every path

        def train_batch(batch):
            idx, m = batch
            grads, ce = self.batch_gradient(self._batch_input(spikes, idx), labels[idx], m)
            self.optimizer.update(grads)
            return ce

        return brainstate.transform.for_loop(train_batch, (indices, mask))

    def _evaluate_fn(self, spikes, labels, indices, mask):
        self.net.fresh_state(mask.shape[1])  # as in _epoch_fn

        def eval_batch(batch):
            idx, m = batch
            outputs, hidden = self._run(self._batch_input(spikes, idx))
            logits = readout(outputs, self.readout_method)
            per_example = braintools.metric.softmax_cross_entropy_with_integer_labels(logits, labels[idx])
            weights = m.astype(per_example.dtype)
            if self.loss_name == "ce":
                loss_sum = jnp.sum(per_example * weights)
            else:  # another loss (issue 19): its batch mean times the batch's real examples
                loss_sum = self.loss_of(outputs, labels[idx], m) * jnp.sum(weights)
            return (
                loss_sum,
                u.math.argmax(logits, axis=1),
                jnp.sum(hidden, axis=0),  # spike count per example and hidden neuron [B, H]
            )

        return brainstate.transform.for_loop(eval_batch, (indices, mask))

    # -- public API ---------------------------------------------------------------------------
    def _device_split(self, split, name: str):
        """Check a split (spikes ``[T, N, n_inputs]`` or, with an encoder, values ``[N, n_inputs]``, and
        labels ``int [N]``); return it on the device."""
        expected = f"(spikes [T, N, {self.net.n_inputs}], labels int [N])"
        if self.encoder is not None:
            expected += f" or (values [N, {self.net.n_inputs}], labels int [N])"
        if not (isinstance(split, (tuple, list)) and len(split) == 2):
            raise TypeError(f"{name} must be a pair {expected}, got {type(split).__name__}")
        data, labels = split
        if isinstance(data, jax.core.Tracer):
            raise TypeError(f"{name}: pass concrete arrays, not traced values")
        if getattr(data, "ndim", None) == 2:
            if self.encoder is None:
                raise ValueError(
                    f"{name} holds values [N, F] but this trainer has no encoder: pass spikes [T, N, F] "
                    f"or create the trainer with encoder=..."
                )
            if data.shape[1] != self.net.n_inputs or not np.issubdtype(data.dtype, np.floating):
                raise ValueError(
                    f"{name} values must be float [N, {self.net.n_inputs}], got {data.dtype} {data.shape}"
                )
            n = data.shape[0]
        else:
            self.net.check_input(data)
            n = data.shape[1]
        check_labels(labels, n, self.net.n_outputs)
        return self._place_split(data, labels)

    # -- where the data lives (a strategy over processes replaces these three) -----------------
    def _place_split(self, data, labels):
        """Where a checked split lives while training: here, whole, on the device."""
        return jnp.asarray(data), jnp.asarray(labels, dtype=jnp.int32)

    def _program_arguments(self, split, indices: np.ndarray, mask: np.ndarray) -> tuple:
        """The arguments of the compiled epoch or evaluation for the minibatches ``indices`` and
        ``mask`` (``[n_batches, batch_size]``, :class:`EpochPlan`): here the split itself and the
        indices, so that each batch is gathered on the device. A strategy may instead gather the
        batches itself and pass ``(spikes [n_batches, T, B, n_inputs], labels [n_batches, B],
        batch numbers [n_batches], mask)``: the compiled programs take either."""
        spikes, labels = split
        return spikes, labels, jnp.asarray(indices), jnp.asarray(mask)

    def _pad_split(self, split, size: int):
        """A placed split padded with zero examples up to ``size`` (whole batches), for evaluation."""
        data, labels = split
        return _pad_examples(data, labels, size)

    def _to_host(self, values):
        """The outputs of a compiled program (a pytree of arrays) as numpy arrays."""
        return jax.tree.map(np.asarray, values)

    def _check_batch_size(self, batch_size) -> int:
        batch_size = check_positive_int("batch_size", batch_size)
        if self._mesh is not None and batch_size % self._mesh.size:
            raise ValueError(
                f"batch_size={batch_size} must be a multiple of the {self._mesh.size} devices that "
                "data_parallel splits every batch over"
            )
        return batch_size

    def fit(
        self,
        train,
        epochs: int,
        batch_size: int = 64,
        *,
        seed: int = 0,
        validation=None,
        eval_batch_size: int = 256,
        on_epoch: Callable[[dict], None] | None = None,
        start_epoch: int = 0,
    ) -> dict:
        """Train for ``epochs`` passes over ``train = (spikes [T, N, n_inputs], labels int [N])`` (or
        values ``[N, n_inputs]`` with an encoder) in shuffled minibatches of ``batch_size`` (the
        shuffle seeded with ``seed``).

        Returns a history of arrays ``[epochs]``: ``epoch`` (1..epochs), ``train_loss`` (the mean
        cross-entropy of the epoch's batches, weighted by their real examples, measured before each
        update) and, with ``validation = (spikes, labels)``, ``val_loss`` and ``val_accuracy`` after
        each epoch. ``on_epoch``, if given, is called after every epoch with that epoch's row of the
        history (a dict of numbers), for example to drive a progress bar or keep the best weights.
        Raises :class:`FloatingPointError` if the loss diverges (NaN, infinite or huge) and warns with
        :class:`~helpers.LossBlowUpWarning` if the last epoch's loss ends far above the untrained loss
        (the first batch's, before any update) and ln C: the rules of :class:`~helpers.training.TrainingCore`.

        ``start_epoch`` continues a run after that many epochs, its weights and optimiser state put
        back (:func:`helpers.load_checkpoint`): ``epochs`` counts them too, the batches are those an
        uninterrupted run draws from epoch ``start_epoch`` on (so are the losses), and the history
        holds the epochs run now. The blow-up rule then needs the run's own untrained loss, which the
        checkpoint's first loss holds (:meth:`~helpers.training.TrainingCore.blow_up`); this call
        compares with its own first batch.
        """
        epochs = check_positive_int("epochs", epochs)
        start_epoch = check_non_negative_int("start_epoch", start_epoch)
        if start_epoch >= epochs:
            raise ValueError(f"start_epoch={start_epoch} must be below epochs={epochs}")
        batch_size = self._check_batch_size(batch_size)
        spikes, labels = self._device_split(train, "train")
        plan = EpochPlan(labels.shape[0], batch_size, seed=seed)
        history: dict[str, list] = {"epoch": [], "train_loss": []}
        if validation is not None:
            val = self._device_split(validation, "validation")
            history |= {"val_loss": [], "val_accuracy": []}
        untrained = None
        for epoch in range(start_epoch, epochs):
            indices, mask = plan.epoch(epoch)
            losses = self._to_host(self._epoch(*self._program_arguments((spikes, labels), indices, mask)))
            if untrained is None:
                untrained = float(losses[0])  # the first batch's loss, before any update
            real = mask.sum(axis=1)
            loss = float(np.sum(losses * real) / real.sum())
            self.check_finite(np.array([loss]), first_epoch=epoch + 1)
            row = {"epoch": epoch + 1, "train_loss": loss}
            if validation is not None:
                scores = self.evaluate(val, eval_batch_size)
                row |= {"val_loss": scores["loss"], "val_accuracy": scores["accuracy"]}
            for key, value in row.items():
                history[key].append(value)
            if on_epoch is not None:
                on_epoch(row)
        self.untrained_loss = untrained  # the reference of the blow-up rule (see TrainingCore.blow_up)
        self.warn_if_blown_up(np.asarray(history["train_loss"]), untrained)
        return {key: np.asarray(values) for key, values in history.items()}

    def evaluate(self, split, batch_size: int = 256) -> dict:
        """Score ``split = (spikes [T, N, n_inputs], labels int [N])`` in batches of ``batch_size``.

        Returns ``loss`` (the mean of the trainer's loss, nats for a cross-entropy), ``accuracy``,
        ``predictions int [N]`` and ``hidden_counts float [N, n_hidden]`` (spikes of every hidden
        neuron on every example).
        """
        batch_size = self._check_batch_size(batch_size)
        placed = self._device_split(split, "split")
        n = placed[1].shape[0]
        indices, mask = EpochPlan(n, batch_size, shuffle=False).epoch(0)
        # the split is padded to whole batches (the padding is never indexed): splits of different
        # sizes but as many batches, such as a validation and a test split, share one compiled program
        padded = self._pad_split(placed, indices.size)
        loss_sums, predictions, counts = self._to_host(
            self._evaluate(*self._program_arguments(padded, indices, mask))
        )
        predictions = np.asarray(predictions).reshape(-1)[:n]
        counts = np.asarray(counts).reshape(-1, counts.shape[-1])[:n]
        return {
            "loss": float(np.sum(loss_sums)) / n,
            "accuracy": float(np.mean(predictions == np.asarray(placed[1]))),
            "predictions": predictions,
            "hidden_counts": counts,
        }
