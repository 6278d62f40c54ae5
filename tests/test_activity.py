"""helpers.activity: firing rates, silent and saturated neurons, SynOps, dense MACs, the rate penalty."""

import brainstate
import brainunit as u
import jax.numpy as jnp
import numpy as np
import pytest

import helpers
from helpers import activity as A


def test_firing_rates_are_spikes_per_second_averaged_over_examples():
    counts = np.array([[0, 2, 20], [0, 4, 20]])
    rates = A.firing_rates(counts, 20 * u.ms)
    np.testing.assert_allclose(rates.to_decimal(u.Hz), [0.0, 150.0, 1000.0])
    with pytest.raises(TypeError, match="time"):
        A.firing_rates(counts, 20)
    with pytest.raises(ValueError, match="positive"):
        A.firing_rates(counts, 0 * u.ms)


def test_silent_and_saturated_neurons():
    counts = np.array([[0, 1, 10, 6], [0, 0, 9, 3]])
    silent, saturated = A.silent_and_saturated(counts, 10)
    assert silent.tolist() == [True, False, False, False]
    assert saturated.tolist() == [False, False, True, False]  # mean 9.5 of 10 steps; 4.5 is below half
    assert A.silent_and_saturated(counts, 10, saturation=0.4)[1].tolist() == [False, False, True, True]
    with pytest.raises(ValueError, match="exceed n_steps"):
        A.silent_and_saturated(counts, 5)
    with pytest.raises(ValueError, match="saturation"):
        A.silent_and_saturated(counts, 10, saturation=0)


def test_synaptic_operations_are_spikes_times_fan_out():
    inputs = np.array([[3, 1], [0, 0]])  # 4 and 0 input spikes
    hidden = np.array([[1, 1, 0], [2, 0, 0]])  # 2 and 2 hidden spikes
    ops = A.synaptic_operations({"input": inputs, "hidden": hidden}, {"input": 3, "hidden": 10})
    assert ops["input"].tolist() == [12, 0] and ops["hidden"].tolist() == [20, 20]
    assert ops["total"].tolist() == [32, 20]
    with pytest.raises(ValueError, match="same layers"):
        A.synaptic_operations({"input": inputs}, {"hidden": 3})
    with pytest.raises(ValueError, match="same examples"):
        A.synaptic_operations({"input": inputs, "hidden": hidden[:1]}, {"input": 3, "hidden": 10})
    with pytest.raises(ValueError, match="non-negative"):
        A.synaptic_operations({"input": -inputs}, {"input": 3})


def test_dense_macs():
    assert A.dense_macs([64, 256, 10]) == 64 * 256 + 256 * 10
    assert A.dense_macs([64, 256, 10], n_steps=20) == 20 * (64 * 256 + 256 * 10)
    with pytest.raises(ValueError, match="at least"):
        A.dense_macs([64])


def test_counts_must_be_two_dimensional_and_non_negative():
    with pytest.raises(ValueError, match=r"\[N, n\]"):
        A.firing_rates(np.zeros(3), 1 * u.ms)
    with pytest.raises(ValueError, match="non-negative"):
        A.silent_and_saturated(np.array([[np.nan]]), 3)
    with pytest.raises(TypeError, match="numbers"):
        A.silent_and_saturated(np.array([["a"]]), 3)


def test_rate_penalty_is_the_mean_spike_count_per_neuron_over_real_examples():
    hidden = jnp.zeros((5, 3, 4)).at[:, 0, :2].set(1.0).at[:, 2].set(1.0)  # [T, B, n]
    mask = jnp.array([True, True, False])
    penalty = A.rate_penalty(0.5)
    # example 0: 10 spikes over 4 neurons = 2.5; example 1: 0; example 2 is padding
    np.testing.assert_allclose(penalty(hidden, mask), 0.5 * (2.5 + 0) / 2)
    with pytest.raises(ValueError, match="non-negative"):
        A.rate_penalty(-1)


@pytest.mark.slow
def test_the_penalty_lowers_the_hidden_activity_in_training():
    brainstate.environ.set(dt=1.0 * u.ms)
    x = jnp.asarray(np.random.default_rng(0).random((20, 64, 16)) < 0.1)
    y = jnp.asarray(np.arange(64) % 2, dtype=jnp.int32)
    counts = {}
    for strength in (0.0, 1.0):
        brainstate.random.seed(0)
        trainer = helpers.MinibatchTrainer(
            helpers.SNN(16, 32, 2, input_scale=10.0), lr=1e-2, regularizer=A.rate_penalty(strength)
        )
        trainer.fit((x, y), 10, 32)
        counts[strength] = trainer.evaluate((x, y))["hidden_counts"].sum()
    assert counts[0.0] > 0
    assert counts[1.0] < 0.5 * counts[0.0]
