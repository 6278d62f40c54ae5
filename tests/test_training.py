import brainstate
import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import helpers
from helpers.page import run_page_recipe


def tutorial_losses(epochs: int, event_driven: bool = True):
    brainstate.random.seed(0)
    net = helpers.SNN()
    spikes, labels = helpers.poisson_dataset()
    trainer = helpers.Trainer(net, lr=3e-3, event_driven=event_driven)
    with helpers.count_compilations() as compiled:
        losses = trainer.fit(spikes, labels, epochs)
    return losses, compiled.jitted, trainer, spikes, labels


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


def test_training_learns_and_a_model_without_surrogate_does_not():
    brainstate.random.seed(0)
    spikes, labels = helpers.poisson_dataset(n_steps=50, batch_size=32, seed=2)
    learner = helpers.SNN()
    losses = helpers.fit(learner, spikes, labels, epochs=300, lr=1e-2)
    assert losses[0] == pytest.approx(np.log(2), abs=1e-5)
    assert losses[-1] < 0.3

    frozen = helpers.SNN(surrogate=helpers.heaviside)
    w_before = np.asarray(u.get_mantissa(frozen.input_layer.weight.value["weight"]))
    frozen_losses = helpers.fit(frozen, spikes, labels, epochs=300, lr=1e-2)
    w_after = np.asarray(u.get_mantissa(frozen.input_layer.weight.value["weight"]))
    np.testing.assert_array_equal(w_before, w_after)  # no gradient reaches the input layer
    assert frozen_losses[-1] > 0.6  # only the readout bias learns: the class prior


def test_readouts():
    outputs = jnp.arange(24.0).reshape(4, 3, 2)
    np.testing.assert_allclose(helpers.readout(outputs), outputs.mean(0))
    np.testing.assert_allclose(helpers.readout(outputs, "max"), outputs.max(0))
    np.testing.assert_allclose(helpers.readout(outputs, "last"), outputs[-1])
    with pytest.raises(ValueError, match="readout method must be one of"):
        helpers.readout(outputs, "median")
    with pytest.raises(ValueError, match=r"shape \[T, B, C\]"):
        helpers.readout(outputs[0])


def test_cross_entropy_of_equal_logits_is_ln_c():
    for classes in (2, 5):
        loss = helpers.cross_entropy(jnp.zeros((7, classes)), jnp.zeros(7, jnp.int32))
        assert float(loss) == pytest.approx(np.log(classes), rel=1e-6)


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


def test_count_compilations_hears_compilations_inside_the_block_only():
    @brainstate.transform.jit
    def brainstate_program(x):
        return x * 3.0

    seven, five = np.ones(7, np.float32), np.ones(5, np.float32)
    with helpers.count_compilations() as compiled:
        brainstate_program(seven)  # compiles: a brainstate program
        brainstate_program(seven)  # cached: nothing compiles
        jax.jit(lambda x: x - 1.0)(five)  # compiles: a plain JAX program
    assert sorted(compiled) == ["jit(<lambda>)", "jit(jaxpr_call)"]
    assert compiled.jitted == 1
    helpers.SNN().simulate(jnp.zeros((3, 2, 100)))  # compiles after the block: not heard
    assert len(compiled) == 2


@pytest.mark.parametrize(
    "labels, error, message",
    [
        (jnp.array([0, 1, 2, 0, 1, 0]), ValueError, r"labels must lie in \[0, 1\] for 2 classes"),
        (jnp.array([0, 1, -1, 0, 1, 0]), ValueError, r"labels must lie in \[0, 1\]"),
        (jnp.zeros((6, 1), jnp.int32), ValueError, r"labels must have shape \[B\]"),
        (jnp.zeros(5, jnp.int32), ValueError, "batch mismatch: spikes hold 6 examples but labels hold 5"),
        (jnp.zeros(6), TypeError, "labels must be integers"),
        ([0, 1, 0, 1, 0, 1], TypeError, "labels must be an integer array"),
    ],
)
def test_bad_labels_are_refused(small_batch, labels, error, message):
    spikes, _ = small_batch
    net = helpers.SNN()
    with pytest.raises(error, match=message):
        helpers.fit(net, spikes, labels, epochs=1)
    with pytest.raises(error, match=message):
        helpers.accuracy(net, spikes, labels)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"epochs": 0}, ValueError, "epochs must be a positive integer"),
        ({"lr": 0.0}, ValueError, "lr must be a positive, finite number"),
        ({"lr": float("inf")}, ValueError, "lr must be a positive, finite number"),
    ],
)
def test_bad_training_options(small_batch, kwargs, error, message):
    spikes, labels = small_batch
    with pytest.raises(error, match=message):
        helpers.fit(helpers.SNN(), spikes, labels, **kwargs)


def test_trainer_refuses_other_models_and_readouts():
    with pytest.raises(TypeError, match="net must be a helpers.SNN"):
        helpers.Trainer(object())
    with pytest.raises(ValueError, match="readout_method must be one of"):
        helpers.Trainer(helpers.SNN(), readout_method="sum")


def test_epochs_inside_one_jit_give_the_same_losses(small_batch):
    spikes, labels = small_batch
    brainstate.random.seed(0)
    one_by_one = helpers.Trainer(helpers.SNN(), lr=1e-2).fit(spikes, labels, 30)
    brainstate.random.seed(0)
    trainer = helpers.Trainer(helpers.SNN(), lr=1e-2)
    with helpers.count_compilations() as compiled:
        chunked = trainer.fit(spikes, labels, 30, epochs_per_call=10)
    np.testing.assert_array_equal(chunked, one_by_one)
    assert compiled.jitted == 1  # one program for the 3 chunks


def test_reinitialize_equals_a_fresh_trainer_without_recompiling(small_batch):
    spikes, labels = small_batch
    brainstate.random.seed(4)
    fresh = helpers.Trainer(helpers.SNN(), lr=1e-2).fit(spikes, labels, 10)
    brainstate.random.seed(0)
    trainer = helpers.Trainer(helpers.SNN(), lr=1e-2)
    trainer.fit(spikes, labels, 10)
    with helpers.count_compilations() as compiled:
        trainer.reinitialize(4)
        again = trainer.fit(spikes, labels, 10)
    np.testing.assert_array_equal(again, fresh)
    assert compiled.jitted == 0
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        trainer.reinitialize(-1)


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


def test_confusion_matrix_and_predict(small_batch):
    spikes, labels = small_batch
    trainer = helpers.Trainer(helpers.SNN())
    predictions = trainer.predict(spikes)
    assert predictions.shape == (6,)
    matrix = helpers.confusion_matrix(predictions, labels, 2)
    assert matrix.sum() == 6 and np.trace(matrix) / 6 == pytest.approx(trainer.accuracy(spikes, labels))
    np.testing.assert_array_equal(
        helpers.confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], 3), [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    )
    with pytest.raises(ValueError, match="same shape"):
        helpers.confusion_matrix([0, 1], [0], 2)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 1\]"):
        helpers.confusion_matrix([0, 1], [0, 2], 2)


def test_checkpointed_loop_saves_memory_and_agrees():
    spikes, labels = helpers.poisson_dataset(200, 16, 100, 20 * u.Hz, seed=1)
    results = {}
    for base in (None, 10):
        brainstate.random.seed(0)
        trainer = helpers.Trainer(helpers.SNN(n_hidden=64), lr=1e-2, checkpoint_base=base)
        results[base] = (trainer.memory_estimate(spikes, labels), trainer.fit(spikes, labels, 5))
    plain, checkpointed = results[None], results[10]
    assert set(plain[0]) == {"arguments", "outputs", "temporaries", "total"}
    assert checkpointed[0]["temporaries"] < plain[0]["temporaries"] / 2
    np.testing.assert_allclose(checkpointed[1], plain[1], rtol=1e-5)
    with pytest.raises(ValueError, match="checkpoint_base must be a positive integer"):
        helpers.Trainer(helpers.SNN(), checkpoint_base=0)
