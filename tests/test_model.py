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


@pytest.mark.slow
def test_every_configured_constant_reaches_the_dynamics():
    """Each time constant sets the decay of its variable per 1 ms step to exp(-1 ms / tau); the
    threshold and membrane constant set when a constant drive makes the LIF fire."""
    net = helpers.SNN(100, 7, 3, tau_syn=2 * u.ms, tau_mem=5 * u.ms, tau_out=3 * u.ms, v_threshold=0.5 * u.mV)
    for layer, tau_ms, unit in ((net.synapse, 2.0, u.mA), (net.readout, 3.0, 1.0)):
        layer.init_state(batch_size=1)
        first = u.get_mantissa(layer(jnp.ones((1, layer.in_size[0])) * unit))  # one impulse, then decay
        second = u.get_mantissa(layer(jnp.zeros((1, layer.in_size[0])) * unit))
        np.testing.assert_allclose(second / first, np.exp(-1.0 / tau_ms), rtol=1e-6)
    # 1.5 mA from rest: V(t) = 1.5 mV (1 - exp(-t / 5 ms)) crosses 0.5 mV at 5 ms * ln(1.5) = 2.03 ms
    net.neurons.init_state(batch_size=1)
    fired = [float(net.neurons(1.5 * u.mA * jnp.ones((1, 7)))[0, 0]) for _ in range(5)]
    assert fired.index(1.0) == 2  # 0-based step 2 ends at 3 ms, the first step end past 2.03 ms
    assert net.config | {"surrogate": None} == {
        "n_inputs": 100, "n_hidden": 7, "n_outputs": 3, "tau_syn_ms": 2.0, "tau_mem_ms": 5.0,
        "tau_out_ms": 3.0, "v_threshold_mV": 0.5, "input_scale": helpers.default_input_scale(),
        "surrogate": None,
    }  # fmt: skip


def test_init_kwargs_rebuild_the_same_network():
    net = helpers.SNN(30, 5, 3, tau_mem=7 * u.ms, input_scale=2.0)
    rebuilt = helpers.SNN(**net.init_kwargs)
    assert rebuilt.config == net.config


@pytest.mark.slow
def test_compiled_predictor_is_freed_with_its_network(small_batch):
    """No cache outside the network keeps it alive: predicting, scoring and training leave nothing."""
    import gc
    import weakref

    spikes, labels = small_batch
    net = helpers.SNN()
    helpers.accuracy(net, spikes, labels, "max")
    helpers.Trainer(net).fit(spikes, labels, 2)
    alive = weakref.ref(net)
    del net
    gc.collect()
    assert alive() is None


@pytest.mark.slow
def test_record_returns_traces_with_units(small_batch):
    spikes, _ = small_batch
    net = helpers.SNN()
    traces = net.record(spikes)
    assert traces["current"].shape == (20, 6, 4) and u.get_unit(traces["current"]) == u.mA
    assert traces["voltage"].shape == (20, 6, 4) and u.get_unit(traces["voltage"]) == u.mV
    assert set(np.unique(np.asarray(traces["spikes"]))) <= {0.0, 1.0}
    np.testing.assert_array_equal(traces["output"], net.simulate(spikes))


@pytest.mark.slow
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
        ({"tau_mem": 20.0}, TypeError, "tau_mem must be a quantity with units of"),
        ({"tau_syn": 10 * u.mV}, TypeError, "tau_syn must be a quantity with units of"),
        ({"tau_out": -1 * u.ms}, ValueError, "tau_out must be a positive, finite scalar"),
        ({"v_threshold": 1 * u.ms}, TypeError, "v_threshold must be a quantity with units of"),
        ({"input_scale": 0.0}, ValueError, "input_scale must be a positive, finite number"),
        ({"input_scale": float("inf")}, ValueError, "input_scale must be a positive, finite number"),
        (
            {"surrogate": "relu"},
            TypeError,
            "surrogate must be a function or a braintools.surrogate.Surrogate",
        ),
    ],
)
def test_every_construction_argument_is_checked(kwargs, error, message):
    with pytest.raises(error, match=message):
        helpers.SNN(**kwargs)


def test_numpy_scalars_are_accepted_as_plain_numbers():
    net = helpers.SNN(np.int64(100), np.int64(4), input_scale=np.float32(2))
    assert net.config["input_scale"] == 2.0 and type(net.init_kwargs["input_scale"]) is float
    assert type(net.init_kwargs["n_hidden"]) is int


def test_without_dt_a_clear_error():
    """As in a fresh process without brainstate.environ.set(dt=...): no brainstate KeyError."""
    net = helpers.SNN(input_scale=2.0)  # needs no dt yet
    brainstate.environ.pop("dt")
    with pytest.raises(RuntimeError, match=r"dt is not set: call brainstate.environ.set\(dt=1.0 \* u.ms\)"):
        helpers.SNN()
    with pytest.raises(RuntimeError, match="dt is not set"):
        net.simulate(jnp.zeros((5, 2, 100), bool))


def test_the_network_checks_its_input():
    """simulate, record and predict refuse spikes that do not fit (the cases: test_validation.py)."""
    net = helpers.SNN()
    for run in (net.simulate, net.record, net.predict):
        with pytest.raises(ValueError, match="50 input channels but the network expects n_inputs=100"):
            run(jnp.zeros((10, 2, 50), bool))
        with pytest.raises(ValueError, match=r"spikes must lie in \[0, 1\]"):
            run(jnp.full((10, 2, 100), 2.0))
    with pytest.raises(ValueError, match="readout_method must be one of"):
        net.predict(jnp.zeros((10, 2, 100), bool), "median")


