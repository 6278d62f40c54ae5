"""helpers.minibatch: seeded shuffles, the masked last batch, one compiled epoch, batched evaluation."""

import brainstate
import braintools
import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import helpers
from helpers import realdata as D
from helpers.minibatch import EpochPlan, MinibatchTrainer
from helpers.readout import cross_entropy


def test_an_epoch_plan_visits_every_example_once_and_masks_the_padding():
    plan = EpochPlan(10, 4, seed=3)
    indices, mask = plan.epoch(0)
    assert indices.shape == mask.shape == (3, 4) and plan.n_batches == 3
    assert mask.sum() == 10 and not mask[-1, 2:].any() and mask[:2].all()
    assert sorted(indices[mask].tolist()) == list(range(10))
    assert (indices[~mask] == 0).all()  # padding repeats a valid index


def test_epoch_plans_are_seeded_and_reshuffled_every_epoch():
    plan = EpochPlan(50, 8, seed=1)
    np.testing.assert_array_equal(plan.epoch(2)[0], EpochPlan(50, 8, seed=1).epoch(2)[0])
    assert not np.array_equal(plan.epoch(0)[0], plan.epoch(1)[0])
    assert not np.array_equal(plan.epoch(0)[0], EpochPlan(50, 8, seed=2).epoch(0)[0])
    ordered, _ = EpochPlan(5, 2, shuffle=False).epoch(0)
    assert ordered.tolist() == [[0, 1], [2, 3], [4, 0]]


@pytest.mark.parametrize(
    "args, error",
    [((0, 4), ValueError), ((10, 0), ValueError), ((10, 2.0), TypeError), ((True, 2), TypeError)],
)
def test_epoch_plan_refuses_bad_sizes(args, error):
    with pytest.raises(error, match="positive integer"):
        EpochPlan(*args)


def test_epoch_plan_refuses_bad_seeds_and_epochs():
    with pytest.raises(ValueError, match="seed"):
        EpochPlan(10, 2, seed=-1)
    with pytest.raises(ValueError, match="epoch"):
        EpochPlan(10, 2).epoch(-1)


def test_masked_cross_entropy_ignores_the_padding():
    logits = jnp.array([[2.0, 0.0], [0.0, 1.0], [50.0, -50.0]])
    labels = jnp.array([0, 1, 1])
    mask = jnp.array([True, True, False])
    real = braintools.metric.softmax_cross_entropy_with_integer_labels(logits[:2], labels[:2]).mean()
    np.testing.assert_allclose(cross_entropy(logits, labels, mask), real, rtol=1e-6)


@pytest.fixture(scope="module")
def digits_latency():
    brainstate.environ.set(dt=1.0 * u.ms)
    splits = D.load_digits()
    encode = lambda split: (D.latency_code(split[0], 8), split[1])  # noqa: E731
    return encode(splits.train), encode(splits.val)


def small_trainer(seed=0, **kwargs):
    brainstate.random.seed(seed)
    return MinibatchTrainer(helpers.SNN(64, 32, 10), lr=1e-2, **kwargs)


