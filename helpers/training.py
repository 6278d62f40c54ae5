"""Loss, accuracy and the training loop: backpropagation through time under one ``jit``.

One readout reduction, :func:`readout`, turns the readout traces ``[T, B, C]`` into logits ``[B, C]``
for *both* the loss and the accuracy, so that what we score is what we train.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator

import brainstate
import braintools
import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from helpers.events import SpikeEvents, spike_events
from helpers.model import SNN
from helpers.validation import check_labels, check_positive_int

__all__ = [
    "READOUTS",
    "readout",
    "cross_entropy",
    "Trainer",
    "fit",
    "accuracy",
    "count_compilations",
    "CompilationLog",
    "confusion_matrix",
]

#: A cross-entropy (nats) above this means training has diverged: logits that far apart have lost
#: their float32 precision, and no learning run passes through such a loss.
DIVERGED_LOSS = 1e6

#: How a readout trace ``[T, B, C]`` is reduced over time to logits ``[B, C]``.
READOUTS: dict[str, Callable] = {
    "mean": lambda outputs: u.math.mean(outputs, axis=0),
    "max": lambda outputs: u.math.max(outputs, axis=0),
    "last": lambda outputs: outputs[-1],
}


def readout(outputs, method: str = "mean"):
    """Reduce readout traces ``[T, B, C]`` over time to logits ``[B, C]`` (``mean``, ``max`` or ``last``)."""
    if method not in READOUTS:
        raise ValueError(f"readout method must be one of {sorted(READOUTS)}, got {method!r}")
    if getattr(outputs, "ndim", None) != 3:
        raise ValueError(f"outputs must have shape [T, B, C], got shape {getattr(outputs, 'shape', None)}")
    return READOUTS[method](outputs)


def cross_entropy(logits, labels):
    """Mean softmax cross-entropy of logits ``[B, C]`` against integer labels ``[B]`` (nats)."""
    return braintools.metric.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


class Trainer:
    """Trains an :class:`~helpers.SNN` with BPTT and an optimiser (default Adam, ``lr``).

    ``checkpoint_base`` runs the loss's loop over time as a checkpointed loop (see
    :meth:`helpers.SNN.simulate`): less memory for long sequences, at the cost of recomputation.

    ``step``, ``loss`` and ``accuracy`` are jitted once per trainer and take the data as arguments
    (not as closed-over constants), so one compiled step serves every batch of the same shape.

    With ``event_driven`` (the default), dense 0/1 spikes are converted once to
    :class:`~helpers.SpikeEvents` and the input layer adds the weight rows of the inputs that fired
    instead of multiplying the whole mostly-zero matrix: the same sums, a fraction of the work. The
    sums run in another order than the dense product's, so results differ from ``event_driven=False``
    in the last bits, which grow over hundreds of epochs like any rounding difference (notebook 4).
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
        if not isinstance(net, SNN):
            raise TypeError(f"net must be a helpers.SNN, got {type(net).__name__}")
        if readout_method not in READOUTS:
            raise ValueError(f"readout_method must be one of {sorted(READOUTS)}, got {readout_method!r}")
        if optimizer is None:
            if not (isinstance(lr, (int, float)) and np.isfinite(lr) and lr > 0):
                raise ValueError(f"lr must be a positive, finite number, got {lr!r}")
            optimizer = braintools.optim.Adam(lr=lr)
        else:
            lr = getattr(optimizer, "base_lr", None)  # for messages only
        self.net = net
        self.lr = lr
        self.readout_method = readout_method
        if checkpoint_base is not None:
            check_positive_int("checkpoint_base", checkpoint_base)
        self.checkpoint_base = checkpoint_base
        if not isinstance(event_driven, bool):
            raise TypeError(f"event_driven must be True or False, got {event_driven!r}")
        self.event_driven = event_driven
        self._events: dict[int, tuple] = {}  # id -> (jax array, its events): recent conversions
        self.optimizer = optimizer
        self.params = net.states(brainstate.ParamState)
        self.optimizer.register_trainable_weights(self.params)
        self._step = brainstate.transform.jit(self._train_step)
        self._steps = brainstate.transform.jit(self._train_steps, static_argnums=2)
        self._loss = brainstate.transform.jit(self._loss_fn)
        self._predict = brainstate.transform.jit(
            lambda spikes: u.math.argmax(readout(self.net.simulate(spikes), self.readout_method), axis=1)
        )

    # -- pure pieces, traced under jit ------------------------------------------------------
    def _loss_fn(self, spikes, labels):
        logits = readout(self.net.simulate(spikes, checkpoint_base=self.checkpoint_base), self.readout_method)
        return cross_entropy(logits, labels)

    def _train_step(self, spikes, labels):
        grads, loss = brainstate.transform.grad(self._loss_fn, self.params, return_value=True)(spikes, labels)
        self.optimizer.update(grads)
        return loss

    def _train_steps(self, spikes, labels, n_epochs: int):
        # n_epochs training steps inside one compiled program: a scan over epochs, no host sync
        return brainstate.transform.for_loop(lambda _: self._train_step(spikes, labels), jnp.arange(n_epochs))

    # -- public API, with checks on concrete inputs -----------------------------------------
    def reinitialize(self, seed: int) -> None:
        """Start over from fresh weights: seed brainstate's generator with ``seed``, draw the weights a
        new network with the same settings would get, and reset the optimiser.

        Equivalent to ``brainstate.random.seed(seed)`` followed by a new ``SNN`` and ``Trainer``, but the
        compiled training step is kept, so a loop over seeds compiles once.
        """
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        brainstate.random.seed(seed)
        fresh = SNN(**self.net.init_kwargs).states(brainstate.ParamState)
        for path, state in self.params.items():
            state.value = fresh[path].value
        optimizer = self.optimizer
        optimizer.opt_state.value = optimizer.tx.init(optimizer.param_states.to_pytree_value())
        optimizer.step_count.value = jnp.zeros_like(optimizer.step_count.value)  # keeps its dtype

    def _input(self, spikes):
        """Check the spikes; return what the compiled functions take: events or dense spikes."""
        self.net.check_input(spikes)
        if not self.event_driven or isinstance(spikes, SpikeEvents):
            return spikes
        if not isinstance(spikes, jax.Array):  # mutable (numpy): convert every time
            return spike_events(spikes)
        cached = self._events.get(id(spikes))
        if cached is None or cached[0] is not spikes:
            if len(self._events) >= 4:
                self._events.pop(next(iter(self._events)))
            cached = self._events[id(spikes)] = (spikes, spike_events(spikes))
        return cached[1]

    def _check(self, spikes, labels):
        """Check spikes and labels; return the spikes as the compiled functions take them."""
        data = self._input(spikes)
        check_labels(labels, data.shape[1], self.net.n_outputs)
        return data

    def step(self, spikes, labels) -> float:
        """One epoch on the batch: BPTT gradient of the loss, one optimiser update; returns the loss."""
        return float(self._step(self._check(spikes, labels), labels))

    def loss(self, spikes, labels) -> float:
        """The cross-entropy (nats) of the current network on the batch, without updating it."""
        return float(self._loss(self._check(spikes, labels), labels))

    def accuracy(self, spikes, labels) -> float:
        """The fraction of examples whose largest logit is their label."""
        return accuracy(self.net, self._check(spikes, labels), labels, self.readout_method)

    def memory_estimate(self, spikes, labels) -> dict[str, float]:
        """XLA's memory estimate (MiB) for one compiled training step on this batch shape: the
        ``arguments``, ``outputs`` and ``temporaries`` (mostly the states BPTT keeps for the backward
        pass), and their ``total``. Compiles the step for the estimate; trains nothing."""
        analysis = self._step.lower(self._check(spikes, labels), labels).compile().memory_analysis()
        mib = {
            "arguments": analysis.argument_size_in_bytes / 2**20,
            "outputs": analysis.output_size_in_bytes / 2**20,
            "temporaries": analysis.temp_size_in_bytes / 2**20,
        }
        mib["total"] = (
            mib["arguments"] + mib["outputs"] + mib["temporaries"] - analysis.alias_size_in_bytes / 2**20
        )
        return mib

    def predict(self, spikes) -> np.ndarray:
        """The predicted class of every example, ``int [B]``, read out like the loss."""
        return np.asarray(self._predict(self._input(spikes)))

    def fit(
        self,
        spikes,
        labels,
        epochs: int = 800,
        *,
        log_every: int | None = None,
        epochs_per_call: int = 1,
    ) -> np.ndarray:
        """Train for ``epochs`` full-batch steps; return the loss before each update, ``[epochs]``.

        With ``log_every``, print the loss every that many epochs. With ``epochs_per_call > 1``,
        that many epochs run inside one compiled program (a ``for_loop`` over epochs under ``jit``),
        with no return to Python in between; the losses are the same, bit for bit. Training stops with
        :class:`FloatingPointError`, naming the epoch, if the loss becomes NaN or infinite.
        """
        check_positive_int("epochs", epochs)
        check_positive_int("epochs_per_call", epochs_per_call)
        if log_every is not None:
            check_positive_int("log_every", log_every)
        data = self._check(spikes, labels)
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
        return losses

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

    def fit_history(self, train, epochs: int, *, validation=None, every: int = 10) -> dict:
        """Train on ``train = (spikes, labels)``; every ``every`` epochs record the loss and accuracy on
        the training set and, if given, on ``validation = (spikes, labels)`` (without training on it).

        Returns a dict of arrays: ``epoch``, ``train_loss``, ``train_accuracy`` and, with validation,
        ``val_loss``, ``val_accuracy``; the first row is before training (epoch 0).
        """
        check_positive_int("epochs", epochs)
        check_positive_int("every", every)
        sets = {"train": train} if validation is None else {"train": train, "val": validation}
        history = {"epoch": []} | {f"{name}_{m}": [] for name in sets for m in ("loss", "accuracy")}

        def record(epoch):
            history["epoch"].append(epoch)
            for name, (spikes, labels) in sets.items():
                history[f"{name}_loss"].append(self.loss(spikes, labels))
                history[f"{name}_accuracy"].append(self.accuracy(spikes, labels))

        record(0)
        done = 0
        while done < epochs:
            n = min(every, epochs - done)
            self.fit(*train, n, epochs_per_call=n)
            done += n
            record(done)
        return {key: np.asarray(values) for key, values in history.items()}


