"""Input checks shared by the helpers: one function per rule, each raising an error that says what was
expected. Every module (and the command line, through :mod:`helpers.cli`) checks with these."""

from __future__ import annotations

from collections.abc import Collection

import brainunit as u
import jax
import numpy as np

__all__ = [
    "check_positive_int",
    "check_non_negative_int",
    "check_seed",
    "check_positive_number",
    "check_positive_quantity",
    "check_non_negative_quantity",
    "check_callable",
    "get_dt",
    "check_rate_per_step",
    "check_one_of",
    "check_instance",
    "check_bool",
    "check_spikes",
    "check_labels",
    "check_class_indices",
]


def _is_tracer(x) -> bool:
    return isinstance(x, jax.core.Tracer)


def _is_integer(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_positive_int(name: str, value) -> int:
    """Return ``value`` as an ``int`` if it is a positive integer (not a bool); else raise
    :class:`TypeError` (not an integer) or :class:`ValueError` (zero or negative)."""
    if not _is_integer(value):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return int(value)


def check_non_negative_int(name: str, value, *, alternatives: str = "") -> int:
    """Return ``value`` as an ``int`` if it is an integer >= 0 (not a bool); else raise
    :class:`ValueError`. ``alternatives`` names other accepted kinds in the message (e.g. for a seed,
    ``"a RandomState or None"``), for callers that handle those before calling."""
    if not _is_integer(value) or value < 0:
        expected = f"a non-negative integer, {alternatives}" if alternatives else "a non-negative integer"
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return int(value)


#: seeds are 32-bit: brainstate (through JAX's PRNG keys) keeps only the low 32 bits of a seed, so 2**32
#: would give the same numbers as 0
SEED_LIMIT = 2**32


def check_seed(name: str, value, *, alternatives: str = "") -> int:
    """Return ``value`` as an ``int`` if it is an integer in ``[0, 2**32)`` (not a bool); else raise
    :class:`ValueError`. Larger seeds are refused rather than wrapped around: brainstate keeps only their
    low 32 bits, so seed ``2**32`` would silently repeat seed 0. ``alternatives`` as for
    :func:`check_non_negative_int`."""
    if not _is_integer(value) or not 0 <= value < SEED_LIMIT:
        expected = "an integer from 0 to 2**32 - 1 = 4294967295"
        expected = f"{expected}, {alternatives}" if alternatives else expected
        raise ValueError(f"{name} must be {expected} (seeds are 32-bit), got {value!r}")
    return int(value)


#: the widths of a quantised weight, in bits (:mod:`helpers.quantise`): 2 bits are -1, 0, 1; 16 is int16
BITS_RANGE = (2, 16)


def check_bits(name: str, value) -> int:
    """Return ``value`` as an ``int`` if it is an integer from 2 to 16 (the bits of a quantised weight,
    :data:`BITS_RANGE`); else raise :class:`ValueError`."""
    low, high = BITS_RANGE
    if not _is_integer(value) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")
    return int(value)


def check_positive_number(name: str, value) -> float:
    """Return ``value`` as a ``float`` if it is a positive, finite real number (not a bool, not a
    quantity); else raise :class:`ValueError`."""
    is_real = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )
    if not (is_real and np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive, finite number, got {value!r}")
    return float(value)


def check_positive_quantity(name: str, value, unit: u.Unit):
    """Return ``value`` if it is a positive, finite scalar with the physical dimension of ``unit``;
    else raise :class:`TypeError` (no quantity, other dimension) or :class:`ValueError`."""
    if not isinstance(value, u.Quantity) or u.get_dim(value) != u.get_dim(unit):
        raise TypeError(
            f"{name} must be a quantity with units of {unit.dim} (e.g. 10 * u.{unit}), got {value!r}"
        )
    magnitude = np.asarray(value.to_decimal(unit))
    if magnitude.ndim != 0 or not np.isfinite(magnitude) or magnitude <= 0:
        raise ValueError(f"{name} must be a positive, finite scalar, got {value}")
    return value


def check_non_negative_quantity(name: str, value, unit: u.Unit):
    """Like :func:`check_positive_quantity`, but zero is accepted (e.g. a jitter of 0 ms)."""
    if not isinstance(value, u.Quantity) or u.get_dim(value) != u.get_dim(unit):
        raise TypeError(
            f"{name} must be a quantity with units of {unit.dim} (e.g. 3 * u.{unit}), got {value!r}"
        )
    magnitude = np.asarray(value.to_decimal(unit))
    if magnitude.ndim != 0 or not np.isfinite(magnitude) or magnitude < 0:
        raise ValueError(f"{name} must be a non-negative, finite scalar, got {value}")
    return value


def get_dt() -> u.Quantity:
    """The integration step ``dt`` set with ``brainstate.environ.set(dt=...)``; if none is set, raise
    :class:`RuntimeError` saying how to set it (instead of brainstate's ``KeyError``)."""
    import brainstate

    try:
        return brainstate.environ.get_dt()
    except KeyError:
        raise RuntimeError(
            "the time step dt is not set: call brainstate.environ.set(dt=1.0 * u.ms) first "
            "(with import brainstate, brainunit as u; every notebook does so in its first cell)"
        ) from None


def check_rate_per_step(name: str, rate: u.Quantity, dt: u.Quantity) -> float:
    """Return the probability ``rate * dt`` of a spike in one step; raise :class:`ValueError` if it
    exceeds 1 (``rate`` is a frequency, ``dt`` a time; both already checked as positive quantities)."""
    probability = float(rate * dt)
    if probability > 1:
        raise ValueError(
            f"{name} * dt must be a probability <= 1, got {rate} * {dt} = {probability:.3g}; "
            "lower the rate or the step"
        )
    return probability


def check_one_of(name: str, value, choices: Collection[str]) -> str:
    """Return ``value`` if it is one of ``choices`` (e.g. the readout names); else raise
    :class:`ValueError` listing them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value


def check_instance(name: str, value, cls: type, description: str):
    """Return ``value`` if it is an instance of ``cls``; else raise :class:`TypeError` saying that
    ``name`` must be ``description`` (e.g. ``"a helpers.SNN"``)."""
    if not isinstance(value, cls):
        raise TypeError(f"{name} must be {description}, got {type(value).__name__}")
    return value


def check_callable(name: str, value, description: str):
    """Return ``value`` if it can be called; else raise :class:`TypeError` saying that ``name`` must be
    ``description`` (e.g. ``"a function or a braintools.surrogate.Surrogate"``)."""
    if not callable(value):
        raise TypeError(f"{name} must be {description}, got {type(value).__name__} {value!r}")
    return value


def check_bool(name: str, value) -> bool:
    """Return ``value`` if it is ``True`` or ``False``; else raise :class:`TypeError`."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def check_spikes(spikes, n_inputs: int | None = None) -> None:
    """Spikes must be a ``[T, B, n_inputs]`` array of bool or float 0/1 values, all finite.

    Float values in between (graded input) pass here, for the dense input product; the event-driven
    input refuses them (:func:`helpers.spike_events`). Values below 0 or above 1 are refused.

    With ``n_inputs=None`` any number of input channels ``N`` is accepted.
    """
    width = "N" if n_inputs is None else n_inputs
    if isinstance(spikes, u.Quantity):
        raise TypeError("spikes must be a plain (unitless) array of 0/1 values, got a Quantity")
    shape = getattr(spikes, "shape", None)
    dtype = getattr(spikes, "dtype", None)
    if shape is None or dtype is None:
        raise TypeError(f"spikes must be an array of shape [T, B, {width}], got {type(spikes).__name__}")
    if len(shape) != 3:
        raise ValueError(
            f"spikes must have shape [T, B, {width}] (time, batch, inputs), got shape {tuple(shape)}"
        )
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"spikes must have at least one time step and one example, got shape {tuple(shape)}")
    if n_inputs is not None and shape[2] != n_inputs:
        raise ValueError(
            f"spikes have {shape[2]} input channels but the network expects n_inputs={n_inputs} "
            f"(shape [T, B, {n_inputs}]), got shape {tuple(shape)}"
        )
    if not (np.issubdtype(dtype, np.bool_) or np.issubdtype(dtype, np.floating)):
        raise TypeError(f"spikes must be bool or floating point (0/1 values), got dtype {dtype}")
    if np.issubdtype(dtype, np.floating) and not _is_tracer(spikes):
        values = np.asarray(spikes)
        if not bool(np.all(np.isfinite(values))):
            raise ValueError("spikes contain NaN or infinite values; expected only 0 and 1")
        if values.size and not (values.min() >= 0 and values.max() <= 1):
            raise ValueError(
                f"spikes must lie in [0, 1] (0/1 spikes; graded input only with "
                f"Trainer(..., event_driven=False)), got values from {values.min():g} to {values.max():g}"
            )


def check_class_indices(name: str, values, n_classes: int) -> None:
    """Concrete class indices must lie in ``[0, n_classes)``; traced ones are not checked."""
    if _is_tracer(values):
        return
    values = np.asarray(values)
    if values.size and (values.min() < 0 or values.max() >= n_classes):
        raise ValueError(
            f"{name} must lie in [0, {n_classes - 1}] for {n_classes} classes, "
            f"got values from {values.min()} to {values.max()}"
        )


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
    check_class_indices("labels", labels, n_classes)
