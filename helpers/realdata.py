"""Real data that ships inside installed packages (no download), and its spike encodings.

Two datasets, both available offline:

- :func:`load_digits`: scikit-learn's bundled handwritten digits, 1797 images of 8x8 pixels with
  integer intensities 0..16, 10 classes. Returned as intensities in [0, 1], ``float32 [N, 64]``.
- :func:`load_mnist1d`: MNIST-1D (Greydanus 2020), 5000 one-dimensional sequences of length 40,
  generated on the spot by the ``mnist1d`` package from its ten templates (no file is read or written).

Both return a :class:`Splits` of fixed, seeded train / validation / test parts. The encodings turn
values into spike trains ``[T, N, F]`` (time, example, feature) for :class:`~helpers.SNN`:

- :func:`rate_code`: each feature fires as a Poisson process at a rate proportional to its value
  (the spikes of ``braintools.PoissonEncoder``, drawn directly: see the function);
- :func:`latency_code`: each feature fires once, earlier the larger it is (``braintools.LatencyEncoder``);
- :func:`level_crossings`: a sequence fires one channel each time it crosses one of a set of levels
  upwards, another when it crosses downwards (send-on-delta; the stack has no encoder for this).
"""

from __future__ import annotations

import functools
import random
import warnings
from typing import NamedTuple

import brainstate
import braintools
import brainunit as u
import jax.numpy as jnp
import numpy as np

from helpers.validation import check_positive_int, check_seed

__all__ = [
    "Splits",
    "load_digits",
    "load_mnist1d",
    "stratified_split",
    "rate_code",
    "latency_code",
    "level_crossings",
    "encode_splits",
    "spike_counts",
]


class Splits(NamedTuple):
    """Fixed train / validation / test parts of a dataset: each a pair ``(x [N, F], y int32 [N])``."""

    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]

    def sizes(self) -> dict[str, int]:
        """The number of examples in each part."""
        return {name: len(part[1]) for name, part in zip(self._fields, self, strict=True)}


def _check_fraction(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"{name} must be a number strictly between 0 and 1, got {value!r}")
    return float(value)


def _check_seed(seed) -> int:
    return check_seed("seed", seed)


def stratified_split(y, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(rest, part)`` that put ``fraction`` of every class of ``y int [N]`` into ``part``.

    Each class contributes ``round(fraction * its count)`` examples, chosen by a permutation seeded
    with ``seed``; both index arrays are sorted, so the parts keep the dataset's order.
    """
    fraction = _check_fraction("fraction", fraction)
    seed = _check_seed(seed)
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must be a 1-D integer array of labels, got dtype {y.dtype}, shape {y.shape}")
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        chosen.append(rng.permutation(members)[: int(round(fraction * len(members)))])
    part = np.sort(np.concatenate(chosen))
    rest = np.setdiff1d(np.arange(len(y)), part)
    return rest, part


def _three_way(x, y, val_fraction: float, test_fraction: float, seed: int) -> Splits:
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            "val_fraction + test_fraction must leave examples to train on, "
            f"got {val_fraction} + {test_fraction}"
        )
    rest, test = stratified_split(y, test_fraction, seed)
    # the validation fraction is of the whole dataset; the test split is drawn first
    train, val = stratified_split(y[rest], val_fraction / (1 - test_fraction), seed + 1)
    train, val = rest[train], rest[val]
    return Splits(*((x[i], y[i]) for i in (train, val, test)))


def load_digits(*, val_fraction: float = 0.15, test_fraction: float = 0.25, seed: int = 0) -> Splits:
    """scikit-learn's bundled 8x8 handwritten digits, split into fixed, stratified parts.

    Returns :class:`Splits` whose ``x`` are pixel intensities scaled to [0, 1] (the raw 0..16 divided
    by 16), ``float32 [N, 64]`` in row-major 8x8 order, and whose ``y`` are the digits, ``int32 [N]``.
    ``test_fraction`` and ``val_fraction`` are fractions of all 1797 images, taken per class (defaults:
    450 test, 269 validation, 1078 training images). The same ``seed`` gives the same split everywhere:
    it depends only on numpy's permutation of integers.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    val_fraction = _check_fraction("val_fraction", val_fraction)
    test_fraction = _check_fraction("test_fraction", test_fraction)
    seed = _check_seed(seed)
    data = sklearn_digits()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int32)
    return _three_way(x, y, val_fraction, test_fraction, seed)


