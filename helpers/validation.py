"""Input checks shared by the helpers: clear errors that say what was expected."""

from __future__ import annotations

import brainunit as u
import jax
import numpy as np

__all__ = ["check_positive_int", "check_positive_quantity", "check_spikes", "check_labels"]


def _is_tracer(x) -> bool:
    return isinstance(x, jax.core.Tracer)


def check_positive_int(name: str, value) -> int:
    """Return ``value`` if it is a positive integer (not a bool), else raise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return int(value)


def check_positive_quantity(name: str, value, unit: u.Unit):
    """Raise unless ``value`` is a positive scalar with the same physical dimension as ``unit``."""
    if not isinstance(value, u.Quantity) or u.get_dim(value) != u.get_dim(unit):
        raise TypeError(
            f"{name} must be a quantity with units of {unit.dim} (e.g. 10 * u.{unit}), got {value!r}"
        )
    magnitude = np.asarray(value.to_decimal(unit))
    if magnitude.ndim != 0 or not np.isfinite(magnitude) or magnitude <= 0:
        raise ValueError(f"{name} must be a positive, finite scalar, got {value}")
    return value


def check_spikes(spikes, n_inputs: int) -> None:
    """Spikes must be a ``[T, B, n_inputs]`` array of bool or float 0/1 values, all finite."""
    if isinstance(spikes, u.Quantity):
        raise TypeError("spikes must be a plain (unitless) array of 0/1 values, got a Quantity")
    shape = getattr(spikes, "shape", None)
    dtype = getattr(spikes, "dtype", None)
    if shape is None or dtype is None:
        raise TypeError(f"spikes must be an array of shape [T, B, {n_inputs}], got {type(spikes).__name__}")
    if len(shape) != 3:
        raise ValueError(
            f"spikes must have shape [T, B, {n_inputs}] (time, batch, inputs), got shape {tuple(shape)}"
        )
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"spikes must have at least one time step and one example, got shape {tuple(shape)}")
    if shape[2] != n_inputs:
        raise ValueError(
            f"spikes have {shape[2]} input channels but the network expects n_inputs={n_inputs} "
            f"(shape [T, B, {n_inputs}]), got shape {tuple(shape)}"
        )
    if not (np.issubdtype(dtype, np.bool_) or np.issubdtype(dtype, np.floating)):
        raise TypeError(f"spikes must be bool or floating point (0/1 values), got dtype {dtype}")
    if np.issubdtype(dtype, np.floating) and not _is_tracer(spikes):
        if not bool(np.all(np.isfinite(np.asarray(spikes)))):
            raise ValueError("spikes contain NaN or infinite values; expected only 0 and 1")


def check_labels(labels, batch_size: int, n_classes: int) -> None:
    """Labels must be ``[batch_size]`` integers in ``[0, n_classes)``."""
    shape = getattr(labels, "shape", None)
    dtype = getattr(labels, "dtype", None)
    if shape is None or dtype is None:
        raise TypeError(
            f"labels must be an integer array of shape [{batch_size}], got {type(labels).__name__}"
        )
    if not np.issubdtype(dtype, np.integer):
        raise TypeError(f"labels must be integers (class indices), got dtype {dtype}")
    if len(shape) != 1:
        raise ValueError(
            f"labels must have shape [B] (one class index per example), got shape {tuple(shape)}"
        )
    if shape[0] != batch_size:
        raise ValueError(f"batch mismatch: spikes hold {batch_size} examples but labels hold {shape[0]}")
    if not _is_tracer(labels):
        values = np.asarray(labels)
        if values.size and (values.min() < 0 or values.max() >= n_classes):
            raise ValueError(
                f"labels must lie in [0, {n_classes - 1}] for {n_classes} classes, "
                f"got values from {values.min()} to {values.max()}"
            )
