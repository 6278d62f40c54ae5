"""helpers.training: Trainer, fit and accuracy."""

import hashlib
import os
import re
import subprocess
import sys

import brainstate
import brainunit as u
import jax.numpy as jnp
import numpy as np
import pytest

import helpers
from helpers.page_recipe import run_page_recipe


def tutorial_losses(epochs: int, event_driven: bool = True):
    brainstate.random.seed(0)
    net = helpers.SNN()
    spikes, labels = helpers.poisson_dataset()
    trainer = helpers.Trainer(net, lr=3e-3, event_driven=event_driven)
    with helpers.count_compilations() as compiled:
        losses = trainer.fit(spikes, labels, epochs)
    return losses, compiled.jitted, trainer, spikes, labels


@pytest.mark.slow
def test_dense_loss_history_is_bit_identical_to_the_page_and_events_agree_to_rounding():
    # relations that hold on every machine: the same arithmetic in the same process is bit-identical;
    # a different summation order agrees to rounding (no machine's digits are hard-coded)
    page = run_page_recipe(800)
    dense, dense_compiles, trainer, spikes, labels = tutorial_losses(800, event_driven=False)
    np.testing.assert_array_equal(dense, page["losses"])
    assert page["compilations"] == 2  # the weakly typed bias: a second compilation after the first update
    assert dense_compiles == 1
    assert helpers.accuracy(trainer.net, spikes, labels, "max") == page["accuracy_after"]
    assert trainer.accuracy(spikes, labels) == 1.0

    events, event_compiles, trainer, spikes, labels = tutorial_losses(800)
    assert event_compiles == 1
    # the same sums in another order: equal to rounding at first, then apart by at most a seed's spread
    np.testing.assert_allclose(events[:20], dense[:20], rtol=1e-5)
    assert np.abs(events - dense).max() < 0.02  # notebook 7: final losses over seeds spread by ~0.01 (sd)
    assert trainer.accuracy(spikes, labels) == 1.0


@pytest.mark.slow
def test_training_learns_and_a_model_without_surrogate_does_not():
    brainstate.random.seed(0)
    spikes, labels = helpers.poisson_dataset(n_steps=50, batch_size=32, seed=2)
    learner = helpers.SNN()
    losses = helpers.fit(learner, spikes, labels, epochs=300, lr=1e-2)
    assert losses[0] == pytest.approx(np.log(2), abs=1e-5)
    assert losses[-1] < 0.3

    frozen = helpers.SNN(surrogate=helpers.heaviside)
    w_before = np.asarray(u.get_mantissa(frozen.input_layer.weight.value["weight"]))
    frozen_losses = helpers.Trainer(frozen, lr=1e-2).fit(spikes, labels, 300, epochs_per_call=300)
    w_after = np.asarray(u.get_mantissa(frozen.input_layer.weight.value["weight"]))
    np.testing.assert_array_equal(w_before, w_after)  # no gradient reaches the input layer
    assert frozen_losses[-1] > 0.6  # only the readout bias learns: the class prior


@pytest.mark.slow
def test_loss_and_accuracy_use_the_same_readout(small_batch):
    spikes, labels = small_batch
    net = helpers.SNN()
    helpers.fit(net, spikes, labels, epochs=20, lr=1e-2)
    for method in helpers.READOUTS:
        trainer = helpers.Trainer(net, readout_method=method)
        logits = helpers.readout(net.simulate(spikes), method)
        expected_acc = float(jnp.mean(jnp.argmax(logits, axis=1) == labels))
        assert trainer.accuracy(spikes, labels) == pytest.approx(expected_acc)
        assert trainer.loss(spikes, labels) == pytest.approx(
            float(helpers.cross_entropy(logits, labels)), rel=1e-6
        )


def test_accuracy_compiles_once_per_network(small_batch):
    spikes, labels = small_batch
    net = helpers.SNN()
    helpers.accuracy(net, spikes, labels)
    with helpers.count_compilations() as compiled:
        for _ in range(3):
            helpers.accuracy(net, spikes, labels)
    assert compiled == []