@functools.lru_cache(maxsize=1)
def _mnist1d_raw() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The package's standard MNIST-1D (4000 + 1000 sequences), generated in memory (about 3 s)."""
    from mnist1d.data import get_dataset_args, make_dataset

    # make_dataset seeds the global `random` and `numpy.random` generators (mnist1d.utils.set_seed);
    # put them back so that loading data does not change the reader's other random numbers
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(get_dataset_args())  # generates; never downloads, never writes a file
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    arrays = (data["x"], data["y"], data["x_test"], data["y_test"])
    for a in arrays:
        a.flags.writeable = False  # the cached arrays are shared between calls
    return arrays


def load_mnist1d(*, val_fraction: float = 0.2, seed: int = 0) -> Splits:
    """MNIST-1D: sequences ``float32 [N, 40]`` (standardised to mean 0, sd 1 over the whole dataset),
    labels ``int32 [N]``, 10 classes.

    The test part is the package's own 1000 test sequences, so that accuracies compare with its
    README (logistic regression 32 %, MLP 68 %, GRU 91 %, CNN 94 %). ``val_fraction`` of the package's
    4000 training sequences, taken per class with ``seed``, become the validation part (default: 800;
    3200 remain for training).
    """
    val_fraction = _check_fraction("val_fraction", val_fraction)
    seed = _check_seed(seed)
    x, y, x_test, y_test = _mnist1d_raw()
    x, y = x.astype(np.float32), y.astype(np.int32)
    train, val = stratified_split(y, val_fraction, seed)
    return Splits(
        (x[train], y[train]), (x[val], y[val]), (x_test.astype(np.float32), y_test.astype(np.int32))
    )


