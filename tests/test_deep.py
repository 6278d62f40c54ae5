"""helpers.deep (networks from a list of LIF/ALIF layers), the losses of helpers.readout and the firing
bounds of helpers.activity (issue 19), each against a hand computation on a tiny case."""

import math

import brainstate
import brainunit as u
import jax.numpy as jnp
import numpy as np
import pytest

import helpers
from helpers.activity import firing_bounds
from helpers.deep import DeepSNN, parse_layers
from helpers.readout import (
    LOSSES,
    check_loss,
    count_cross_entropy,
    mse_count,
    per_step_cross_entropy,
)


def _spikes(steps=12, batch=3, n=6, seed=2, p=0.4):
    return (np.random.default_rng(seed).random((steps, batch, n)) < p).astype(np.float32)


# -- losses -------------------------------------------------------------------------------------------
def test_per_step_cross_entropy_by_hand():
    outputs = jnp.array([[[0.0, 1.0]], [[1.0, 0.0]]])  # [T=2, B=1, C=2], label 0
    # step 1: log(1 + e) - 0; step 2: log(e + 1) - 1; their mean
    expected = math.log(1 + math.e) - 0.5
    assert float(per_step_cross_entropy(outputs, jnp.array([0]))) == pytest.approx(expected, rel=1e-6)
    # the "ce_rate" loss is the same formula on output spikes (snnTorch's ce_rate_loss)
    assert float(LOSSES["ce_rate"](outputs, jnp.array([0]), None, "mean")) == pytest.approx(
        expected, rel=1e-6
    )


def test_count_cross_entropy_by_hand():
    spikes = jnp.array([[[1.0, 0.0]], [[1.0, 1.0]], [[0.0, 0.0]]])  # counts [2, 1], label 1
    expected = math.log(math.exp(2) + math.exp(1)) - 1
    assert float(count_cross_entropy(spikes, jnp.array([1]))) == pytest.approx(expected, rel=1e-6)


def test_mse_count_by_hand_with_a_mask():
    # T = 5 steps, rates (0.8, 0.2): targets floor(4.0) = 4 spikes for the label, floor(1.0) = 1 otherwise
    spikes = np.zeros((5, 2, 2), np.float32)
    spikes[:3, 0, 0] = 1  # example 0: counts [3, 2], label 0: ((3 - 4)^2 + (2 - 1)^2) / 2 = 1
    spikes[:2, 0, 1] = 1
    spikes[:, 1, :] = 1  # example 1 (masked out): counts [5, 5]
    labels, mask = jnp.array([0, 1]), jnp.array([True, False])
    assert float(mse_count(jnp.asarray(spikes), labels, mask)) == pytest.approx(1 / 5, rel=1e-6)
    # without the mask, example 1 adds ((5 - 1)^2 + (5 - 4)^2) / 2 = 8.5
    assert float(mse_count(jnp.asarray(spikes), labels)) == pytest.approx((1 + 8.5) / 2 / 5, rel=1e-6)


def test_losses_refuse_the_wrong_output():
    with pytest.raises(ValueError, match="needs output spikes"):
        check_loss("mse_count", spiking_output=False, readout_method="mean")
    with pytest.raises(ValueError, match="output is spikes"):
        check_loss("ce", spiking_output=True, readout_method="mean")
    with pytest.raises(ValueError, match="read as their rate"):
        check_loss("ce_count", spiking_output=True, readout_method="max")
    with pytest.raises(ValueError, match="loss"):
        check_loss("hinge", spiking_output=False, readout_method="mean")
    net = helpers.SNN(6, 3, 2)
    with pytest.raises(ValueError, match="needs output spikes"):
        helpers.Trainer(net, loss="ce_count")
    spiking = DeepSNN(6, (4,), 2, output="spikes")
    with pytest.raises(ValueError, match="output is spikes"):
        helpers.MinibatchTrainer(spiking)


# -- firing bounds ------------------------------------------------------------------------------------
def _hidden():
    """Spikes [T=2, B=2, n=3] whose counts are [[2, 0, 1], [0, 0, 1]]."""
    hidden = np.zeros((2, 2, 3), np.float32)
    hidden[:, 0, 0] = 1
    hidden[0, 0, 2] = 1
    hidden[1, 1, 2] = 1
    return jnp.asarray(hidden)