# -- DetachedResetLIF / detach_reset and SwitchableSurrogate (notebooks 3 and 5)


def _tiny_net(detached=False):
    from helpers.model import detach_reset

    net = helpers.SNN(n_inputs=2, n_hidden=1, n_outputs=2)
    if detached:
        detach_reset(net)
    net.input_layer.weight.value = {"weight": jnp.array([[10.0], [6.0]]) * u.mA, "bias": jnp.zeros(1) * u.mA}
    net.readout_layer.weight.value = {"weight": jnp.array([[0.5, -0.5]]), "bias": jnp.zeros(2)}
    return net


def _input_gradient(net, spikes, labels):
    params = net.states(brainstate.ParamState)

    def loss():
        return helpers.cross_entropy(helpers.readout(net.simulate(spikes)), labels)

    grads = brainstate.transform.grad(loss, params)()
    return np.asarray(u.get_mantissa(grads[("input_layer", "weight")]["weight"]))


@pytest.mark.slow
def test_detached_reset_keeps_the_forward_pass_and_cuts_only_the_reset_gradient():
    spikes = jnp.array([[[1.0, 1.0]], [[1.0, 0.0]], [[0.0, 1.0]]])
    labels = jnp.array([1])
    soft, detached = _tiny_net(), _tiny_net(detached=True)
    assert isinstance(detached.neurons, helpers.model.DetachedResetLIF)
    assert detached.n_hidden == 1 and float(detached.neurons.tau.to_decimal(u.ms)) == 20.0
    soft_trace, detached_trace = soft.record(spikes), detached.record(spikes)
    for key in ("voltage", "spikes", "output"):
        a, b = u.get_mantissa(soft_trace[key]), u.get_mantissa(detached_trace[key])
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert np.asarray(soft_trace["spikes"]).sum() == 2  # the reset happens, so its gradient path matters
    g_soft, g_detached = _input_gradient(soft, spikes, labels), _input_gradient(detached, spikes, labels)
    assert np.all(np.abs(g_soft) > 1e-4) and not np.allclose(g_soft, g_detached, rtol=1e-3)
    # by hand (notebook 3): the detached gradient is the soft one without the -beta * theta * s' * Vbar term
    np.testing.assert_allclose(g_detached.ravel(), [0.00874219, 0.0083116], rtol=1e-4)
    np.testing.assert_allclose(g_soft.ravel(), [0.00864631, 0.00821571], rtol=1e-4)
    # the cut is a switch (notebook 5): detached = 0 passes the soft reset's gradient, forward unchanged
    switched = _tiny_net(detached=True)
    switched.neurons.detached.value = jnp.zeros(())
    assert np.array_equal(np.asarray(u.get_mantissa(switched.record(spikes)["voltage"])),
                          np.asarray(u.get_mantissa(soft_trace["voltage"])))  # fmt: skip
    np.testing.assert_allclose(_input_gradient(switched, spikes, labels), g_soft, rtol=1e-6)
    with pytest.raises(TypeError, match="helpers.SNN"):
        helpers.model.detach_reset("net")


@pytest.mark.slow
def test_switchable_surrogate_trains_like_the_surrogate_it_selects():
    import braintools

    from helpers.model import SwitchableSurrogate

    S = braintools.surrogate
    switch = SwitchableSurrogate([S.ReluGrad(), S.Sigmoid()])
    x = jnp.linspace(-2.0, 2.0, 41)
    assert np.array_equal(switch(x), helpers.heaviside(x))
    for index, fn in ((0, S.ReluGrad()), (1, S.Sigmoid()), (None, helpers.heaviside)):
        switch.select(index)
        np.testing.assert_array_equal(jax.vmap(jax.grad(switch))(x), jax.vmap(jax.grad(fn))(x))
    # a scaled choice evaluates that surrogate alone; a mixture still sums its weighted terms
    relu, sigmoid = jax.vmap(jax.grad(S.ReluGrad()))(x), jax.vmap(jax.grad(S.Sigmoid()))(x)
    switch.weights.value = jnp.array([0.0, 3.0])
    np.testing.assert_array_equal(jax.vmap(jax.grad(switch))(x), 3.0 * sigmoid)
    switch.weights.value = jnp.array([0.5, 2.0])
    np.testing.assert_allclose(jax.vmap(jax.grad(switch))(x), 0.5 * relu + 2.0 * sigmoid, rtol=1e-6)
    # weights that differ per lane of a vmap: each lane gets its own surrogate
    per_lane = jax.vmap(lambda w: jax.grad(lambda v: switch._spike(v, w).sum())(x))(jnp.eye(2))
    np.testing.assert_array_equal(per_lane, np.stack([relu, sigmoid]))
    spikes, labels = helpers.poisson_dataset(n_steps=30, batch_size=16, seed=3)
    switch.select(1)
    brainstate.random.seed(0)
    switched = helpers.Trainer(helpers.SNN(surrogate=switch)).fit(spikes, labels, 20, epochs_per_call=20)
    brainstate.random.seed(0)
    direct = helpers.Trainer(helpers.SNN(surrogate=S.Sigmoid())).fit(spikes, labels, 20, epochs_per_call=20)
    np.testing.assert_array_equal(switched, direct)
    with pytest.raises(TypeError, match="surrogate_grad"):
        SwitchableSurrogate([helpers.heaviside])
    with pytest.raises(ValueError, match="at least one"):
        SwitchableSurrogate([])


def test_detach_reset_refuses_a_trainable_time_constant():
    with pytest.raises(ValueError, match="fixed time constants, got train_tau_mem=True"):
        helpers.model.detach_reset(helpers.SNN(train_tau_mem=True))
