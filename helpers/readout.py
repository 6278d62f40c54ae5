"""Readouts, the loss and metrics: from readout traces to logits, a loss and scores.

One readout reduction, :func:`readout`, turns the readout traces ``[T, B, C]`` into logits ``[B, C]``
for *both* the loss and the accuracy, so that what we score is what we train. Everything here is a
pure function of arrays; running a network lives in :mod:`helpers.model` and training in
:mod:`helpers.training`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import braintools
import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from helpers.arraytypes import Array
from helpers.validation import check_class_indices, check_one_of, check_positive_int

__all__ = [
    "READOUTS",
    "readout",
    "masked_mean",
    "cross_entropy",
    "accuracy_score",
    "confusion_matrix",
    "LOSSES",
    "SPIKE_LOSSES",
    "MSE_COUNT_RATES",
    "per_step_cross_entropy",
    "count_cross_entropy",
    "mse_count",
    "check_loss",
]

#: How a readout trace ``[T, B, C]`` is reduced over time to logits ``[B, C]``.
READOUTS: dict[str, Callable] = {
    "mean": lambda outputs: u.math.mean(outputs, axis=0),
    "max": lambda outputs: u.math.max(outputs, axis=0),
    "last": lambda outputs: outputs[-1],
}


def readout(outputs: Array, method: str = "mean") -> jax.Array:
    """Reduce readout traces ``[T, B, C]`` over time to logits ``[B, C]`` (``mean``, ``max`` or ``last``)."""
    check_one_of("readout method", method, READOUTS)
    if getattr(outputs, "ndim", None) != 3:
        raise ValueError(f"outputs must have shape [T, B, C], got shape {getattr(outputs, 'shape', None)}")
    return READOUTS[method](outputs)


def masked_mean(values: Array, mask: Array | None = None) -> jax.Array:
    """The mean of ``values [B]`` over the examples where ``mask [B]`` is true (padding weighs nothing;
    an all-false mask gives 0); the plain mean without a mask. The one masked mean of the package."""
    if mask is None:
        return jnp.mean(values)
    weights = mask.astype(values.dtype)
    return jnp.sum(values * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def cross_entropy(logits: Array, labels: Array, mask: Array | None = None) -> jax.Array:
    """Mean softmax cross-entropy of logits ``[B, C]`` against integer labels ``[B]`` (nats), over the
    examples where ``mask [B]`` is true if a mask is given (a padded last minibatch: notebook 9)."""
    return masked_mean(braintools.metric.softmax_cross_entropy_with_integer_labels(logits, labels), mask)


def accuracy_score(predictions: Array, labels: Array) -> float:
    """The fraction of ``predictions [B]`` equal to ``labels [B]``.

    Computed as JAX's mean in the default float type (float32 unless x64 is enabled), so that it is
    the same number, to the last bit, as a mean taken inside a jitted program.
    """
    return float(jnp.mean(jnp.asarray(predictions) == jnp.asarray(labels)))


def confusion_matrix(predictions: Array, labels: Array, n_classes: int) -> np.ndarray:
    """Counts ``[n_classes, n_classes]``: row = true class, column = predicted class."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.shape != labels.shape or predictions.ndim != 1:
        raise ValueError(
            f"predictions and labels must be two [B] arrays of the same shape, got "
            f"{predictions.shape} and {labels.shape}"
        )
    check_positive_int("n_classes", n_classes)
    check_class_indices("predictions", predictions, n_classes)
    check_class_indices("labels", labels, n_classes)
    matrix = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


# -- losses (issue 19): the loss a trainer takes the gradient of, by name ---------------------------------

#: snnTorch's ``mse_count_loss`` target rates in its tutorials 5 and 6: the correct class should fire at
#: 80 % of the steps and every other class at 20 % (``floor(T * rate)`` spikes, as snnTorch rounds)
MSE_COUNT_RATES = (0.8, 0.2)


