import brainstate
import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import helpers


def test_events_stand_for_exactly_the_dense_spikes():
    spikes = helpers.poisson_spikes(60, 16, 30, 40.0 * u.Hz, seed=1)
    events = helpers.spike_events(spikes)
    assert events.shape == (60, 16, 30)
    np.testing.assert_array_equal(events.to_dense(), np.asarray(spikes))
    assert events.example.dtype == jnp.int32 and events.channel.dtype == jnp.int32
    # every event is there once; each step lists its examples in order (padding last)
    assert int((np.asarray(events.channel) < 30).sum()) == int(np.asarray(spikes).sum())
    assert np.all(np.diff(np.asarray(events.example), axis=1) >= 0)
    # floats that are exactly 0/1 give the same events
    as_float = helpers.spike_events(np.asarray(spikes, dtype=np.float32))
    np.testing.assert_array_equal(as_float.channel, events.channel)


def slots_per_step(busiest_step: int) -> int:
    """The padded number of event slots per step for spikes whose busiest step has that many events."""
    spikes = np.zeros((2, 1, 700), bool)
    spikes[0, 0, :busiest_step] = True
    spikes[1, 0, :1] = True
    return helpers.spike_events(spikes).example.shape[1]


def test_steps_are_padded_to_four_lengths_per_octave():
    """So that datasets of similar size and rate share one length, hence one compiled program."""
    assert [slots_per_step(n) for n in (0, 1, 16, 17, 64, 65, 82, 96, 97, 128, 129, 578)] == [
        16, 16, 16, 20, 64, 80, 96, 96, 112, 128, 160, 640
    ]  # fmt: skip


def test_event_input_equals_the_dense_product_with_units():
    rng = np.random.default_rng(0)
    spikes_t = rng.random((8, 12)) < 0.3
    weight = jnp.asarray(rng.normal(size=(12, 5)), jnp.float32) * u.mA
    bias = jnp.asarray(rng.normal(size=5), jnp.float32) * u.mA
    events = helpers.spike_events(spikes_t[None])
    step = jax.tree.map(lambda leaf: leaf[0], events)
    current = helpers.event_input(step, weight, bias)
    expected = u.math.dot(jnp.asarray(spikes_t, jnp.float32), weight) + bias
    assert u.get_unit(current) == u.mA
    np.testing.assert_allclose(u.get_mantissa(current), u.get_mantissa(expected), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("hidden, batch", [(4, 128), pytest.param(32, 300, marks=pytest.mark.slow)])
def test_simulate_on_events_equals_dense_and_so_do_gradients(hidden, batch):
    brainstate.random.seed(3)
    net = helpers.SNN(100, hidden, 2)
    spikes = helpers.poisson_spikes(50, batch, 100, 20.0 * u.Hz, seed=4)
    labels = helpers.random_labels(batch, seed=5)
    events = helpers.spike_events(spikes)
    params = net.states(brainstate.ParamState)

    @brainstate.transform.jit
    def loss_and_grads(data):
        def loss():
            return helpers.cross_entropy(helpers.readout(net.simulate(data)), labels)

        return brainstate.transform.grad(loss, params, return_value=True)()

    np.testing.assert_array_equal(
        brainstate.transform.jit(net.simulate)(events), brainstate.transform.jit(net.simulate)(spikes)
    )
    (dense_grads, dense_loss), (event_grads, event_loss) = loss_and_grads(spikes), loss_and_grads(events)
    assert dense_loss == event_loss
    for dense, event in zip(jax.tree.leaves(dense_grads), jax.tree.leaves(event_grads), strict=True):
        np.testing.assert_allclose(u.get_mantissa(event), u.get_mantissa(dense), rtol=2e-5, atol=1e-7)


@pytest.mark.slow
def test_a_batch_without_a_single_spike():
    net = helpers.SNN(10, 3, 2)
    events = helpers.spike_events(np.zeros((5, 4, 10), bool))
    assert events.example.shape == (5, 16)
    np.testing.assert_array_equal(net.simulate(events), net.simulate(np.zeros((5, 4, 10), bool)))


def test_bad_events_input():
    with pytest.raises(ValueError, match="only 0 and 1"):
        helpers.spike_events(np.full((3, 2, 4), 0.5, np.float32))
    with pytest.raises(ValueError, match=r"shape \[T, B, N\]"):
        helpers.spike_events(np.zeros((3, 4), bool))
    with pytest.raises(TypeError, match="concrete spikes"):
        jax.jit(helpers.spike_events)(jnp.zeros((3, 2, 4), bool))
    events = helpers.spike_events(np.zeros((3, 2, 7), bool))
    with pytest.raises(ValueError, match="expects n_inputs=100"):
        helpers.SNN().simulate(events)
    graded = np.full((3, 2, 100), 0.5, np.float32)
    labels = jnp.zeros(2, jnp.int32)
    with pytest.raises(ValueError, match=r"only 0 and 1.*event_driven=False"):
        helpers.Trainer(helpers.SNN()).loss(graded, labels)
    assert np.isfinite(helpers.Trainer(helpers.SNN(), event_driven=False).loss(graded, labels))
