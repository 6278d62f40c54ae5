"""helpers.runs.fit_runs: many training runs in one vmapped, jitted program."""

import brainstate
import braintools
import brainunit as u
import numpy as np
import pytest

import helpers
from helpers.model import SwitchableSurrogate
from helpers.runs import fit_runs


@pytest.fixture
def data():
    return helpers.poisson_dataset(n_steps=30, batch_size=16, rate=40.0 * u.Hz, seed=3)


@pytest.mark.slow
def test_each_run_matches_its_seed_trained_alone(data):
    spikes, labels = data
    brainstate.random.seed(0)
    trainer = helpers.Trainer(helpers.SNN())
    result = fit_runs(trainer, [0, 1, 2], (spikes, labels), 30, evaluate={"same": (spikes, labels)})
    assert result["losses"].shape == (3, 30)
    for i, seed in enumerate([0, 1, 2]):
        trainer.reinitialize(seed)
        alone = trainer.fit(spikes, labels, 30, epochs_per_call=30)
        np.testing.assert_allclose(result["losses"][i], alone, atol=1e-4)  # equal to rounding
        alone_accuracy = trainer.accuracy(spikes, labels)
        np.testing.assert_allclose(result["train_accuracy"][i], alone_accuracy, atol=1 / 16 + 1e-9)
    np.testing.assert_array_equal(result["same_accuracy"], result["train_accuracy"])


@pytest.mark.slow
def test_fit_runs_leaves_the_trainer_as_it_was(data):
    spikes, labels = data
    brainstate.random.seed(0)
    trainer = helpers.Trainer(helpers.SNN())
    weights = np.asarray(trainer.net.input_layer.weight.value["weight"].mantissa)
    fit_runs(trainer, [5, 6], (spikes, labels), 5)
    np.testing.assert_array_equal(weights, trainer.net.input_layer.weight.value["weight"].mantissa)
    assert trainer.fit(spikes, labels, 2).shape == (2,)  # still trains alone


@pytest.mark.slow
def test_per_run_states_and_per_run_data(data):
    spikes, labels = data
    S = braintools.surrogate
    switch = SwitchableSurrogate([S.ReluGrad()])
    trainer = helpers.Trainer(helpers.SNN(surrogate=switch), event_driven=False)
    stacked = (np.stack([spikes, spikes]), np.stack([labels, labels]))
    result = fit_runs(
        trainer,
        [0, 0],
        stacked,
        20,
        per_run_data=True,
        states=[switch.weights],
        values=[[switch.one_hot(0), switch.one_hot(None)]],
    )
    with_surrogate, without = result["losses"]
    assert with_surrogate[-1] < without[-1]  # the true derivative trains only the readout bias
    with pytest.raises(ValueError, match="one value per run"):
        fit_runs(trainer, [0, 1], (spikes, labels), 2, states=[switch.weights], values=[[switch.one_hot(0)]])
    with pytest.raises(ValueError, match="per_run_data"):
        fit_runs(trainer, [0, 1, 2], stacked, 2, per_run_data=True)


@pytest.mark.slow
def test_per_run_data_event_driven_equals_dense(data):
    spikes, labels = data
    other = helpers.poisson_dataset(n_steps=30, batch_size=16, rate=20.0 * u.Hz, seed=4)
    stacked = (np.stack([spikes, other[0]]), np.stack([labels, other[1]]))
    results = {}
    for event_driven in (True, False):
        brainstate.random.seed(0)
        trainer = helpers.Trainer(helpers.SNN(), event_driven=event_driven)
        results[event_driven] = fit_runs(trainer, [0, 1], stacked, 15, per_run_data=True)
    np.testing.assert_allclose(results[True]["losses"], results[False]["losses"], atol=1e-5)
    np.testing.assert_array_equal(results[True]["train_accuracy"], results[False]["train_accuracy"])


