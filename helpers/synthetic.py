"""The synthetic dataset of the original page: Poisson input spikes with random binary labels.

The labels are drawn independently of the spikes, so the task can only be solved by memorising
the training batch: it exercises the training machinery, not generalisation.
"""

from __future__ import annotations

import hashlib
from typing import TypeAlias

import brainstate
import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from helpers.arraytypes import Array
from helpers.validation import (
    check_non_negative_quantity,
    check_positive_int,
    check_positive_quantity,
    check_rate_per_step,
    check_seed,
    get_dt,
)

Seed: TypeAlias = "int | brainstate.random.RandomState | None"

__all__ = [
    "poisson_spikes",
    "random_labels",
    "poisson_dataset",
    "pattern_dataset",
    "timing_dataset",
    "split_batch",
    "dataset_fingerprint",
]


def _rng(seed: Seed) -> brainstate.random.RandomState:
    """Brainstate's global generator for ``None``, a given generator as is, else a fresh seeded one."""
    if seed is None:
        return brainstate.random.DEFAULT
    if isinstance(seed, brainstate.random.RandomState):
        return seed
    return brainstate.random.RandomState(check_seed("seed", seed, alternatives="a RandomState or None"))


def _step(dt: u.Quantity | None) -> u.Quantity:
    """The step length: ``dt`` if given (checked), else ``brainstate.environ.get_dt()``."""
    return get_dt() if dt is None else check_positive_quantity("dt", dt, u.ms)


def poisson_spikes(
    n_steps: int,
    batch_size: int,
    n_inputs: int,
    rate: u.Quantity,
    *,
    dt: u.Quantity | None = None,
    seed: Seed = None,
) -> jax.Array:
    """Independent Poisson (Bernoulli-per-step) spike trains, ``bool [n_steps, batch_size, n_inputs]``.

    Each input spikes in each step of length ``dt`` with probability ``rate * dt``.

    Parameters
    ----------
    n_steps, batch_size, n_inputs
        Array sizes (positive integers).
    rate
        Firing rate of every input (frequency, e.g. ``5 * u.Hz``); ``rate * dt`` must be <= 1.
    dt
        Step length (time); defaults to ``brainstate.environ.get_dt()``.
    seed
        A non-negative integer seeds a private generator; a ``brainstate.random.RandomState`` is
        drawn from as is; ``None`` draws from brainstate's global generator (set with
        ``brainstate.random.seed``).
    """
    for name, value in (("n_steps", n_steps), ("batch_size", batch_size), ("n_inputs", n_inputs)):
        check_positive_int(name, value)
    check_positive_quantity("rate", rate, u.Hz)
    probability = check_rate_per_step("rate", rate, _step(dt))
    return _rng(seed).rand(n_steps, batch_size, n_inputs) < probability


def random_labels(batch_size: int, *, seed: Seed = None) -> jax.Array:
    """Random binary labels, ``int32 [batch_size]``, each class with probability 1/2."""
    check_positive_int("batch_size", batch_size)
    return jnp.asarray(_rng(seed).rand(batch_size) < 0.5, dtype=jnp.int32)


def poisson_dataset(
    n_steps: int = 100,
    batch_size: int = 128,
    n_inputs: int = 100,
    rate: u.Quantity = 5.0 * u.Hz,
    *,
    dt: u.Quantity | None = None,
    seed: Seed = None,
) -> tuple[jax.Array, jax.Array]:
    """The original page's dataset: ``(spikes bool [T, B, N], labels int32 [B])``.

    Defaults: 100 steps, 128 examples, 100 inputs at 5 Hz. Spikes are drawn before labels from the
    same generator, as on the page, so ``brainstate.random.seed(0)``, building the default
    :class:`~helpers.SNN` and then calling this reproduces the page's data exactly.
    """
    rng = _rng(seed)  # one stream: spikes first, then labels
    spikes = poisson_spikes(n_steps, batch_size, n_inputs, rate, dt=dt, seed=rng)
    return spikes, random_labels(batch_size, seed=rng)


