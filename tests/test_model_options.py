"""The SNN's recurrent option and its trainable membrane time constants."""

import brainstate
import brainunit as u
import jax.numpy as jnp
import numpy as np
import pytest

import helpers


def grads_of_output(net, spikes):
    params = net.states(brainstate.ParamState)
    return brainstate.transform.grad(lambda: u.get_magnitude(net.simulate(spikes)).sum(), params)()


def test_a_plain_network_is_unchanged_by_the_options(small_batch):
    spikes, _ = small_batch
    brainstate.random.seed(3)
    plain = helpers.SNN()
    brainstate.random.seed(3)
    explicit = helpers.SNN(recurrent=False, train_tau_mem=False)
    np.testing.assert_array_equal(plain.simulate(spikes), explicit.simulate(spikes))
    assert "recurrent" not in plain.config and "train_tau_mem" not in plain.config
    assert set(plain.states(brainstate.ParamState)) == {
        ("input_layer", "weight"),
        ("readout_layer", "weight"),
    }


@pytest.mark.slow
def test_recurrent_weights_feed_back_last_steps_spikes(small_batch):
    spikes, _ = small_batch
    brainstate.random.seed(0)
    net = helpers.SNN(100, 16, 2, recurrent=True)
    assert net.config["recurrent"] is True
    weight = net.recurrent_layer.weight.value["weight"]
    assert (
        weight.shape == (16, 16)
        and u.get_unit(weight) == u.mA
        and "bias" not in net.recurrent_layer.weight.value
    )
    hidden = net.record(spikes)["spikes"]
    assert float(np.asarray(hidden).sum()) > 0, "the test needs hidden spikes"
    with_feedback = np.asarray(net.simulate(spikes))
    net.recurrent_layer.weight.value = {"weight": weight * 0}
    feed_forward = helpers.SNN(100, 16, 2)
    for layer in ("input_layer", "readout_layer"):  # the same weights, without the recurrent ones
        getattr(feed_forward, layer).weight.value = getattr(net, layer).weight.value
    np.testing.assert_allclose(
        np.asarray(net.simulate(spikes)), np.asarray(feed_forward.simulate(spikes)), rtol=1e-6
    )
    assert not np.allclose(with_feedback, np.asarray(feed_forward.simulate(spikes)))


@pytest.mark.slow
def test_recurrent_weights_get_a_gradient(small_batch):
    spikes, _ = small_batch
    brainstate.random.seed(0)
    net = helpers.SNN(100, 16, 2, recurrent=True)
    grads = grads_of_output(net, spikes)
    assert float(jnp.abs(u.get_magnitude(grads[("recurrent_layer", "weight")]["weight"])).sum()) > 0


@pytest.mark.slow
def test_trainable_time_constants_start_at_tau_mem_and_get_a_gradient(small_batch):
    spikes, _ = small_batch
    brainstate.random.seed(0)
    net = helpers.SNN(100, 16, 2, tau_mem=15 * u.ms, train_tau_mem=True)
    assert isinstance(net.neurons, helpers.model.TrainableTauLIF) and net.config["train_tau_mem"] is True
    np.testing.assert_allclose(net.neurons.tau.to_decimal(u.ms), np.full(16, 15.0), rtol=1e-6)
    brainstate.random.seed(0)
    fixed = helpers.SNN(100, 16, 2, tau_mem=15 * u.ms)
    np.testing.assert_allclose(
        np.asarray(net.simulate(spikes)), np.asarray(fixed.simulate(spikes)), rtol=1e-5
    )
    grads = grads_of_output(net, spikes)
    g = np.asarray(grads[("neurons", "log_tau")])
    assert g.shape == (16,) and np.any(g != 0)
    # tau dV/dt = -V + R I: a shorter time constant follows the same current faster, so it fires more
    net.neurons.log_tau.value = jnp.full(16, jnp.log(5.0))
    assert np.asarray(net.record(spikes)["spikes"]).sum() > np.asarray(fixed.record(spikes)["spikes"]).sum()


@pytest.mark.slow
def test_both_options_train_with_the_minibatch_trainer():
    brainstate.random.seed(0)
    x = jnp.asarray(np.random.default_rng(0).random((10, 40, 8)) < 0.2)
    y = jnp.asarray(np.arange(40) % 2, dtype=jnp.int32)
    net = helpers.SNN(8, 8, 2, recurrent=True, train_tau_mem=True)
    trainer = helpers.MinibatchTrainer(net, lr=1e-2)
    before = trainer.weights()
    trainer.fit((x, y), 2, 16)
    after = trainer.weights()
    assert not np.allclose(
        np.asarray(before[("neurons", "log_tau")]), np.asarray(after[("neurons", "log_tau")])
    )
    trainer.reinitialize(0)  # builds an identical network with the same options
    np.testing.assert_array_equal(
        np.asarray(trainer.weights()[("neurons", "log_tau")]), np.log(np.full(8, 20.0, np.float32))
    )


@pytest.mark.parametrize("name", ["recurrent", "train_tau_mem"])
def test_options_must_be_booleans(name):
    with pytest.raises(TypeError, match=f"{name} must be True or False"):
        helpers.SNN(**{name: 1})
