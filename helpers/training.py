"""Training: backpropagation through time and an optimiser under one ``jit``, and accuracy.

The readouts, the loss and the metrics on logits live in :mod:`helpers.readout`; compile counting and
memory estimates in :mod:`helpers.diagnostics`.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable

import brainstate
import braintools
import jax
import jax.numpy as jnp
import numpy as np

from helpers.arraytypes import Array
from helpers.diagnostics import xla_memory
from helpers.events import SpikeEvents, SpikeInput, spike_events
from helpers.model import SNN
from helpers.readout import LOSSES, READOUTS, accuracy_score, check_loss
from helpers.validation import (
    check_bool,
    check_instance,
    check_labels,
    check_one_of,
    check_positive_int,
    check_positive_number,
    check_seed,
)

__all__ = ["TrainingCore", "Trainer", "fit", "accuracy", "LossBlowUpWarning", "diverged_at"]

#: A cross-entropy (nats) above this means training has diverged: logits that far apart have lost
#: their float32 precision, and no learning run passes through such a loss.
DIVERGED_LOSS = 1e6

#: A run whose loss ends more than this many times above where it started (and above chance level,
#: the ln C of a network that cannot tell the C classes apart) has blown up without becoming NaN.
BLOW_UP_FACTOR = 10


#: Held while brainstate's global generator is seeded and drawn from (:meth:`TrainingCore.reinitialize`):
#: that generator is one for the whole process, so two threads that seed it and draw at once would
#: take each other's numbers. Hold it around any other "seed, then draw" made from a thread.
RANDOM_LOCK = threading.RLock()


class LossBlowUpWarning(RuntimeWarning):
    """Training ended with a loss far above where it started: the learning rate is probably too high."""


def diverged_at(losses: np.ndarray) -> np.ndarray:
    """Indices (along the last axis) of the losses that count as divergence: NaN, infinite, or above
    :data:`DIVERGED_LOSS` nats. Whether a runaway loss overflows to NaN or stays finite depends on how
    the CPU rounds, so both count."""
    return np.flatnonzero(~(np.abs(np.asarray(losses, dtype=float)) <= DIVERGED_LOSS))  # NaN compares False


class TrainingCore:
    """What every way of training here shares: the network, the optimiser, the readout, and the rules.

    The full-batch :class:`Trainer`, the minibatch :class:`helpers.MinibatchTrainer` and the many-runs
    :func:`helpers.fit_runs` (a ``vmap`` strategy over a :class:`Trainer`) all build on it; it holds

    - the network and the optimiser (any ``braintools.optim`` optimiser; default Adam with ``lr``),
      with the network's ``ParamState`` weights registered in it;
    - :meth:`reinitialize` (fresh weights and a fresh optimiser, the compiled programs kept),
      :meth:`weights` and :meth:`load_weights`;
    - :meth:`loss_of`: the readout over time, then the cross-entropy with an optional mask (padding);
    - the divergence rule: :meth:`check_finite` stops training on a NaN, infinite or huge loss and
      :meth:`blow_up` names a run whose loss ends far above its untrained loss and chance level, ln C;
    - :meth:`program`: the compiled programs of strategies built around this core, freed with it.

    Extension points (how a new way of training joins): a subclass supplies ``prepare_batch`` (checks
    the data once, where it enters, and returns it as its compiled programs take it) and a ``fit``
    built from one jitted program per epoch or per chunk of epochs that calls :meth:`loss_of` inside
    ``brainstate.transform.grad`` and ``self.optimizer.update``; it reports losses through
    :meth:`check_finite` and :meth:`blow_up`, and returns the history format of
    :meth:`Trainer.fit_history` (``epoch``, ``train_loss``, then ``val_*``). An outer strategy (many
    runs with ``vmap``, data parallel over processes) wraps a subclass's traced step, as
    :func:`helpers.fit_runs` wraps :meth:`Trainer.run_epochs`, and keeps its compiled program with
    :meth:`program`. A path's compiled step takes its gradient from :meth:`batch_gradient` (the step
    hook) of :meth:`batch_loss` (which reads the outputs with :meth:`loss_of`, the loss hook): online
    learning (:mod:`helpers.online`) overrides these two hooks and nothing else of the loop. A
    checkpoint takes :attr:`net` and :attr:`optimizer` (:func:`helpers.save_checkpoint`).
    """

    def __init__(
        self,
        net: SNN,
        *,
        lr: float = 3e-3,
        optimizer: braintools.optim.Optimizer | None = None,
        readout_method: str = "mean",
        loss: str = "ce",
    ):
        check_instance("net", net, SNN, "a helpers.SNN")
        check_one_of("readout_method", readout_method, READOUTS)
        #: the loss's name in :data:`helpers.readout.LOSSES` (default ``ce``: the cross-entropy of the
        #: readout over time); it must fit the network's output (membrane readout or output spikes)
        self.loss_name = check_loss(
            loss, spiking_output=getattr(net, "spiking_output", False), readout_method=readout_method
        )
        self.lr: float | None  # the learning rate, for messages (None when the optimiser hides it)
        if optimizer is None:
            self.lr = check_positive_number("lr", lr)  # numpy scalars as floats
            optimizer = braintools.optim.Adam(lr=self.lr)
        else:
            check_instance("optimizer", optimizer, braintools.optim.Optimizer, "a braintools.optim optimizer")
            self.lr = getattr(optimizer, "base_lr", None)
        self.net = net
        self.readout_method = readout_method
        self.optimizer = optimizer
        self.params = net.states(brainstate.ParamState)
        self.optimizer.register_trainable_weights(self.params)
        self._programs: dict = {}

    def program(self, key, build):
        """The compiled program stored under ``key``, built with ``build()`` on first use: strategies
        built around this core (:func:`helpers.fit_runs`) keep theirs here, so that a second call
        reuses it and it is freed with the trainer."""
        if key not in self._programs:
            self._programs[key] = build()
        return self._programs[key]

    def loss_of(self, outputs, labels, mask=None):
        """The loss hook: the training loss of readout traces ``[T, B, C]``: by default (``loss='ce'``)
        this core's readout over time, then the cross-entropy (nats) against ``labels [B]``, averaged
        over the examples where ``mask [B]`` is true (all, without a mask); another ``loss`` of
        :data:`helpers.readout.LOSSES` (per-step cross-entropy; on output spikes, snnTorch's rate and
        count losses). Traced inside the compiled programs. A way of training with another loss may
        override it (the per-step loss of :mod:`helpers.online`)."""
        return LOSSES[self.loss_name](outputs, labels, mask, self.readout_method)

    def batch_loss(self, spikes, labels, mask=None):
        """``(objective, reported)`` of one batch, traced: what the gradient is taken of, and the loss
        recorded in the history (they differ by a regularizer). Each path defines how it runs the
        network; the loss itself is :meth:`loss_of`."""
        raise NotImplementedError

    def batch_gradient(self, spikes, labels, mask=None):
        """The step hook: ``(gradients, reported loss)`` of one batch, traced inside a compiled step;
        each path's step applies ``self.optimizer.update`` to the gradients. Here BPTT of
        :meth:`batch_loss` with respect to the weights; a learning rule that computes its gradient
        otherwise (eligibility traces, :mod:`helpers.online`) overrides it."""
        grads, _, loss = brainstate.transform.grad(
            self.batch_loss, self.params, has_aux=True, return_value=True
        )(spikes, labels, mask)
        return grads, loss

    def reinitialize(self, seed: int) -> None:
        """Start over from fresh weights: seed brainstate's generator with ``seed``, draw the weights a
        new network with the same settings would get, and reset the optimiser.

        Equivalent to ``brainstate.random.seed(seed)`` followed by a new network and trainer, but the
        compiled programs are kept, so a loop over seeds compiles once. Safe to call from several
        threads at once (trainers of different networks): the seeding and the drawing hold
        :data:`RANDOM_LOCK`, so each gets the weights of its seed.
        """
        check_seed("seed", seed)
        with RANDOM_LOCK:  # seeded and drawn at once, whatever other threads do (see RANDOM_LOCK)
            brainstate.random.seed(seed)
            fresh = type(self.net)(**self.net.init_kwargs).states(brainstate.ParamState)
        for path, state in self.params.items():
            state.value = fresh[path].value
        optimizer = self.optimizer
        optimizer.opt_state.value = optimizer.tx.init(optimizer.param_states.to_pytree_value())
        optimizer.step_count.value = jnp.zeros_like(optimizer.step_count.value)  # keeps its dtype

    def weights(self) -> dict:
        """A copy of the network's trainable weights (path -> array), for :meth:`load_weights`."""
        return {path: state.value for path, state in self.params.items()}

    def load_weights(self, weights: dict) -> None:
        """Put back weights taken with :meth:`weights` (from this trainer or one with the same network)."""
        if not isinstance(weights, dict) or set(weights) != set(self.params):
            raise ValueError(
                f"weights must be a dict with the keys {sorted(map(str, self.params))}, "
                "as the trainer's weights() returns"
            )
        for path, state in self.params.items():
            structure = jax.tree.structure(weights[path])
            if structure != jax.tree.structure(state.value) or any(  # type: ignore[operator]
                np.shape(a) != np.shape(b)
                for a, b in zip(jax.tree.leaves(weights[path]), jax.tree.leaves(state.value), strict=True)
            ):
                raise ValueError(f"weights[{path!r}] does not have the shape of this network's weights")
        for path, state in self.params.items():
            state.value = weights[path]

    def check_finite(self, losses: np.ndarray, first_epoch: int) -> None:
        """Raise :class:`FloatingPointError` naming the epoch if training has diverged (see
        :func:`diverged_at`). ``losses[i]`` is the loss of epoch ``first_epoch + i``."""
        losses = np.asarray(losses, dtype=float)
        bad = diverged_at(losses)
        if bad.size:
            raise FloatingPointError(
                f"training diverged: the loss became {losses[bad[0]]:.3g} at epoch {first_epoch + bad[0]}; "
                f"lower the learning rate (lr={self.lr!r}) or check the data"
            )

    def blow_up(self, losses: np.ndarray, untrained: float | None = None) -> str | None:
        """The blow-up rule: if the loss history ends more than :data:`BLOW_UP_FACTOR` times above
        both the untrained loss (``untrained``; by default ``losses[0]``, the loss before the first
        update) and chance level (ln of the number of classes), a one-line message naming the learning
        rate to lower; else ``None``. (A loss that becomes NaN or huge stops training:
        :meth:`check_finite`.)"""
        losses = np.asarray(losses, dtype=float)
        if untrained is None:
            if losses.size < 2:
                return None
            untrained = float(losses[0])
        last = losses[-1]
        if not last > BLOW_UP_FACTOR * max(untrained, math.log(self.net.n_outputs)):
            return None
        if isinstance(self.lr, (int, float)):
            advice = f"lower the learning rate (lr={self.lr:g}; try {self.lr / 10:g})"
        else:
            advice = "lower the optimiser's learning rate"
        return (
            f"training blew up: the loss rose from {untrained:.3g} to {last:.3g} over {losses.size} epochs; "
            f"{advice}"
        )

    def warn_if_blown_up(self, losses: np.ndarray, untrained: float | None = None, *, depth: int = 1) -> None:
        """Warn with :class:`LossBlowUpWarning` when :meth:`blow_up` has a message; the warning points
        at the caller ``depth`` frames above the method that calls this one."""
        message = self.blow_up(losses, untrained)
        if message:
            warnings.warn(message, LossBlowUpWarning, stacklevel=2 + depth)