def test_upper_bound_by_hand():
    # mean counts per neuron [1, 0, 1]; above 0.5: [0.5, 0, 0.5]; squared, mean over neurons: 1/6
    assert float(firing_bounds(upper=(1.0, 0.5))(_hidden(), None)) == pytest.approx(1 / 6, rel=1e-6)
    # only example 0 counts: [2, 0, 1] -> [1.5, 0, 0.5] -> (2.25 + 0.25) / 3
    mask = jnp.array([True, False])
    assert float(firing_bounds(upper=(1.0, 0.5))(_hidden(), mask)) == pytest.approx(2.5 / 3, rel=1e-6)


def test_lower_bound_by_hand_per_layer():
    # one population: mean counts per example [1, 1/3]; below 1: [0, 2/3]; squared, mean: 2/9; times 2
    assert float(firing_bounds(lower=(2.0, 1.0))(_hidden(), None)) == pytest.approx(4 / 9, rel=1e-6)
    # layers (2, 1): the first's means [1, 0] -> [0, 1] -> mean 1/2; the second's [1, 1] -> 0
    penalty = firing_bounds(lower=(2.0, 1.0), layer_sizes=(2, 1))
    assert float(penalty(_hidden(), None)) == pytest.approx(1.0, rel=1e-6)
    both = firing_bounds(upper=(1.0, 0.5), lower=(2.0, 1.0))
    assert float(both(_hidden(), None)) == pytest.approx(1 / 6 + 4 / 9, rel=1e-6)


def test_firing_bounds_refuse_bad_values():
    with pytest.raises(ValueError, match="upper bound, a lower bound or both"):
        firing_bounds()
    with pytest.raises(ValueError, match="pair"):
        firing_bounds(upper=(1.0,))
    with pytest.raises(ValueError, match="pair"):
        firing_bounds(lower=(-1.0, 2.0))


# -- the network ----------------------------------------------------------------------------------------
def test_parse_layers():
    assert parse_layers("128,64") == (128, 64)
    for bad in ("", "128,", "0", "a,b", "-3"):
        with pytest.raises(ValueError, match="positive integers"):
            parse_layers(bad)


def test_one_lif_layer_is_the_snn():
    """A DeepSNN of one LIF layer with a membrane readout, given an SNN's weights, is that SNN."""
    snn = helpers.SNN(6, 5, 3)
    deep = DeepSNN(6, (5,), 3, input_scale=snn.init_kwargs["input_scale"])
    deep.layers[0].input_layer.weight.value = snn.input_layer.weight.value
    deep.readout_layer.weight.value = snn.readout_layer.weight.value
    x = jnp.asarray(_spikes())
    np.testing.assert_array_equal(np.asarray(deep.simulate(x)), np.asarray(snn.simulate(x)))
    assert deep.n_hidden == 5 and not deep.spiking_output


def test_alif_layer_follows_its_equations():
    """The recorded voltages and spikes of an ALIF layer, recomputed by hand from its recorded
    synaptic current: the threshold rises by ``adaptation`` with every spike and relaxes with tau_adapt."""
    net = DeepSNN(6, (4,), 2, neuron="alif", adaptation=0.5 * u.mV, tau_adapt=50.0 * u.ms, input_scale=60.0)
    recorded = net.record(jnp.asarray(_spikes(steps=30, batch=2)))
    current = np.asarray(recorded["current"].to_decimal(u.mA))
    decay_v, decay_a = math.exp(-1 / 20), math.exp(-1 / 50)
    v = np.zeros(current.shape[1:])
    a = np.zeros_like(v)
    voltages, spikes = [], []
    for i_t in current:
        spike = (v - 1.0 - 0.5 * a >= 0).astype(float)  # threshold 1 mV + 0.5 mV per unit of adaptation
        v, a = v - spike, a + spike  # soft reset by V_th - V_reset = 1 mV
        v = v * decay_v + i_t * (1 - decay_v)  # R = 1 ohm
        a = a * decay_a
        voltages.append(v)
        spikes.append((v - 1.0 - 0.5 * a >= 0).astype(float))
    np.testing.assert_allclose(recorded["voltage"].to_decimal(u.mV), np.array(voltages), atol=1e-5)
    np.testing.assert_array_equal(np.asarray(recorded["spikes"]), np.array(spikes))
    assert np.array(spikes).sum() > 3  # the case exercises the adaptation