def per_step_cross_entropy(outputs: Array, labels: Array, mask: Array | None = None) -> jax.Array:
    """The cross-entropy (nats) of the outputs at every step ``[T, B, C]`` against ``labels int [B]``
    (over the examples where ``mask [B]`` is true), averaged over the ``T`` steps. On output spikes
    this is snnTorch's ``ce_rate_loss``: every step's spikes are the logits of that step."""
    return jnp.mean(jax.vmap(lambda out: cross_entropy(out, labels, mask))(u.get_magnitude(outputs)))


def count_cross_entropy(spikes: Array, labels: Array, mask: Array | None = None) -> jax.Array:
    """snnTorch's ``ce_count_loss``: the cross-entropy (nats) of the spike counts ``sum_t spikes[t]``
    ``[B, C]`` taken as logits, against ``labels int [B]`` (over the examples where ``mask`` is true)."""
    return cross_entropy(jnp.sum(u.get_magnitude(spikes), axis=0), labels, mask)


def mse_count(
    spikes: Array, labels: Array, mask: Array | None = None, *, rates: tuple[float, float] = MSE_COUNT_RATES
) -> jax.Array:
    """snnTorch's ``mse_count_loss``: the squared difference between each output's spike count and its
    target, ``floor(T * rates[0])`` spikes for the label's output and ``floor(T * rates[1])`` for the
    others, averaged over the ``C`` outputs and the examples (where ``mask`` is true), divided by ``T``
    (spikes^2 per step)."""
    spikes = u.get_magnitude(spikes)
    n_steps, _, n_classes = spikes.shape
    on, off = (float(math.floor(n_steps * rate)) for rate in rates)
    targets = jnp.where(jax.nn.one_hot(labels, n_classes) > 0, on, off)
    per_example = jnp.mean((jnp.sum(spikes, axis=0) - targets) ** 2, axis=1)
    return masked_mean(per_example, mask) / n_steps


#: the losses by name: ``f(outputs [T, B, C], labels [B], mask [B] | None, readout_method) -> scalar``.
#: ``ce`` and ``per_step_ce`` read a membrane (non-spiking) readout; the others read output spikes.
LOSSES: dict[str, Callable] = {
    "ce": lambda outputs, labels, mask, method: cross_entropy(readout(outputs, method), labels, mask),
    "per_step_ce": lambda outputs, labels, mask, method: per_step_cross_entropy(outputs, labels, mask),
    "ce_rate": lambda outputs, labels, mask, method: per_step_cross_entropy(outputs, labels, mask),
    "ce_count": lambda outputs, labels, mask, method: count_cross_entropy(outputs, labels, mask),
    "mse_count": lambda outputs, labels, mask, method: mse_count(outputs, labels, mask),
}
#: the losses of output spikes (snnTorch's ``ce_rate_loss``, ``ce_count_loss``, ``mse_count_loss``)
SPIKE_LOSSES = ("ce_rate", "ce_count", "mse_count")


def check_loss(loss: str, *, spiking_output: bool, readout_method: str) -> str:
    """Return ``loss`` if it fits the network's output, else raise :class:`ValueError` in one line: a
    membrane readout takes ``ce`` or ``per_step_ce``; output spikes take a loss of
    :data:`SPIKE_LOSSES` and are read as their count (``readout_method='mean'``, the rate)."""
    check_one_of("loss", loss, LOSSES)
    check_one_of("readout_method", readout_method, READOUTS)
    if spiking_output:
        if loss not in SPIKE_LOSSES:
            raise ValueError(
                f"loss={loss!r} reads a membrane readout but the network's output is spikes: "
                f"use one of {list(SPIKE_LOSSES)}"
            )
        if readout_method != "mean":
            raise ValueError(
                f"readout_method={readout_method!r}: output spikes are read as their rate, 'mean' "
                "(the class whose output fires most)"
            )
    elif loss in SPIKE_LOSSES:
        raise ValueError(
            f"loss={loss!r} needs output spikes but the network has a membrane readout: "
            "use 'ce' or 'per_step_ce', or a network with output='spikes'"
        )
    return loss