def test_every_entry_point_checks_spikes_and_labels(small_batch):
    """The cases of bad spikes and labels are in test_validation.py; here, that each entry point checks."""
    spikes, labels = small_batch
    net = helpers.SNN()
    trainer = helpers.Trainer(net)
    out_of_range = jnp.array([0, 1, 2, 0, 1, 0])
    calls = [trainer.step, trainer.loss, trainer.accuracy, trainer.fit, trainer.memory_estimate]
    calls += [lambda x, y: helpers.accuracy(net, x, y), lambda x, y: helpers.fit(net, x, y, 1)]
    for call in calls:
        with pytest.raises(ValueError, match=r"labels must lie in \[0, 1\] for 2 classes"):
            call(spikes, out_of_range)
        with pytest.raises(ValueError, match="expects n_inputs=100"):
            call(spikes[:, :, :50], labels)
    with pytest.raises(ValueError, match="batch mismatch: spikes hold 6 examples but labels hold 5"):
        trainer.fit(spikes, labels[:5])


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"epochs": 0}, ValueError, "epochs must be a positive integer"),
        ({"epochs_per_call": 0}, ValueError, "epochs_per_call must be a positive integer"),
        ({"log_every": 0}, ValueError, "log_every must be a positive integer"),
    ],
)
def test_bad_training_options(small_batch, kwargs, error, message):
    spikes, labels = small_batch
    with pytest.raises(error, match=message):
        helpers.Trainer(helpers.SNN()).fit(spikes, labels, **kwargs)


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: helpers.Trainer(object()), TypeError, "net must be a helpers.SNN"),
        (lambda: helpers.Trainer(helpers.SNN(), readout_method="sum"), ValueError, "readout_method must be"),
        (lambda: helpers.Trainer(helpers.SNN(), lr=0.0), ValueError, "lr must be a positive, finite number"),
        (lambda: helpers.Trainer(helpers.SNN(), checkpoint_base=0), ValueError, "checkpoint_base must be"),
        (lambda: helpers.Trainer(helpers.SNN(), event_driven="yes"), TypeError, "event_driven must be True"),
        (lambda: helpers.accuracy(object(), None, None), TypeError, "net must be a helpers.SNN"),
        (lambda: helpers.accuracy(helpers.SNN(), None, None, "sum"), ValueError, "readout_method must be"),
        (
            lambda: helpers.Trainer(helpers.SNN()).reinitialize(2**32),
            ValueError,
            r"seed must be .* 2\*\*32 - 1",
        ),
    ],
)
def test_bad_trainer_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def seeded_trainer(seed: int) -> helpers.Trainer:
    """A trainer of a default network drawn after ``brainstate.random.seed(seed)``."""
    brainstate.random.seed(seed)
    return helpers.Trainer(helpers.SNN(), lr=1e-2)


@pytest.mark.slow
def test_epochs_inside_one_jit_give_the_same_losses(small_batch):
    spikes, labels = small_batch
    one_by_one = seeded_trainer(0).fit(spikes, labels, 30)
    trainer = seeded_trainer(0)
    with helpers.count_compilations() as compiled:
        chunked = trainer.fit(spikes, labels, 30, epochs_per_call=10)
    np.testing.assert_array_equal(chunked, one_by_one)
    assert compiled.jitted == 1  # one program for the 3 chunks


@pytest.mark.slow
def test_reinitialize_equals_a_fresh_trainer_without_recompiling(small_batch):
    spikes, labels = small_batch
    fresh = seeded_trainer(4).fit(spikes, labels, 10)
    trainer = seeded_trainer(0)
    trainer.fit(spikes, labels, 10)
    with helpers.count_compilations() as compiled:
        trainer.reinitialize(4)
        again = trainer.fit(spikes, labels, 10)
    np.testing.assert_array_equal(again, fresh)
    assert compiled.jitted == 0