class Trainer(TrainingCore):
    """Trains an :class:`~helpers.SNN` full-batch with BPTT and an optimiser (default Adam, ``lr``).

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

    ``loss`` names the loss of :data:`helpers.readout.LOSSES` it trains (default ``ce``; see
    :meth:`TrainingCore.loss_of`).

    Introduced in notebook 4; the shared rules (re-initialisation, divergence) are
    :class:`TrainingCore`'s.
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
        loss: str = "ce",
    ):
        super().__init__(net, lr=lr, optimizer=optimizer, readout_method=readout_method, loss=loss)
        if checkpoint_base is not None:
            check_positive_int("checkpoint_base", checkpoint_base)
        self.checkpoint_base = checkpoint_base
        self.event_driven = check_bool("event_driven", event_driven)
        self._train = brainstate.transform.jit(self._train_step)
        self._trains = brainstate.transform.jit(self.run_epochs, static_argnums=2)
        self._loss = brainstate.transform.jit(self._loss_fn)

    # -- pure pieces, traced under jit ------------------------------------------------------
    def batch_loss(self, spikes, labels, mask=None):
        loss = self.loss_of(self.net.simulate(spikes, checkpoint_base=self.checkpoint_base), labels, mask)
        return loss, loss

    def _loss_fn(self, spikes, labels):
        return self.batch_loss(spikes, labels)[1]

    def _train_step(self, spikes, labels):
        grads, loss = self.batch_gradient(spikes, labels)
        self.optimizer.update(grads)
        return loss

    def run_epochs(self, spikes: SpikeInput, labels: Array, n_epochs: int):
        """``n_epochs`` training steps as one traced function (a scan over epochs, no host sync); returns
        the loss before each update, ``[n_epochs]``. Pure: call it inside ``jit``/``vmap``, with input
        from :meth:`prepare_batch` (``fit(..., epochs_per_call=n)`` runs it jitted)."""
        return brainstate.transform.for_loop(lambda _: self._train_step(spikes, labels), jnp.arange(n_epochs))

    # -- public API, with checks on concrete inputs -----------------------------------------
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
        return float(self._train(self.prepare_batch(spikes, labels), labels))

    def loss(self, spikes: SpikeInput, labels: Array) -> float:
        """The cross-entropy (nats) of the current network on the batch, without updating it."""
        return float(self._loss(self.prepare_batch(spikes, labels), labels))

    def predict(self, spikes: SpikeInput) -> np.ndarray:
        """The predicted class of every example, ``int [B]``, read out like the loss."""
        return np.asarray(self.net.predictor(self.readout_method)(self.prepare_input(spikes)))

    def accuracy(self, spikes: SpikeInput, labels: Array) -> float:
        """The fraction of examples whose largest logit is their label."""
        return self._accuracy(self.prepare_batch(spikes, labels), labels)

    def _accuracy(self, data: SpikeInput, labels: Array) -> float:
        """:meth:`accuracy` of a batch :meth:`prepare_batch` has checked and converted."""
        return accuracy_score(self.net.predictor(self.readout_method)(data), labels)

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
            return xla_memory(self._train.lower(data, labels).compile())
        return xla_memory(self._trains.lower(data, labels, epochs_per_call).compile())

    def fit(
        self,
        spikes: SpikeInput,
        labels: Array,
        epochs: int = 800,
        *,
        log_every: int | None = None,
        epochs_per_call: int = 1,
        on_epoch: Callable[[dict], None] | None = None,
    ) -> np.ndarray:
        """Train for ``epochs`` full-batch steps; return the loss before each update, ``[epochs]``.

        ``on_epoch``, if given, is called after every compiled call with the last epoch's row of the
        history, ``{"epoch": e, "train_loss": loss}`` (with ``epochs_per_call=1``: after every epoch),
        for example to drive a progress bar.

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
        return self._fit(
            self.prepare_batch(spikes, labels), labels, epochs, log_every, epochs_per_call, on_epoch
        )

    def _fit(self, data, labels, epochs, log_every=None, epochs_per_call=1, on_epoch=None) -> np.ndarray:
        """:meth:`fit` on a batch :meth:`prepare_batch` has checked and converted."""
        losses = np.empty(epochs)
        done = 0
        while done < epochs:
            n = min(epochs_per_call, epochs - done)
            if log_every:  # stop at the next epoch to print
                n = min(n, log_every - done % log_every)
            if n == 1:
                losses[done] = float(self._train(data, labels))
            else:
                losses[done : done + n] = np.asarray(self._trains(data, labels, n))
            self.check_finite(losses[done : done + n], first_epoch=done + 1)
            done += n
            if log_every and done % log_every == 0:
                print(f"epoch {done:4d} | loss {losses[done - 1]:.4f}")
            if on_epoch is not None:
                on_epoch({"epoch": done, "train_loss": float(losses[done - 1])})
        self.warn_if_blown_up(losses, depth=2)  # the caller of fit
        return losses

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
        history: dict[str, list] = {"epoch": []} | {
            f"{name}_{m}": [] for name in sets for m in ("loss", "accuracy")
        }

        def record(epoch):
            history["epoch"].append(epoch)
            for name, (data, labels) in sets.items():
                history[f"{name}_loss"].append(float(self._loss(data, labels)))
                history[f"{name}_accuracy"].append(self._accuracy(data, labels))

        record(0)
        done = 0
        while done < epochs:
            n = min(every, epochs - done)
            self._fit(*sets["train"], n, epochs_per_call=n)
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
