"""Breakages the suite must catch on any machine, each introduced on purpose and shown to be caught.

- A stored output edited so that it no longer matches what the code computes (an accuracy moved by
  0.3): ``test_nbval_numbers.py`` runs nbval on such a notebook and sees the cell fail.
- A `.md` twin edited without re-pairing: ``test_notebooks.py`` (the pairing check on an edited copy).
- A surrogate whose gradient is zero, and an optimiser that never updates: below. Both leave the loss
  where it started, so the learning floor that the training tests and notebook 4 assert (the loss of
  a learnable task falls below 0.3 nats from ln 2) fails, whatever the CPU's rounding.
"""

import brainstate
import braintools
import jax.numpy as jnp
import numpy as np
import pytest

import helpers

LEARNED = 0.3  # nats: the floor of test_training.py's learning test, from ln 2 = 0.693


def train_learnable_task(epochs: int = 300) -> np.ndarray:
    """The learning test's task: 32 examples, 50 steps, lr 1e-2; returns the loss history."""
    brainstate.random.seed(0)
    spikes, labels = helpers.poisson_dataset(n_steps=50, batch_size=32, seed=2)
    return helpers.fit(helpers.SNN(), spikes, labels, epochs=epochs, lr=1e-2)


@pytest.mark.slow
def test_the_intact_stack_clears_the_learning_floor():
    assert train_learnable_task()[-1] < LEARNED


@pytest.mark.slow
def test_a_surrogate_with_zero_gradient_is_caught(monkeypatch):
    monkeypatch.setattr(braintools.surrogate.ReluGrad, "surrogate_grad", lambda self, x: jnp.zeros_like(x))
    losses = train_learnable_task()
    assert losses[-1] > 0.6  # only the readout bias can learn: the learning floor fails


def test_an_optimiser_that_never_updates_is_caught(monkeypatch):
    monkeypatch.setattr(braintools.optim.Adam, "update", lambda self, grads, **kwargs: None)
    losses = train_learnable_task(epochs=50)
    assert losses[-1] == pytest.approx(losses[0]) and losses[-1] > LEARNED