@pytest.mark.slow
def test_runs_split_over_threads_equal_one_call_to_rounding(data):
    spikes, labels = data
    other = helpers.poisson_dataset(n_steps=30, batch_size=16, rate=20.0 * u.Hz, seed=4)
    stacked = (np.stack([spikes, other[0], spikes]), np.stack([labels, other[1], labels]))
    brainstate.random.seed(0)
    trainer = helpers.Trainer(helpers.SNN())  # event-driven: each run's events, padded to one length
    weights = np.asarray(trainer.net.input_layer.weight.value["weight"].mantissa)
    one, split = (
        fit_runs(trainer, [0, 1, 2], stacked, 15, per_run_data=True, evaluate={"again": stacked}, threads=n)
        for n in (1, 2)
    )
    assert split["losses"].shape == (3, 15) and set(split) == set(one)
    np.testing.assert_allclose(split["losses"], one["losses"], atol=1e-5)
    np.testing.assert_array_equal(split["train_accuracy"], one["train_accuracy"])
    np.testing.assert_array_equal(split["again_accuracy"], one["again_accuracy"])
    np.testing.assert_array_equal(weights, trainer.net.input_layer.weight.value["weight"].mantissa)
    # shared data in groups of unequal sizes (2 + 1: a second program), and more threads than runs
    one, split = (fit_runs(trainer, [0, 1, 2], (spikes, labels), 3, threads=n) for n in (1, 2))
    np.testing.assert_allclose(split["losses"], one["losses"], atol=1e-5)
    shared = fit_runs(trainer, [0, 1], (spikes, labels), 3, threads=5)
    np.testing.assert_allclose(shared["losses"], one["losses"][:2], atol=1e-5)
    for bad, error in ((0, ValueError), (-1, ValueError), (2.0, TypeError)):
        with pytest.raises(error, match="threads"):
            fit_runs(trainer, [0, 1], (spikes, labels), 3, threads=bad)
    with brainstate.environ.context(precision=64), pytest.raises(ValueError, match="precision 32"):
        fit_runs(trainer, [0, 1], (spikes, labels), 3, threads=2)
    # a refused call leaves the trainer's weights as they were
    np.testing.assert_array_equal(weights, trainer.net.input_layer.weight.value["weight"].mantissa)


@pytest.mark.slow
def test_a_second_call_reuses_the_compiled_program(data):
    spikes, labels = data
    trainer = helpers.Trainer(helpers.SNN())
    fit_runs(trainer, [0, 1], (spikes, labels), 4)
    with helpers.count_compilations() as compiled:
        again = fit_runs(trainer, [2, 3], (spikes, labels), 4)
    assert compiled.jitted == 0 and again["losses"].shape == (2, 4)


@pytest.mark.slow
def test_the_compiled_runs_are_freed_with_their_trainer(data):
    import gc
    import weakref

    spikes, labels = data
    trainer = helpers.Trainer(helpers.SNN())
    fit_runs(trainer, [0, 1], (spikes, labels), 2)
    alive = weakref.ref(trainer.net)
    del trainer
    gc.collect()
    assert alive() is None


@pytest.mark.parametrize("bad", [1.7, -1, 2**32])
def test_seeds_follow_the_32_bit_rule(data, bad):
    with pytest.raises(ValueError, match=r"every seed must be an integer from 0 to 2\*\*32 - 1"):
        fit_runs(helpers.Trainer(helpers.SNN()), [0, bad], data, 1)


def test_map_in_threads_keeps_the_order_and_the_settings():
    import threading

    from helpers.runs import map_in_threads

    main = threading.current_thread()

    def report(item):
        return item * 2, brainstate.environ.get_dt(), threading.current_thread() is main

    with brainstate.environ.context(dt=0.5 * u.ms):
        threaded = map_in_threads(report, range(5), threads=2)
        plain = map_in_threads(report, range(5), threads=1)
    assert [r[0] for r in threaded] == [0, 2, 4, 6, 8] == [r[0] for r in plain]
    assert all(r[1] == 0.5 * u.ms for r in threaded + plain)  # dt follows the workers
    assert not any(r[2] for r in threaded) and all(r[2] for r in plain)
    assert map_in_threads(report, [], threads=2) == []


def test_map_in_threads_raises_the_first_error_and_drops_the_calls_not_started():
    from helpers.runs import map_in_threads

    called = []

    def fail_on_one(item):
        called.append(item)
        if item == 1:
            raise KeyError("one")
        return item

    with pytest.raises(KeyError, match="one"):
        map_in_threads(fail_on_one, range(50), threads=2)
    assert len(called) < 50
    for bad, error in ((0, ValueError), (2.0, TypeError)):
        with pytest.raises(error, match="threads"):
            map_in_threads(str, [1, 2], threads=bad)
    with pytest.raises(TypeError, match="callable"):
        map_in_threads("str", [1, 2])
    with brainstate.environ.context(precision=64), pytest.raises(ValueError, match="precision 32"):
        map_in_threads(str, [1, 2], threads=2)


@pytest.mark.slow
def test_reinitialize_from_threads_draws_each_seeds_weights():
    """Two trainers of two networks re-initialised at once from two threads get the weights that the
    same seeds give one after the other: the seeding and the drawing hold one lock."""
    from helpers.runs import map_in_threads

    trainers = [helpers.Trainer(helpers.SNN(n, 6, 2)) for n in (5, 7)]

    def weights_of_seeds(trainer):
        drawn = []
        for seed in range(20):
            trainer.reinitialize(seed)
            drawn.append(np.asarray(trainer.net.input_layer.weight.value["weight"].mantissa))
        return drawn

    threaded = map_in_threads(weights_of_seeds, trainers, threads=2)
    for trainer, drawn in zip(trainers, threaded, strict=True):
        for seed, weights in enumerate(drawn):
            trainer.reinitialize(seed)
            np.testing.assert_array_equal(weights, trainer.net.input_layer.weight.value["weight"].mantissa)