def test_layers_recurrence_and_spiking_output():
    net = DeepSNN(6, (5, 4, 3), 2, neuron="alif", recurrent=(False, True, False), output="spikes")
    paths = {tuple(map(str, p)) for p in net.states(brainstate.ParamState)}
    assert ("layers", "1", "recurrent_layer", "weight") in paths
    assert not any(p[:2] in {("layers", "0"), ("layers", "2")} and "recurrent_layer" in p for p in paths)
    config = net.config
    assert (config["hidden"], config["recurrent"], config["neuron"], config["output"]) == (
        "5,4,3",
        "0,1,0",
        "alif",
        "spikes",
    )
    with pytest.raises(ValueError, match="one bool per hidden layer"):
        DeepSNN(6, (5, 4), 2, recurrent=(True,))
    with pytest.raises(ValueError, match="non-empty sequence"):
        DeepSNN(6, (), 2)
    with pytest.raises(ValueError, match="neuron"):
        DeepSNN(6, (5,), 2, neuron="izhikevich")


@pytest.mark.slow  # compiles training programs: over 5 s on 2 busy cores
def test_deep_network_trains_through_the_core_and_reinitialises(small_batch):
    spikes, labels = small_batch
    net = DeepSNN(100, (8, 6), 2, neuron="alif", recurrent=(False, True), output="spikes", input_scale=100.0,
                  hidden_scale=100.0)  # fmt: skip
    recorded = net.record(jnp.asarray(spikes), keep=("spikes", "output"))
    assert recorded["spikes"].shape == (20, 6, 14)  # the hidden layers side by side
    assert recorded["output"].shape == (20, 6, 2) and set(np.unique(recorded["output"])) <= {0.0, 1.0}
    first = {k: v.value for k, v in net.states(brainstate.ParamState).items()}
    trainer = helpers.Trainer(net, lr=1e-2, loss="mse_count")  # event-driven input into the first layer
    dense = helpers.Trainer(net, lr=1e-2, loss="mse_count", event_driven=False)
    assert trainer.loss(spikes, labels) == pytest.approx(dense.loss(spikes, labels), rel=1e-5)
    losses = trainer.fit(spikes, labels, 15)
    assert losses[-1] < losses[0]
    trainer.reinitialize(0)  # the weights a fresh network of seed 0 gets (the fixture seeded 0)
    for path, state in net.states(brainstate.ParamState).items():
        np.testing.assert_array_equal(np.asarray(u.get_magnitude(state.value["weight"])),
                                      np.asarray(u.get_magnitude(first[path]["weight"])))  # fmt: skip


@pytest.mark.slow  # compiles training programs: over 5 s on 2 busy cores
def test_lower_bound_revives_a_silent_layer():
    """A network whose second layer is silent: the lower bound's gradient raises its activity."""
    x = jnp.asarray(_spikes(steps=20, batch=8, n=6, p=0.5))
    labels = np.arange(8) % 2
    net = DeepSNN(6, (8, 8), 2, input_scale=60.0, hidden_scale=0.5)
    trainer = helpers.MinibatchTrainer(
        net, lr=5e-2, regularizer=firing_bounds(lower=(1.0, 2.0), layer_sizes=(8, 8))
    )
    before = trainer.evaluate((x, labels))["hidden_counts"][:, 8:].mean()
    trainer.fit((x, labels), 20, 8)
    after = trainer.evaluate((x, labels))["hidden_counts"][:, 8:].mean()
    assert before < 0.5 and after > before + 0.5


@pytest.mark.slow  # compiles training programs: over 5 s on 2 busy cores
def test_checkpoint_of_a_deep_network(tmp_path):
    net = DeepSNN(6, (5, 4), 3, neuron="alif", output="spikes")
    trainer = helpers.Trainer(net, loss="ce_count")
    path = tmp_path / "deep.msgpack"
    helpers.save_checkpoint(path, net, trainer.optimizer, epoch=0, losses=[])
    twin = DeepSNN(6, (5, 4), 3, neuron="alif", output="spikes")
    helpers.load_checkpoint(path, twin, helpers.Trainer(twin, loss="ce_count").optimizer)
    x = jnp.asarray(_spikes())
    np.testing.assert_array_equal(np.asarray(twin.simulate(x)), np.asarray(net.simulate(x)))
    other = DeepSNN(6, (5, 5), 3, neuron="alif", output="spikes")
    with pytest.raises(helpers.CheckpointError, match="hidden: checkpoint '5,4', network '5,5'"):
        helpers.load_checkpoint(path, other, helpers.Trainer(other, loss="ce_count").optimizer)
    with pytest.raises(helpers.CheckpointError, match="architecture"):
        plain = helpers.SNN(6, 9, 3)
        helpers.load_checkpoint(path, plain, helpers.Trainer(plain).optimizer)
