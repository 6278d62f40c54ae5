"""helpers against the pure-JAX reference in benchmarks/reference.py: same equations, same numbers."""

import brainstate
import brainunit as u
import jax
import numpy as np
import pytest

import helpers
from benchmarks import reference


@pytest.mark.slow
def test_float64_loss_histories_agree():
    """In float64 both give the same loss history to 1e-10 (measured: about 1e-16) over 100 epochs,
    long enough for the loss to fall well below ln 2. (The claim needs no more: a difference in the
    equations shows in the first epochs, and float64 rounding stays far below the tolerance.)"""
    with brainstate.environ.context(precision=64):  # float64 everywhere (jax_enable_x64), restored after
        brainstate.random.seed(0)
        net = helpers.SNN()
        spikes, labels = helpers.poisson_dataset()
        params = reference.params_from(net)
        assert params.w_in.dtype == np.float64 and params.b_in.dtype == np.float64
        ours = helpers.Trainer(net).fit(spikes, labels, 100, epochs_per_call=100)
        _, _, theirs = reference.train_epochs(
            params, reference.adam_init(params), spikes, labels, n_epochs=100
        )
        theirs = np.asarray(theirs)
    assert theirs.dtype == np.float64
    assert np.max(np.abs(ours - theirs)) < 1e-10
    assert ours[0] == pytest.approx(np.log(2), abs=0.05) and ours[-1] < ours[0] - 0.1  # a real training run
    assert not jax.config.jax_enable_x64  # the rest of the session runs in float32 again


def helpers_gradients(net, spikes, labels):
    """The gradients of the loss Trainer minimises (mean readout, cross-entropy), through public API."""
    params = net.states(brainstate.ParamState)

    def loss():
        return helpers.cross_entropy(helpers.readout(net.simulate(spikes)), labels)

    grads = brainstate.transform.grad(loss, params)()
    w_in, w_out = grads[("input_layer", "weight")], grads[("readout_layer", "weight")]
    return [
        np.asarray(u.get_mantissa(g)) for g in (w_in["weight"], w_in["bias"], w_out["weight"], w_out["bias"])
    ]


@pytest.mark.slow
def test_float32_gradients_agree():
    brainstate.random.seed(0)
    net = helpers.SNN()
    spikes, labels = helpers.poisson_dataset()
    helpers.fit(net, spikes, labels, 60)  # past the silent start: every parameter has a gradient
    ours = helpers_gradients(net, spikes, labels)
    loss, theirs = reference.loss_and_grads(reference.params_from(net), spikes, labels)
    assert float(loss) == helpers.Trainer(net).loss(spikes, labels)
    for name, a, b in zip(reference.Params._fields, ours, theirs, strict=True):
        assert np.abs(a).max() > 0, f"{name}: zero gradient, nothing compared"
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.slow
def test_reference_surrogate_is_relugrad():
    spike = reference.make_spike(0.3, 1.0)
    x = jax.numpy.linspace(-2, 2, 41)
    relu_grad = helpers.SNN().neurons.spk_fun
    np.testing.assert_array_equal(spike(x), relu_grad(x))
    np.testing.assert_array_equal(jax.vmap(jax.grad(spike))(x), jax.vmap(jax.grad(relu_grad))(x))
