import brainstate
import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import helpers


def test_defaults_match_the_original_page():
    net = helpers.SNN()
    assert (net.n_inputs, net.n_hidden, net.n_outputs) == (100, 4, 2)
    assert u.math.allclose(net.synapse.tau, 10 * u.ms)
    assert u.math.allclose(net.neurons.tau, 20 * u.ms)
    assert u.math.allclose(net.neurons.V_th, 1 * u.mV)
    assert u.math.allclose(net.readout.tau, 10 * u.ms)
    assert helpers.default_input_scale() == pytest.approx(7 * (1 - np.exp(-1)))
    params = net.states(brainstate.ParamState)
    shapes = {path: {k: v.shape for k, v in s.value.items()} for path, s in params.items()}
    assert shapes == {
        ("input_layer", "weight"): {"weight": (100, 4), "bias": (4,)},
        ("readout_layer", "weight"): {"weight": (4, 2), "bias": (2,)},
    }


def test_biases_are_strongly_typed_float32():
    net = helpers.SNN()
    for state in net.states(brainstate.ParamState).values():
        for leaf in jax.tree.leaves(state.value):
            array = u.get_mantissa(leaf)
            assert array.dtype == jnp.float32 and not array.weak_type


def test_configurable_sizes_and_constants(small_batch):
    spikes, _ = small_batch
    net = helpers.SNN(100, 7, 3, tau_mem=5 * u.ms, tau_syn=2 * u.ms, tau_out=3 * u.ms, v_threshold=0.5 * u.mV)
    out = net.simulate(spikes)
    assert out.shape == (20, 6, 3)
    assert u.math.allclose(net.neurons.V_th, 0.5 * u.mV)


def test_record_returns_traces_with_units(small_batch):
    spikes, _ = small_batch
    net = helpers.SNN()
    traces = net.record(spikes)
    assert traces["current"].shape == (20, 6, 4) and u.get_unit(traces["current"]) == u.mA
    assert traces["voltage"].shape == (20, 6, 4) and u.get_unit(traces["voltage"]) == u.mV
    assert set(np.unique(np.asarray(traces["spikes"]))) <= {0.0, 1.0}
    np.testing.assert_array_equal(traces["output"], net.simulate(spikes))


def test_lif_fires_at_the_analytic_time():
    """A constant 1.5 mA drive crosses 1 mV at t = 20 ms * ln(3) = 21.97 ms, i.e. in step 22."""
    neuron = helpers.SNN(1, 1, 1).neurons
    neuron.init_state(batch_size=1)
    spikes = [float(neuron(1.5 * u.mA)[0, 0]) for _ in range(25)]
    assert spikes.index(1.0) == 21  # 0-based step 21 ends at 22 ms


def test_heaviside_has_zero_gradient():
    x = jnp.array([-1.0, 0.0, 0.5])
    np.testing.assert_array_equal(helpers.heaviside(x), [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(jax.grad(lambda v: helpers.heaviside(v).sum())(x), 0.0)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"n_inputs": 0}, ValueError, "n_inputs must be a positive integer"),
        ({"n_hidden": -3}, ValueError, "n_hidden must be a positive integer"),
        ({"n_outputs": 2.0}, TypeError, "n_outputs must be a positive integer"),
        ({"n_hidden": True}, TypeError, "n_hidden must be a positive integer"),
        ({"tau_mem": 20.0}, TypeError, "tau_mem must be a quantity with units of"),
        ({"tau_syn": 10 * u.mV}, TypeError, "tau_syn must be a quantity with units of"),
        ({"tau_out": -1 * u.ms}, ValueError, "tau_out must be a positive, finite scalar"),
        ({"tau_mem": 0 * u.ms}, ValueError, "tau_mem must be a positive, finite scalar"),
        ({"tau_mem": float("nan") * u.ms}, ValueError, "tau_mem must be a positive, finite scalar"),
        ({"v_threshold": 1 * u.ms}, TypeError, "v_threshold must be a quantity with units of"),
        ({"v_threshold": -1 * u.mV}, ValueError, "v_threshold must be a positive"),
        ({"input_scale": 0.0}, ValueError, "input_scale must be a positive number"),
    ],
)
def test_bad_construction_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        helpers.SNN(**kwargs)


@pytest.mark.parametrize(
    "spikes, error, message",
    [
        (jnp.zeros((10, 2, 50), bool), ValueError, "50 input channels but the network expects n_inputs=100"),
        (jnp.zeros((10, 100), bool), ValueError, r"shape \[T, B, 100\] \(time, batch, inputs\)"),
        (jnp.zeros((10, 2, 100), jnp.int32), TypeError, "bool or floating point"),
        (jnp.zeros((0, 2, 100), bool), ValueError, "at least one time step"),
        (jnp.full((10, 2, 100), jnp.nan), ValueError, "NaN or infinite"),
        (jnp.zeros((10, 2, 100)) * u.mA, TypeError, "unitless"),
        ([[0, 1]], TypeError, "must be an array"),
    ],
)
def test_bad_spikes_are_refused(spikes, error, message):
    with pytest.raises(error, match=message):
        helpers.SNN().simulate(spikes)
