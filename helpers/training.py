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
import numpy as np

from helpers.model import SNN
from helpers.validation import check_labels, check_positive_int, check_spikes

__all__ = [
    "READOUTS",
    "readout",
    "cross_entropy",
    "Trainer",
    "fit",
    "accuracy",
    "count_compilations",
]

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

    ``step``, ``loss`` and ``accuracy`` are jitted once per trainer and take the data as arguments
    (not as closed-over constants), so one compiled step serves every batch of the same shape.
    """

    def __init__(
        self,
        net: SNN,
        *,
        lr: float = 3e-3,
        optimizer: braintools.optim.Optimizer | None = None,
        readout_method: str = "mean",
    ):
        if not isinstance(net, SNN):
            raise TypeError(f"net must be a helpers.SNN, got {type(net).__name__}")
        if readout_method not in READOUTS:
            raise ValueError(f"readout_method must be one of {sorted(READOUTS)}, got {readout_method!r}")
        if optimizer is None:
            if not (isinstance(lr, (int, float)) and np.isfinite(lr) and lr > 0):
                raise ValueError(f"lr must be a positive, finite number, got {lr!r}")
            optimizer = braintools.optim.Adam(lr=lr)
        self.net = net
        self.lr = lr if optimizer is None else getattr(optimizer, "lr", None)
        self.readout_method = readout_method
        self.optimizer = optimizer
        self.params = net.states(brainstate.ParamState)
        self.optimizer.register_trainable_weights(self.params)
        self._step = brainstate.transform.jit(self._train_step)
        self._loss = brainstate.transform.jit(self._loss_fn)

    # -- pure pieces, traced under jit ------------------------------------------------------
    def _loss_fn(self, spikes, labels):
        logits = readout(self.net.simulate(spikes), self.readout_method)
        return cross_entropy(logits, labels)

    def _train_step(self, spikes, labels):
        grads, loss = brainstate.transform.grad(self._loss_fn, self.params, return_value=True)(spikes, labels)
        self.optimizer.update(grads)
        return loss

    # -- public API, with checks on concrete inputs -----------------------------------------
    def _check(self, spikes, labels) -> None:
        check_spikes(spikes, self.net.n_inputs)
        check_labels(labels, spikes.shape[1], self.net.n_outputs)

    def step(self, spikes, labels) -> float:
        """One epoch on the batch: BPTT gradient of the loss, one optimiser update; returns the loss."""
        self._check(spikes, labels)
        return float(self._step(spikes, labels))

    def loss(self, spikes, labels) -> float:
        """The cross-entropy (nats) of the current network on the batch, without updating it."""
        self._check(spikes, labels)
        return float(self._loss(spikes, labels))

    def accuracy(self, spikes, labels) -> float:
        """The fraction of examples whose largest logit is their label."""
        return accuracy(self.net, spikes, labels, self.readout_method)

    def fit(self, spikes, labels, epochs: int = 800, *, log_every: int | None = None) -> np.ndarray:
        """Train for ``epochs`` full-batch steps; return the loss before each update, ``[epochs]``.

        With ``log_every``, print the loss every that many epochs.
        """
        check_positive_int("epochs", epochs)
        if log_every is not None:
            check_positive_int("log_every", log_every)
        self._check(spikes, labels)
        losses = np.empty(epochs)
        for epoch in range(1, epochs + 1):
            losses[epoch - 1] = self._checked(float(self._step(spikes, labels)), epoch)
            if log_every and epoch % log_every == 0:
                print(f"epoch {epoch:4d} | loss {losses[epoch - 1]:.4f}")
        return losses

    def _checked(self, loss: float, epoch: int) -> float:
        """Stop with a clear message when the loss is no longer a finite number."""
        if not np.isfinite(loss):
            raise FloatingPointError(
                f"training diverged: the loss became {loss} at epoch {epoch}; "
                f"lower the learning rate (lr={self.lr!r}) or check the data"
            )
        return loss


def fit(net: SNN, spikes, labels, epochs: int = 800, *, lr: float = 3e-3, log_every: int | None = None):
    """Train ``net`` in place with Adam for ``epochs`` epochs; return the loss history ``[epochs]``."""
    return Trainer(net, lr=lr).fit(spikes, labels, epochs, log_every=log_every)


def accuracy(net: SNN, spikes, labels, readout_method: str = "mean") -> float:
    """Accuracy of ``net`` on a batch, read out with ``readout_method`` (jitted)."""
    if not isinstance(net, SNN):
        raise TypeError(f"net must be a helpers.SNN, got {type(net).__name__}")
    if readout_method not in READOUTS:
        raise ValueError(f"readout_method must be one of {sorted(READOUTS)}, got {readout_method!r}")
    check_spikes(spikes, net.n_inputs)
    check_labels(labels, spikes.shape[1], net.n_outputs)
    per_net = _ACCURACY_FNS.setdefault(net, {})
    if readout_method not in per_net:  # compile once per network and readout

        def correct(spikes, labels):
            logits = readout(net.simulate(spikes), readout_method)
            return u.math.mean(u.math.argmax(logits, axis=1) == labels)

        per_net[readout_method] = brainstate.transform.jit(correct)
    return float(per_net[readout_method](spikes, labels))


_ACCURACY_FNS: weakref.WeakKeyDictionary[SNN, dict] = weakref.WeakKeyDictionary()


@contextlib.contextmanager
def count_compilations() -> Iterator[list[str]]:
    """Collect the names of the XLA programs compiled inside the ``with`` block.

    >>> with count_compilations() as compiled:
    ...     trainer.step(spikes, labels)
    >>> len(compiled)
    """
    compiled: list[str] = []
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