def pattern_dataset(
    n_examples: int,
    n_classes: int = 4,
    n_steps: int = 100,
    n_inputs: int = 100,
    *,
    background_rate: u.Quantity = 10.0 * u.Hz,
    pattern_fraction: float = 0.2,
    jitter: u.Quantity = 3.0 * u.ms,
    drop_probability: float = 0.1,
    dt: u.Quantity | None = None,
    seed: int = 0,
) -> tuple[jax.Array, jax.Array]:
    """A learnable spike task: class-specific spike patterns hidden in Poisson noise.

    Each class owns a random *template*: a ``pattern_fraction`` share of the inputs, each with one
    spike at a random time. An example of class ``c`` is Poisson background noise at
    ``background_rate`` on every input, plus class ``c``'s template with every spike shifted by a
    uniform jitter of up to ``jitter`` and dropped with probability ``drop_probability``. The classes
    are balanced (in shuffled order). Everything is drawn from one NumPy generator seeded with
    ``seed``, so the same seed gives the same templates and examples; split one call into
    train/validation/test sets with :func:`split_batch` so that they share the templates.

    Returns ``(spikes bool [n_steps, n_examples, n_inputs], labels int32 [n_examples])``.
    """
    for name, value in (
        ("n_examples", n_examples), ("n_classes", n_classes), ("n_steps", n_steps), ("n_inputs", n_inputs)
    ):  # fmt: skip
        check_positive_int(name, value)
    if n_classes < 2:
        raise ValueError(f"n_classes must be at least 2, got {n_classes}")
    check_positive_quantity("background_rate", background_rate, u.Hz)
    if not 0 < pattern_fraction <= 1:
        raise ValueError(f"pattern_fraction must be in (0, 1], got {pattern_fraction}")
    if not 0 <= drop_probability < 1:
        raise ValueError(f"drop_probability must be in [0, 1), got {drop_probability}")
    check_non_negative_quantity("jitter", jitter, u.ms)
    check_seed("seed", seed)
    dt = _step(dt)
    probability = check_rate_per_step("background_rate", background_rate, dt)
    jitter_steps = int(round(float(jitter / dt)))

    rng = np.random.default_rng(seed)
    in_template = rng.random((n_classes, n_inputs)) < pattern_fraction
    template_time = rng.integers(0, n_steps, (n_classes, n_inputs))
    labels = rng.permutation(np.arange(n_examples) % n_classes)
    spikes = rng.random((n_steps, n_examples, n_inputs)) < probability
    times = template_time[labels] + rng.integers(-jitter_steps, jitter_steps + 1, (n_examples, n_inputs))
    kept = in_template[labels] & (rng.random((n_examples, n_inputs)) >= drop_probability)
    kept &= (times >= 0) & (times < n_steps)
    example, channel = np.nonzero(kept)
    spikes[times[example, channel], example, channel] = True
    return jnp.asarray(spikes), jnp.asarray(labels, dtype=jnp.int32)