@pytest.mark.slow
def test_fit_history_records_without_training_on_validation():
    spikes, labels = helpers.pattern_dataset(96, n_classes=3, n_steps=40, n_inputs=30, seed=2)
    train, validation = helpers.split_batch(spikes, labels, 64, 32)
    brainstate.random.seed(0)
    trainer = helpers.Trainer(helpers.SNN(30, 8, 3), lr=1e-2)
    history = trainer.fit_history(train, 30, validation=validation, every=10)
    assert list(history["epoch"]) == [0, 10, 20, 30]
    assert set(history) == {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy"}
    assert history["train_loss"][0] == pytest.approx(np.log(3), abs=0.01)  # nearly undecided
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["val_loss"][-1] == pytest.approx(trainer.loss(*validation))
    assert history["train_loss"][-1] == pytest.approx(trainer.loss(*train))


@pytest.mark.slow
def test_predict_agrees_with_accuracy_and_the_confusion_matrix(small_batch):
    spikes, labels = small_batch
    net = helpers.SNN(100, 8, 3)
    labels = labels + (np.arange(6) % 3 == 2)  # three classes
    trainer = helpers.Trainer(net, readout_method="max")
    trainer.fit(spikes, labels, 10, epochs_per_call=10)
    predictions = trainer.predict(spikes)
    assert predictions.shape == (6,) and predictions.dtype.kind == "i"
    np.testing.assert_array_equal(predictions, net.predict(spikes, "max"))  # events or dense: same class
    assert trainer.accuracy(spikes, labels) == pytest.approx(np.mean(predictions == np.asarray(labels)))
    matrix = helpers.confusion_matrix(predictions, labels, 3)
    assert matrix.sum() == 6 and np.trace(matrix) / 6 == pytest.approx(trainer.accuracy(spikes, labels))


@pytest.mark.slow
def test_checkpointed_loop_saves_memory_and_agrees():
    """100 steps in blocks of 10: BPTT keeps about a tenth of the states; the losses agree to rounding
    (the second loss depends on the first update, hence on the gradient)."""
    spikes, labels = helpers.poisson_dataset(100, 8, 100, 20 * u.Hz, seed=1)
    results = {}
    for base in (None, 10):
        brainstate.random.seed(0)
        trainer = helpers.Trainer(helpers.SNN(n_hidden=32), lr=1e-2, checkpoint_base=base)
        results[base] = (trainer.memory_estimate(spikes, labels), trainer.fit(spikes, labels, 2))
    plain, checkpointed = results[None], results[10]
    assert checkpointed[0]["temporaries"] < plain[0]["temporaries"] / 2
    np.testing.assert_allclose(checkpointed[1], plain[1], rtol=1e-5)


@pytest.mark.slow
def test_memory_estimate_of_several_epochs_per_call(small_batch):
    spikes, labels = small_batch
    trainer = helpers.Trainer(helpers.SNN())
    one, ten = (
        trainer.memory_estimate(spikes, labels),
        trainer.memory_estimate(spikes, labels, epochs_per_call=10),
    )
    assert set(one) == set(ten) == {"arguments", "outputs", "temporaries", "total"}
    assert ten["outputs"] > one["outputs"]  # ten losses come back instead of one


@pytest.mark.slow
def test_prepare_input_converts_to_events_and_both_modes_train_alike():
    brainstate.random.seed(0)
    spikes, labels = helpers.poisson_dataset(n_steps=40, batch_size=32, seed=2)
    trainer = helpers.Trainer(helpers.SNN())
    events = trainer.prepare_input(spikes)
    assert isinstance(events, helpers.SpikeEvents) and trainer.prepare_input(events) is events
    np.testing.assert_array_equal(events.to_dense(), np.asarray(spikes))
    assert isinstance(trainer.prepare_input(np.asarray(spikes)), helpers.SpikeEvents)
    dense = helpers.Trainer(helpers.SNN(), event_driven=False)
    assert dense.prepare_input(spikes) is spikes
    dense.reinitialize(0), trainer.reinitialize(0)
    from_events = trainer.fit(events, labels, 20)
    np.testing.assert_allclose(from_events, dense.fit(spikes, labels, 20), rtol=1e-5)
    trainer.reinitialize(0)
    np.testing.assert_array_equal(trainer.fit(spikes, labels, 20), from_events)  # converted or given: same


# -- reproducibility and failure ------------------------------------------------------------------
RUN_ONCE = """
import brainstate, brainunit as u, hashlib, helpers
brainstate.environ.set(dt=1.0 * u.ms)
brainstate.random.seed(0)
net = helpers.SNN()
spikes, labels = helpers.poisson_dataset(n_steps=30, batch_size=16)
trainer = helpers.Trainer(net)
losses = trainer.fit(spikes, labels, 20)
print(hashlib.sha256(losses.tobytes()).hexdigest(), trainer.accuracy(spikes, labels))
"""


def run_once_in_this_process():
    brainstate.random.seed(0)
    net = helpers.SNN()
    spikes, labels = helpers.poisson_dataset(n_steps=30, batch_size=16)
    trainer = helpers.Trainer(net)
    return trainer.fit(spikes, labels, 20), trainer.accuracy(spikes, labels)


@pytest.mark.slow
def test_same_seed_same_bits_in_two_runs_and_in_another_process():
    """Twice here, once in a fresh interpreter (which loads the compiled programs from the persistent
    cache that conftest.py sets up, so it costs little more than its imports)."""
    first, acc_first = run_once_in_this_process()
    second, acc_second = run_once_in_this_process()
    np.testing.assert_array_equal(first, second)
    assert acc_first == acc_second
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(
        [sys.executable, "-c", RUN_ONCE], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == [hashlib.sha256(first.tobytes()).hexdigest(), str(acc_first)]


def test_divergence_stops_with_the_epoch(small_batch):
    spikes, labels = small_batch
    # natively the runaway loss overflows to NaN; compiled for SSE4.2 it stays finite near 1e30:
    # both are divergence, on every CPU
    became = r"the loss became (-?nan|-?inf|\d(\.\d+)?e\+\d+) at epoch \d+"
    with pytest.raises(FloatingPointError, match=became + r"; lower the learning rate \(lr=1e\+30\)"):
        helpers.fit(helpers.SNN(), spikes, labels, epochs=50, lr=1e30)
    trainer = helpers.Trainer(helpers.SNN())
    with pytest.raises(FloatingPointError, match="became nan at epoch 12"):
        trainer.check_finite(np.array([0.5, np.nan]), first_epoch=11)
    with pytest.raises(FloatingPointError, match=r"became 2e\+06 at epoch 13"):
        trainer.check_finite(np.array([0.5, 1e6, 2e6]), first_epoch=11)  # 1e6 nats is the last sane loss


def test_numpy_scalar_learning_rate(small_batch):
    trainer = helpers.Trainer(helpers.SNN(), lr=np.float32(0.5))
    assert trainer.lr == 0.5 and type(trainer.lr) is float
    assert np.isfinite(trainer.fit(*small_batch, 2)).all()


def test_a_run_that_blows_up_without_nan_warns_with_the_learning_rate(small_batch):
    """lr 1e3 sends this network's loss from about ln 2 to thousands of nats (3224 here, on AVX2 and
    SSE4.2 alike), far from the 7 nats that warn and from DIVERGED_LOSS: a warning, not an error."""
    spikes, labels = small_batch
    brainstate.random.seed(1)
    with pytest.warns(helpers.training.LossBlowUpWarning) as caught:
        losses = helpers.Trainer(helpers.SNN(), lr=1e3).fit(spikes, labels, 30)
    assert losses[-1] > 10 * losses[0]
    message = str(caught[0].message)
    assert re.fullmatch(
        r"training blew up: the loss rose from 0\.\d+ to \S+ over 30 epochs; "
        r"lower the learning rate \(lr=1000; try 100\)",
        message,
    ), message


def test_blow_up_rule():
    trainer = helpers.Trainer(helpers.SNN(), lr=10.0)
    assert "lr=10; try 1" in trainer.blow_up([0.69, 5.0, 31.6])
    assert trainer.blow_up([0.69, 6.0]) is None  # below 10x the start
    assert trainer.blow_up([0.001, 0.05]) is None  # 50x a tiny start, but far below chance (ln 2)
    assert trainer.blow_up([31.6]) is None