def fit(net: SNN, spikes, labels, epochs: int = 800, *, lr: float = 3e-3, log_every: int | None = None):
    """Train ``net`` in place with Adam for ``epochs`` epochs; return the loss history ``[epochs]``."""
    return Trainer(net, lr=lr).fit(spikes, labels, epochs, log_every=log_every)


def accuracy(net: SNN, spikes, labels, readout_method: str = "mean") -> float:
    """Accuracy of ``net`` on a batch, read out with ``readout_method`` (jitted).

    ``spikes`` are dense ``[T, B, N]`` or :class:`~helpers.SpikeEvents`; dense spikes run through the
    dense input product (a :class:`Trainer`'s ``accuracy`` uses its own input mode).
    """
    if not isinstance(net, SNN):
        raise TypeError(f"net must be a helpers.SNN, got {type(net).__name__}")
    if readout_method not in READOUTS:
        raise ValueError(f"readout_method must be one of {sorted(READOUTS)}, got {readout_method!r}")
    net.check_input(spikes)
    check_labels(labels, spikes.shape[1], net.n_outputs)
    per_net = _ACCURACY_FNS.setdefault(net, {})
    if readout_method not in per_net:  # compile once per network and readout

        def correct(spikes, labels):
            logits = readout(net.simulate(spikes), readout_method)
            return u.math.mean(u.math.argmax(logits, axis=1) == labels)

        per_net[readout_method] = brainstate.transform.jit(correct)
    return float(per_net[readout_method](spikes, labels))


_ACCURACY_FNS: weakref.WeakKeyDictionary[SNN, dict] = weakref.WeakKeyDictionary()


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

    def listener(event: str, duration: float, **kwargs) -> None:
        if active[0] and event == "/jax/core/compile/backend_compile_duration":
            compiled.append(str(kwargs.get("fun_name", "?")))

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield compiled
    finally:
        active[0] = False
        jax.monitoring.unregister_event_duration_listener(listener)


def confusion_matrix(predictions, labels, n_classes: int) -> np.ndarray:
    """Counts ``[n_classes, n_classes]``: row = true class, column = predicted class."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.shape != labels.shape or predictions.ndim != 1:
        raise ValueError(
            f"predictions and labels must be two [B] arrays of the same shape, got "
            f"{predictions.shape} and {labels.shape}"
        )
    check_positive_int("n_classes", n_classes)
    for name, values in (("predictions", predictions), ("labels", labels)):
        if values.size and (values.min() < 0 or values.max() >= n_classes):
            raise ValueError(f"{name} must lie in [0, {n_classes - 1}]")
    matrix = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix
