"""The synthetic dataset of the original page: Poisson input spikes with random binary labels.

The labels are drawn independently of the spikes, so the task can only be solved by memorising
the training batch: it exercises the training machinery, not generalisation.
"""

from __future__ import annotations

import brainstate
import brainunit as u
import jax.numpy as jnp

from helpers.validation import check_positive_int, check_positive_quantity

__all__ = ["poisson_spikes", "random_labels", "poisson_dataset"]


def _rng(seed) -> brainstate.random.RandomState:
    """Brainstate's global generator for ``None``, a given generator as is, else a fresh seeded one."""
    if seed is None:
        return brainstate.random.DEFAULT
    if isinstance(seed, brainstate.random.RandomState):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, a RandomState or None, got {seed!r}")
    return brainstate.random.RandomState(seed)


def poisson_spikes(
    n_steps: int,
    batch_size: int,
    n_inputs: int,
    rate: u.Quantity,
    *,
    dt: u.Quantity | None = None,
    seed: int | brainstate.random.RandomState | None = None,
):
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
    dt = brainstate.environ.get_dt() if dt is None else check_positive_quantity("dt", dt, u.ms)
    probability = float(rate * dt)
    if probability > 1:
        raise ValueError(
            f"rate * dt must be a probability <= 1, got {rate} * {dt} = {probability:.3g}; "
            "lower the rate or the step"
        )
    return _rng(seed).rand(n_steps, batch_size, n_inputs) < probability


def random_labels(batch_size: int, *, seed: int | brainstate.random.RandomState | None = None):
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
    seed: int | brainstate.random.RandomState | None = None,
):
    """The original page's dataset: ``(spikes bool [T, B, N], labels int32 [B])``.

    Defaults: 100 steps, 128 examples, 100 inputs at 5 Hz. Spikes are drawn before labels from the
    same generator, as on the page, so ``brainstate.random.seed(0)``, building the default
    :class:`~helpers.SNN` and then calling this reproduces the page's data exactly.
    """
    rng = _rng(seed)  # one stream: spikes first, then labels
    spikes = poisson_spikes(n_steps, batch_size, n_inputs, rate, dt=dt, seed=rng)
    return spikes, random_labels(batch_size, seed=rng)