def split_batch(spikes: Array, labels: Array, *sizes: int) -> list[tuple[Array, Array]]:
    """Split ``spikes [T, B, N]`` and ``labels [B]`` along the batch into consecutive parts.

    ``split_batch(x, y, 256, 128, 256)`` returns ``[(x0, y0), (x1, y1), (x2, y2)]``; the sizes must
    add up to ``B``.
    """
    if not sizes:
        raise ValueError("give the size of every part, e.g. split_batch(x, y, 256, 128, 256)")
    for size in sizes:
        check_positive_int("every size", size)
    batch = spikes.shape[1]
    if labels.shape != (batch,):
        raise ValueError(f"labels must have shape [{batch}] to match the spikes, got {tuple(labels.shape)}")
    if sum(sizes) != batch:
        raise ValueError(f"the sizes {sizes} add up to {sum(sizes)}, but the batch holds {batch} examples")
    bounds = np.cumsum((0,) + sizes)
    return [(spikes[:, a:b], labels[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def dataset_fingerprint(spikes, labels) -> str:
    """One line that identifies a dataset: its sizes, spike and label counts, and a hash of both arrays.

    Random bits and comparisons are exact on every machine, so the same seed prints the same line
    everywhere; notebooks print it so that a reader (and a test) can see that two notebooks use the
    very same data. ``spikes`` are 0/1 ``[T, B, N]``, ``labels`` integer ``[B]``.
    """
    spikes, labels = np.asarray(spikes), np.asarray(labels)
    if spikes.ndim != 3 or labels.shape != (spikes.shape[1],):
        raise ValueError(
            f"expected spikes [T, B, N] and labels [B], got shapes {spikes.shape} and {labels.shape}"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
    digest = hashlib.sha1(spikes.astype(bool).tobytes() + labels.astype(np.int64).tobytes()).hexdigest()
    classes = "/".join(str(n) for n in np.bincount(labels.astype(np.int64)))
    n_steps, batch, n_inputs = spikes.shape
    return (
        f"dataset: {batch} examples of {n_steps} steps x {n_inputs} inputs, "
        f"{int(spikes.astype(bool).sum())} input spikes, examples per class {classes}, sha1 {digest[:10]}"
    )


def timing_dataset(
    n_examples: int,
    n_classes: int = 4,
    n_steps: int = 100,
    n_inputs: int = 50,
    *,
    background_rate: u.Quantity = 10.0 * u.Hz,
    jitter: u.Quantity = 4.0 * u.ms,
    dt: u.Quantity | None = None,
    seed: int = 0,
):
    """A spike task that only timing can solve: the classes differ in *when* each input fires, nothing else.

    One set of ``n_inputs`` spike times is drawn once; every class's *template* gives each input one
    of those times, in its own random order (a permutation of the same set). An example of class ``c``
    has, on every input, exactly one template spike at that input's time in class ``c``'s template,
    shifted by a uniform jitter of up to ``jitter``, plus Poisson background noise at
    ``background_rate`` on every input. So every class uses every input, every input fires the same
    number of times in every class (one template spike plus the same noise), and even the total
    activity over time is the same set of times: a classifier of spike *counts* per input is at
    chance, while a network that reads which inputs fire together can classify. Template times keep
    ``jitter`` away from both ends, so no jittered spike falls outside the example. The classes are
    balanced, in shuffled order; everything is drawn from one NumPy generator seeded with ``seed``.
    Split one call into train/validation/test sets with :func:`split_batch`.

    Returns ``(spikes bool [n_steps, n_examples, n_inputs], labels int32 [n_examples])``.
    """
    for name, value in (("n_examples", n_examples), ("n_classes", n_classes), ("n_steps", n_steps)):
        check_positive_int(name, value)
    check_positive_int("n_inputs", n_inputs)
    if n_classes < 2:
        raise ValueError(f"n_classes must be at least 2, got {n_classes}")
    check_positive_quantity("background_rate", background_rate, u.Hz)
    check_non_negative_quantity("jitter", jitter, u.ms)
    check_seed("seed", seed)
    dt = _step(dt)
    probability = check_rate_per_step("background_rate", background_rate, dt)
    jitter_steps = int(round(float(jitter / dt)))
    if n_steps <= 2 * jitter_steps:
        raise ValueError(
            f"n_steps={n_steps} leaves no room for template times {jitter_steps} steps from both ends"
        )

    rng = np.random.default_rng(seed)
    times = rng.integers(jitter_steps, n_steps - jitter_steps, n_inputs)  # one shared set of spike times
    template = np.stack([rng.permutation(times) for _ in range(n_classes)])  # [n_classes, n_inputs]
    labels = rng.permutation(np.arange(n_examples) % n_classes)
    spikes = rng.random((n_steps, n_examples, n_inputs)) < probability
    when = template[labels] + rng.integers(-jitter_steps, jitter_steps + 1, (n_examples, n_inputs))
    example, channel = np.meshgrid(np.arange(n_examples), np.arange(n_inputs), indexing="ij")
    spikes[when, example, channel] = True
    return jnp.asarray(spikes), jnp.asarray(labels, dtype=jnp.int32)
