"""helpers against the pure-JAX reference in benchmarks/reference.py: same equations, same numbers."""

import os
import subprocess
import sys
from pathlib import Path

import brainstate
import brainunit as u
import jax
import numpy as np

import helpers
from benchmarks import reference

ROOT = Path(__file__).resolve().parent.parent
FLOAT64_RUN = """
import brainstate, brainunit as u, numpy as np, helpers
from benchmarks import reference
brainstate.environ.set(dt=1.0 * u.ms, precision=64)  # float64 everywhere (jax_enable_x64)
brainstate.random.seed(0)
net = helpers.SNN()
spikes, labels = helpers.poisson_dataset()
params = reference.params_from(net)
assert params.w_in.dtype == np.float64 and params.b_in.dtype == np.float64
ours = helpers.Trainer(net).fit(spikes, labels, 800, epochs_per_call=200)
_, _, theirs = reference.train_epochs(params, reference.adam_init(params), spikes, labels, n_epochs=800)
print(float(np.max(np.abs(ours - np.asarray(theirs)))), ours[-1])
"""


def test_float64_loss_histories_agree_over_800_epochs():
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", FLOAT64_RUN], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    max_difference, final_loss = map(float, result.stdout.split())
    assert max_difference < 1e-10
    assert 0.03 < final_loss < 0.1  # a real training run, not two identical no-ops


def helpers_gradients(net, spikes, labels):
    trainer = helpers.Trainer(net)
    grads = brainstate.transform.grad(trainer._loss_fn, trainer.params)(spikes, labels)
    w_in, w_out = grads[("input_layer", "weight")], grads[("readout_layer", "weight")]
    return [
        np.asarray(u.get_mantissa(g)) for g in (w_in["weight"], w_in["bias"], w_out["weight"], w_out["bias"])
    ]


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


def test_reference_surrogate_is_relugrad():
    spike = reference.make_spike(0.3, 1.0)
    x = jax.numpy.linspace(-2, 2, 41)
    relu_grad = helpers.SNN().neurons.spk_fun
    np.testing.assert_array_equal(spike(x), relu_grad(x))
    np.testing.assert_array_equal(jax.vmap(jax.grad(spike))(x), jax.vmap(jax.grad(relu_grad))(x))
