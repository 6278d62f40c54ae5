"""Training: backpropagation through time and an optimiser under one ``jit``, and accuracy.

The readouts, the loss and the metrics on logits live in :mod:`helpers.readout`; compile counting and
memory estimates in :mod:`helpers.diagnostics`.
"""

from __future__ import annotations

import math
import warnings

import brainstate
import braintools
import jax.numpy as jnp
import numpy as np

from helpers.arraytypes import Array
from helpers.diagnostics import xla_memory
from helpers.events import SpikeEvents, SpikeInput, spike_events
from helpers.model import SNN
from helpers.readout import READOUTS, accuracy_score, cross_entropy, readout
from helpers.validation import (
    check_bool,
    check_instance,
    check_labels,
    check_one_of,
    check_positive_int,
    check_positive_number,
    check_seed,
)

__all__ = ["Trainer", "fit", "accuracy", "LossBlowUpWarning"]

#: A cross-entropy (nats) above this means training has diverged: logits that far apart have lost
#: their float32 precision, and no learning run passes through such a loss.
DIVERGED_LOSS = 1e6

#: A run whose loss ends more than this many times above where it started (and above chance level,
#: the ln C of a network that cannot tell the C classes apart) has blown up without becoming NaN.
BLOW_UP_FACTOR = 10


class LossBlowUpWarning(RuntimeWarning):
    """Training ended with a loss far above where it started: the learning rate is probably too high."""