@pytest.mark.slow
def test_the_padded_examples_do_not_change_the_gradient(digits_latency):
    (spikes, labels), _ = digits_latency
    trainer = small_trainer()
    real = jnp.asarray(spikes[:, :5], jnp.float32), jnp.asarray(labels[:5])
    # the same five examples, padded with three others that the mask hides
    padded = jnp.asarray(spikes[:, :8], jnp.float32), jnp.asarray(labels[:8])
    grad = brainstate.transform.grad(lambda *a: trainer.batch_loss(*a)[0], trainer.params)
    g_real = grad(*real, jnp.ones(5, bool))
    g_padded = grad(*padded, jnp.arange(8) < 5)
    g_unmasked = grad(*padded, jnp.ones(8, bool))
    real_leaves, padded_leaves, unmasked_leaves = (jax_leaves(g) for g in (g_real, g_padded, g_unmasked))
    for a, b in zip(real_leaves, padded_leaves, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    # without the mask the padding would change the gradient
    assert not all(np.allclose(a, c, rtol=1e-3) for a, c in zip(real_leaves, unmasked_leaves, strict=True))


def jax_leaves(tree):
    return [np.asarray(getattr(leaf, "mantissa", leaf)) for leaf in jax.tree_util.tree_leaves(tree)]


@pytest.mark.slow
def test_one_compilation_serves_every_epoch_seed_and_the_partial_batch(digits_latency):
    train, val = digits_latency
    trainer = small_trainer()
    assert train[1].shape[0] % 64 != 0  # the last batch is partial
    trainer.fit(train, 1, 64)
    with helpers.count_compilations() as compiled:
        trainer.reinitialize(1)
        history = trainer.fit(train, 3, 64, seed=1)
    assert compiled.jitted == 0
    assert history["epoch"].tolist() == [1, 2, 3] and history["train_loss"].shape == (3,)


@pytest.mark.slow
def test_training_on_digits_learns_and_is_reproducible(digits_latency):
    train, val = digits_latency
    trainer = small_trainer()
    history = trainer.fit(train, 4, 32, seed=0, validation=val)
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["val_accuracy"][-1] > 0.7  # chance is 0.1
    again = small_trainer()
    np.testing.assert_array_equal(again.fit(train, 4, 32, seed=0)["train_loss"], history["train_loss"])
    trainer.reinitialize(0)
    np.testing.assert_array_equal(trainer.fit(train, 4, 32, seed=0)["train_loss"], history["train_loss"])


@pytest.mark.slow
def test_evaluation_in_batches_matches_one_batch(digits_latency):
    _, (spikes, labels) = digits_latency
    trainer = small_trainer()
    whole = trainer.evaluate((spikes, labels), batch_size=len(labels))
    parts = trainer.evaluate((spikes, labels), batch_size=50)
    assert parts["predictions"].shape == (len(labels),) and parts["hidden_counts"].shape == (len(labels), 32)
    np.testing.assert_array_equal(whole["predictions"], parts["predictions"])
    np.testing.assert_allclose(whole["loss"], parts["loss"], rtol=1e-5)
    assert whole["accuracy"] == pytest.approx(
        helpers.accuracy(trainer.net, spikes.astype(np.float32), labels)
    )
    np.testing.assert_array_equal(
        parts["hidden_counts"], np.asarray(trainer.net.record(spikes.astype(np.float32))["spikes"]).sum(0)
    )


@pytest.mark.slow
def test_splits_with_as_many_batches_share_one_evaluation_program(digits_latency):
    _, (spikes, labels) = digits_latency
    trainer = small_trainer()
    full = trainer.evaluate((spikes, labels), batch_size=64)
    with helpers.count_compilations() as compiled:  # fewer examples, the same number of batches
        part = trainer.evaluate((spikes[:, :-10], labels[:-10]), batch_size=64)
    assert compiled.jitted == 0 and part["predictions"].shape == (len(labels) - 10,)
    np.testing.assert_array_equal(part["predictions"], full["predictions"][:-10])
    assert part["accuracy"] == pytest.approx(np.mean(full["predictions"][:-10] == labels[:-10]))


@pytest.mark.slow
def test_an_encoder_draws_fresh_spikes_inside_the_compiled_epoch():
    splits = D.load_digits()
    encoder = braintools.PoissonEncoder(normalize=True, max_rate=500.0)
    trainer = small_trainer(encoder=lambda x: encoder(x, n_time=8))
    x, y = splits.train
    history = trainer.fit((x[:128], y[:128]), 2, 64)
    assert np.all(np.isfinite(history["train_loss"]))
    a = trainer.evaluate((x[:64], y[:64]))["loss"]
    b = trainer.evaluate((x[:64], y[:64]))["loss"]
    assert a != b  # values are encoded afresh at every call


def test_bad_input_is_refused(digits_latency):
    train, _ = digits_latency
    trainer = small_trainer()
    with pytest.raises(ValueError, match="no encoder"):
        trainer.fit((np.zeros((10, 64), np.float32), np.zeros(10, np.int32)), 1)
    with pytest.raises(TypeError, match="pair"):
        trainer.fit(train[0], 1)
    with pytest.raises(ValueError, match="batch mismatch"):
        trainer.fit((train[0], train[1][:-1]), 1)
    with pytest.raises(ValueError, match="input channels"):
        trainer.evaluate((train[0][:, :, :10], train[1]))
    with pytest.raises(ValueError, match="lr"):
        MinibatchTrainer(helpers.SNN(64, 4, 10), lr=0)
    with pytest.raises(TypeError, match="helpers.SNN"):
        MinibatchTrainer(object())
    with pytest.raises(ValueError, match="readout_method"):
        MinibatchTrainer(helpers.SNN(64, 4, 10), readout_method="median")


@pytest.mark.slow
def test_weights_can_be_kept_and_put_back(digits_latency):
    train, val = digits_latency
    trainer = small_trainer()
    trainer.fit(train, 1, 64)
    kept = trainer.weights()
    before = trainer.evaluate(val)["loss"]
    trainer.reinitialize(5)
    assert trainer.evaluate(val)["loss"] != before
    trainer.load_weights(kept)
    assert trainer.evaluate(val)["loss"] == before
    with pytest.raises(ValueError, match="keys"):
        trainer.load_weights({})
    other = small_trainer().weights()
    key = next(iter(other))
    other[key] = jax.tree.map(lambda a: a[:1], other[key])
    with pytest.raises(ValueError, match="shape"):
        trainer.load_weights(other)


DATA_PARALLEL_SCRIPT = """
import brainstate, brainunit as u, jax, numpy as np
import helpers
from helpers import realdata as D
assert len(jax.devices()) == 2, jax.devices()
brainstate.environ.set(dt=1.0 * u.ms)
x, y = D.load_digits().train
spikes = D.latency_code(x[:200], 8)
losses = {}
for parallel in (False, True):
    brainstate.random.seed(0)
    trainer = helpers.MinibatchTrainer(helpers.SNN(64, 32, 10), lr=1e-2, data_parallel=parallel)
    losses[parallel] = trainer.fit((spikes, y[:200]), 4, 64, seed=0)["train_loss"]
    accuracy = trainer.evaluate((spikes, y[:200]), 64)["accuracy"]  # evaluation runs sharded too
np.testing.assert_allclose(losses[True], losses[False], rtol=1e-4)
assert losses[True][-1] < losses[True][0], losses
try:
    trainer.fit((spikes, y[:200]), 1, 63)
except ValueError as error:
    assert "multiple of the 2 devices" in str(error)
else:
    raise AssertionError("an odd batch size was accepted")
print("ok")
"""


@pytest.mark.slow
def test_data_parallel_minibatches_give_the_same_losses_on_two_devices():
    import os
    import subprocess
    import sys

    env = os.environ | {
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2",
        "JAX_PLATFORMS": "cpu",
    }
    result = subprocess.run(
        [sys.executable, "-c", DATA_PARALLEL_SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]
