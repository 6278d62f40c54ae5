"""Readouts, the loss and metrics: from readout traces to logits, a loss and scores.

One readout reduction, :func:`readout`, turns the readout traces ``[T, B, C]`` into logits ``[B, C]``
for *both* the loss and the accuracy, so that what we score is what we train. Everything here is a
pure function of arrays; running a network lives in :mod:`helpers.model` and training in
:mod:`helpers.training`.
"""

from __future__ import annotations

from collections.abc import Callable

import braintools
import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from helpers.arraytypes import Array
from helpers.validation import check_class_indices, check_one_of, check_positive_int

__all__ = ["READOUTS", "readout", "masked_mean", "cross_entropy", "accuracy_score", "confusion_matrix"]

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