def _check_values(x, low: float | None = None, high: float | None = None) -> np.ndarray:
    """``x`` must be a finite float array ``[N, F]``, within [low, high] where given."""
    if isinstance(x, u.Quantity):
        raise TypeError("x must be a plain array of values, got a Quantity")
    x = np.asarray(x)
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(
            f"x must be a float array of shape [N, F] (examples, features), got {x.dtype} {x.shape}"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("x contains NaN or infinite values")
    if low is not None and x.size and (x.min() < low or x.max() > high):
        raise ValueError(f"x must lie in [{low}, {high}], got values from {x.min()} to {x.max()}")
    return x


def _check_dt_in_ms() -> float:
    """The braintools encoders read ``dt``'s mantissa as milliseconds: refuse a ``dt`` in other units."""
    dt = brainstate.environ.get_dt()
    if not isinstance(dt, u.Quantity) or u.get_unit(dt) != u.ms:
        raise ValueError(
            f"the spike encoders need dt in milliseconds (brainstate.environ.set(dt=1.0 * u.ms)), got {dt!r}"
        )
    return float(dt.to_decimal(u.ms))


def rate_code(x, n_steps: int, *, max_rate: u.Quantity = 100.0 * u.Hz, seed: int = 0) -> np.ndarray:
    """Poisson rate code: feature value ``v`` in [0, 1] fires at rate ``v * max_rate`` at every step.

    Returns ``bool [n_steps, N, F]``. ``braintools.PoissonEncoder`` draws a Poisson count of mean
    ``lam = rate * dt`` per step and keeps whether it is positive, so a step holds a spike with
    probability ``1 - exp(-lam)`` (slightly below ``lam``: 0.095 instead of 0.1 at 100 Hz, dt = 1 ms).
    We draw that event directly, one uniform number per step against ``1 - exp(-lam)``: the same
    distribution of spikes, without the encoder's Poisson sampler, whose rejection loop took 9 s of CPU
    (mostly compiling it) for the digits' 2.3 million draws where this takes a fraction of a second.
    The draws come from brainstate's generator, seeded here with ``seed`` (and left seeded so).
    """
    x = _check_values(x, 0.0, 1.0)
    n_steps = check_positive_int("n_steps", n_steps)
    seed = _check_seed(seed)
    if not isinstance(max_rate, u.Quantity) or u.get_dim(max_rate) != u.get_dim(u.Hz):
        raise TypeError(f"max_rate must be a frequency (e.g. 100 * u.Hz), got {max_rate!r}")
    dt_ms = _check_dt_in_ms()
    rate_hz = float(max_rate.to_decimal(u.Hz))
    if not np.isfinite(rate_hz) or rate_hz <= 0:
        raise ValueError(f"max_rate must be positive and finite, got {max_rate}")
    lam = x.astype(np.float64) * rate_hz * dt_ms / 1000.0  # expected spikes per step
    p_spike = (-np.expm1(-lam)).astype(np.float32)  # P(Poisson(lam) > 0)
    brainstate.random.seed(seed)
    return np.asarray(brainstate.random.rand(n_steps, *x.shape)) < p_spike


def latency_code(x, n_steps: int, *, threshold: float = 0.01) -> np.ndarray:
    """Latency code: each feature value ``v`` in [0, 1] fires one spike, at step
    ``round((n_steps - 1) * (1 - v))``: the brightest at step 0, the faintest near the end; values
    below ``threshold`` never fire. Returns ``bool [n_steps, N, F]``; deterministic.

    Uses ``braintools.LatencyEncoder(method="linear", normalize=True, clip=True)``, which computes
    the time in units of ``dt`` (so ``dt`` must be in ms, see :func:`rate_code`) and rounds half to
    even (0.5 of 10 steps fires at step 4, not 5).
    """
    x = _check_values(x, 0.0, 1.0)
    n_steps = check_positive_int("n_steps", n_steps)
    threshold = float(threshold)
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
    dt_ms = _check_dt_in_ms()
    encoder = braintools.LatencyEncoder(method="linear", normalize=True, clip=True, threshold=threshold)
    # with normalize=True the window is n_time (read as ms) long: n_steps steps of dt
    with warnings.catch_warnings():
        # braintools 0.3.0 calls brainstate.functional.one_hot, deprecated in brainstate 0.5.4
        # (DeprecationWarning); the result is the same, and the warning is not the reader's to act on
        warnings.filterwarnings("ignore", message=".*one_hot.*", category=DeprecationWarning)
        spikes = encoder(jnp.asarray(x), n_time=n_steps * dt_ms)
    return np.asarray(spikes).astype(bool)


def level_crossings(x, levels) -> np.ndarray:
    """Level-crossing spikes of sequences ``x [N, T]``: channel ``2k`` fires at step ``t`` when the
    sequence crosses ``levels[k]`` upwards between ``t - 1`` and ``t``, channel ``2k + 1`` when it
    crosses downwards. Returns ``bool [T, N, 2 * len(levels)]``; step 0 never fires.

    A sequence that stays between two levels is silent, so the spikes mark *changes*. An event camera's
    pixel is a delta code instead: it reports only the polarity of a change in log-intensity (up or
    down by a threshold since its last event), not which level was crossed. braintools'
    ``DeltaEncoder`` thresholds the change between neighbouring steps, which misses slow drifts across
    a level and says nothing about the level itself, so we write this one out.
    """
    x = _check_values(x)
    levels = np.asarray(levels, dtype=float)
    if levels.ndim != 1 or levels.size == 0 or not np.all(np.isfinite(levels)):
        raise ValueError(f"levels must be a non-empty 1-D array of finite values, got {levels!r}")
    if np.any(np.diff(levels) <= 0):
        raise ValueError("levels must be strictly increasing")
    above = x[:, :, None] >= levels  # [N, T, L]
    up = np.zeros_like(above)
    down = np.zeros_like(above)
    up[:, 1:] = above[:, 1:] & ~above[:, :-1]
    down[:, 1:] = ~above[:, 1:] & above[:, :-1]
    spikes = np.stack([up, down], axis=-1).reshape(x.shape[0], x.shape[1], 2 * levels.size)
    return np.ascontiguousarray(spikes.transpose(1, 0, 2))


def encode_splits(splits: Splits, encode) -> Splits:
    """Apply ``encode`` (values ``[N, F]`` -> spikes ``[T, N, C]``) to all parts of ``splits`` at once.

    The parts are concatenated, encoded in one call and cut apart again: one compilation of the
    encoder instead of one per part's shape, and one random draw for a random code. Returns
    :class:`Splits` of ``(spikes [T, N, C], labels)``.
    """
    if not isinstance(splits, Splits):
        raise TypeError(f"splits must be a helpers.realdata.Splits, got {type(splits).__name__}")
    if not callable(encode):
        raise TypeError(f"encode must be a function from values [N, F] to spikes [T, N, F], got {encode!r}")
    values = np.concatenate([x for x, _ in splits])
    spikes = np.asarray(encode(values))
    if spikes.ndim != 3 or spikes.shape[1] != values.shape[0]:
        raise ValueError(
            f"encode must return spikes [T, {values.shape[0]}, channels], got shape {spikes.shape}"
        )
    ends = np.cumsum([len(y) for _, y in splits])[:-1]
    parts = np.split(spikes, ends, axis=1)
    return Splits(*((part, y) for part, (_, y) in zip(parts, splits, strict=True)))


def spike_counts(spikes) -> np.ndarray:
    """Spikes per input over time: ``[T, N, F]`` -> ``float32 [N, F]`` (what a rate reader sees)."""
    spikes = np.asarray(spikes)
    if spikes.ndim != 3:
        raise ValueError(f"spikes must have shape [T, N, F], got shape {spikes.shape}")
    return spikes.sum(axis=0, dtype=np.float32)