class Trainer:
    """Trains an :class:`~helpers.SNN` with BPTT and an optimiser (default Adam, ``lr``).

    ``checkpoint_base`` runs the loss's loop over time as a checkpointed loop (see
    :meth:`helpers.SNN.simulate`): less memory for long sequences, at the cost of recomputation.

    The training step and the loss are jitted once per trainer and take the data as arguments
    (not as closed-over constants), so one compiled step serves every batch of the same shape;
    ``predict`` and ``accuracy`` run the network's own compiled forward pass (:meth:`helpers.SNN.predict`).

    With ``event_driven`` (the default), dense 0/1 spikes are converted to :class:`~helpers.SpikeEvents`
    and the input layer adds the weight rows of the inputs that fired instead of multiplying the whole
    mostly-zero matrix: the same sums, a fraction of the work. The sums run in another order than the
    dense product's, so results differ from ``event_driven=False`` in the last bits, which grow over
    hundreds of epochs like any rounding difference (notebook 4). Every method converts dense spikes
    on each call (a few milliseconds on the host; :meth:`fit` and :meth:`fit_history` convert once per
    call); to call :meth:`step` many times on the same batch, convert it once with
    :meth:`prepare_input` and pass the result. The trainer keeps no copy of the data.
    """

    def __init__(
        self,
        net: SNN,
        *,
        lr: float = 3e-3,
        optimizer: braintools.optim.Optimizer | None = None,
        readout_method: str = "mean",
        checkpoint_base: int | None = None,
        event_driven: bool = True,
    ):
        check_instance("net", net, SNN, "a helpers.SNN")
        check_one_of("readout_method", readout_method, READOUTS)
        if optimizer is None:
            lr = check_positive_number("lr", lr)  # numpy scalars as floats
            optimizer = braintools.optim.Adam(lr=lr)
        else:
            lr = getattr(optimizer, "base_lr", None)  # for messages only
        self.net = net
        self.lr = lr
        self.readout_method = readout_method
        if checkpoint_base is not None:
            check_positive_int("checkpoint_base", checkpoint_base)
        self.checkpoint_base = checkpoint_base
        self.event_driven = check_bool("event_driven", event_driven)
        self.optimizer = optimizer
        self.params = net.states(brainstate.ParamState)
        self.optimizer.register_trainable_weights(self.params)
        self._step = brainstate.transform.jit(self._train_step)
        self._steps = brainstate.transform.jit(self.run_epochs, static_argnums=2)
        #: compiled programs that other helpers build around this trainer's step (``helpers.runs``):
        #: kept here so that they live exactly as long as the trainer
        self.programs: dict = {}
        self._loss = brainstate.transform.jit(self._loss_fn)

    # -- pure pieces, traced under jit ------------------------------------------------------
    def _loss_fn(self, spikes, labels):
        logits = readout(self.net.simulate(spikes, checkpoint_base=self.checkpoint_base), self.readout_method)
        return cross_entropy(logits, labels)

    def _train_step(self, spikes, labels):
        grads, loss = brainstate.transform.grad(self._loss_fn, self.params, return_value=True)(spikes, labels)
        self.optimizer.update(grads)
        return loss

    def run_epochs(self, spikes: SpikeInput, labels: Array, n_epochs: int):
        """``n_epochs`` training steps as one traced function (a scan over epochs, no host sync); returns
        the loss before each update, ``[n_epochs]``. Pure: call it inside ``jit``/``vmap``, with input
        from :meth:`prepare_batch` (``fit(..., epochs_per_call=n)`` runs it jitted)."""
        return brainstate.transform.for_loop(lambda _: self._train_step(spikes, labels), jnp.arange(n_epochs))

    # -- public API, with checks on concrete inputs -----------------------------------------
    def reinitialize(self, seed: int) -> None:
        """Start over from fresh weights: seed brainstate's generator with ``seed``, draw the weights a
        new network with the same settings would get, and reset the optimiser.

        Equivalent to ``brainstate.random.seed(seed)`` followed by a new ``SNN`` and ``Trainer``, but the
        compiled training step is kept, so a loop over seeds compiles once.
        """
        check_seed("seed", seed)
        brainstate.random.seed(seed)
        fresh = SNN(**self.net.init_kwargs).states(brainstate.ParamState)
        for path, state in self.params.items():
            state.value = fresh[path].value
        optimizer = self.optimizer
        optimizer.opt_state.value = optimizer.tx.init(optimizer.param_states.to_pytree_value())
        optimizer.step_count.value = jnp.zeros_like(optimizer.step_count.value)  # keeps its dtype

    def prepare_input(self, spikes: SpikeInput) -> SpikeInput:
        """Check the spikes and return them as this trainer's compiled functions take them:
        :class:`~helpers.SpikeEvents` when event-driven (dense spikes are converted), else as given.

        Every method calls it; pass its result to them to convert a batch once instead of per call.
        """
        self.net.check_input(spikes)
        if self.event_driven and not isinstance(spikes, SpikeEvents):
            return spike_events(spikes)
        return spikes

    def prepare_batch(self, spikes: SpikeInput, labels: Array) -> SpikeInput:
        """Check spikes and labels; return the spikes as the compiled functions take them (see
        :meth:`prepare_input`)."""
        data = self.prepare_input(spikes)
        check_labels(labels, data.shape[1], self.net.n_outputs)
        return data

    def step(self, spikes: SpikeInput, labels: Array) -> float:
        """One epoch on the batch: BPTT gradient of the loss, one optimiser update; returns the loss."""
        return float(self._step(self.prepare_batch(spikes, labels), labels))

    def loss(self, spikes: SpikeInput, labels: Array) -> float:
        """The cross-entropy (nats) of the current network on the batch, without updating it."""
        return float(self._loss(self.prepare_batch(spikes, labels), labels))

    def predict(self, spikes: SpikeInput) -> np.ndarray:
        """The predicted class of every example, ``int [B]``, read out like the loss."""
        return self.net.predict(self.prepare_input(spikes), self.readout_method)

    def accuracy(self, spikes: SpikeInput, labels: Array) -> float:
        """The fraction of examples whose largest logit is their label."""
        data = self.prepare_batch(spikes, labels)
        return accuracy_score(self.net.predict(data, self.readout_method), labels)

    def memory_estimate(
        self, spikes: SpikeInput, labels: Array, *, epochs_per_call: int = 1
    ) -> dict[str, float]:
        """XLA's memory estimate (MiB) for the compiled training program on this batch shape: one step,
        or ``epochs_per_call`` epochs in one program as :meth:`fit` runs them. Returns the
        ``arguments``, ``outputs`` and ``temporaries`` (mostly the states BPTT keeps for the backward
        pass), and their ``total`` (see :func:`helpers.diagnostics.xla_memory`). Compiles the program
        for the estimate; trains nothing."""
        check_positive_int("epochs_per_call", epochs_per_call)
        data = self.prepare_batch(spikes, labels)
        if epochs_per_call == 1:
            return xla_memory(self._step.lower(data, labels).compile())
        return xla_memory(self._steps.lower(data, labels, epochs_per_call).compile())

    def fit(
        self,
        spikes: SpikeInput,
        labels: Array,
        epochs: int = 800,
        *,
        log_every: int | None = None,
        epochs_per_call: int = 1,
    ) -> np.ndarray:
        """Train for ``epochs`` full-batch steps; return the loss before each update, ``[epochs]``.

        With ``log_every``, print the loss every that many epochs. With ``epochs_per_call > 1``,
        that many epochs run inside one compiled program (a ``for_loop`` over epochs under ``jit``),
        with no return to Python in between; the losses are the same, bit for bit. Training stops with
        :class:`FloatingPointError`, naming the epoch, if the loss becomes NaN or infinite; a loss that
        ends far above where it started warns with :class:`LossBlowUpWarning` (see :meth:`blow_up`).
        """
        check_positive_int("epochs", epochs)
        check_positive_int("epochs_per_call", epochs_per_call)
        if log_every is not None:
            check_positive_int("log_every", log_every)
        data = self.prepare_batch(spikes, labels)
        losses = np.empty(epochs)
        done = 0
        while done < epochs:
            n = min(epochs_per_call, epochs - done)
            if log_every:  # stop at the next epoch to print
                n = min(n, log_every - done % log_every)
            if n == 1:
                losses[done] = float(self._step(data, labels))
            else:
                losses[done : done + n] = np.asarray(self._steps(data, labels, n))
            self.check_finite(losses[done : done + n], first_epoch=done + 1)
            done += n
            if log_every and done % log_every == 0:
                print(f"epoch {done:4d} | loss {losses[done - 1]:.4f}")
        message = self.blow_up(losses)
        if message:
            warnings.warn(message, LossBlowUpWarning, stacklevel=2)
        return losses

    def blow_up(self, losses: np.ndarray) -> str | None:
        """If the loss history ends more than :data:`BLOW_UP_FACTOR` times above its first value and
        above chance level (ln of the number of classes), a one-line message naming the learning rate
        to lower; else ``None``. (A loss that becomes NaN or huge stops training: :meth:`check_finite`.)
        """
        losses = np.asarray(losses, dtype=float)
        if losses.size < 2:
            return None
        first, last = losses[0], losses[-1]
        if not last > BLOW_UP_FACTOR * max(first, math.log(self.net.n_outputs)):
            return None
        if isinstance(self.lr, (int, float)):
            advice = f"lower the learning rate (lr={self.lr:g}; try {self.lr / 10:g})"
        else:
            advice = "lower the optimiser's learning rate"
        return (
            f"training blew up: the loss rose from {first:.3g} to {last:.3g} over {losses.size} epochs; "
            f"{advice}"
        )

    def check_finite(self, losses: np.ndarray, first_epoch: int) -> None:
        """Raise :class:`FloatingPointError` naming the epoch if training has diverged: a loss that is
        NaN, infinite, or above :data:`DIVERGED_LOSS` nats.

        ``losses[i]`` is the loss of epoch ``first_epoch + i``. Whether a runaway loss overflows to
        NaN or stays finite depends on how the CPU rounds, so both count as divergence.
        """
        bad = np.flatnonzero(~(np.abs(losses) <= DIVERGED_LOSS))  # NaN compares False
        if bad.size:
            raise FloatingPointError(
                f"training diverged: the loss became {losses[bad[0]]:.3g} at epoch {first_epoch + bad[0]}; "
                f"lower the learning rate (lr={self.lr!r}) or check the data"
            )

    def fit_history(
        self,
        train: tuple[SpikeInput, Array],
        epochs: int,
        *,
        validation: tuple[SpikeInput, Array] | None = None,
        every: int = 10,
    ) -> dict[str, np.ndarray]:
        """Train on ``train = (spikes, labels)``; every ``every`` epochs record the loss and accuracy on
        the training set and, if given, on ``validation = (spikes, labels)`` (without training on it).

        Returns a dict of arrays: ``epoch``, ``train_loss``, ``train_accuracy`` and, with validation,
        ``val_loss``, ``val_accuracy``; the first row is before training (epoch 0).
        """
        check_positive_int("epochs", epochs)
        check_positive_int("every", every)
        sets = {"train": train} if validation is None else {"train": train, "val": validation}
        sets = {name: (self.prepare_batch(spikes, labels), labels) for name, (spikes, labels) in sets.items()}
        history = {"epoch": []} | {f"{name}_{m}": [] for name in sets for m in ("loss", "accuracy")}

        def record(epoch):
            history["epoch"].append(epoch)
            for name, (data, labels) in sets.items():
                history[f"{name}_loss"].append(self.loss(data, labels))
                history[f"{name}_accuracy"].append(self.accuracy(data, labels))

        record(0)
        done = 0
        while done < epochs:
            n = min(every, epochs - done)
            self.fit(*sets["train"], n, epochs_per_call=n)
            done += n
            record(done)
        return {key: np.asarray(values) for key, values in history.items()}


def fit(
    net: SNN,
    spikes: SpikeInput,
    labels: Array,
    epochs: int = 800,
    *,
    lr: float = 3e-3,
    log_every: int | None = None,
) -> np.ndarray:
    """Train ``net`` in place with Adam for ``epochs`` epochs; return the loss history ``[epochs]``."""
    return Trainer(net, lr=lr).fit(spikes, labels, epochs, log_every=log_every)


def accuracy(net: SNN, spikes: SpikeInput, labels: Array, readout_method: str = "mean") -> float:
    """Accuracy of ``net`` on a batch, read out with ``readout_method``.

    ``spikes`` are dense ``[T, B, N]`` or :class:`~helpers.SpikeEvents`; dense spikes run through the
    dense input product (a :class:`Trainer`'s ``accuracy`` uses its own input mode). Runs the network's
    compiled forward pass (:meth:`helpers.SNN.predict`), compiled once per network and readout.
    """
    check_instance("net", net, SNN, "a helpers.SNN")
    check_one_of("readout_method", readout_method, READOUTS)
    net.check_input(spikes)
    check_labels(labels, spikes.shape[1], net.n_outputs)
    return accuracy_score(net.predict(spikes, readout_method), labels)
