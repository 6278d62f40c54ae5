"""Online learning with braintrace (helpers.online): the same network, exact where D-RTRL must be exact,
memory that does not grow with the number of steps, and clear errors."""

import json

import brainstate
import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import helpers
from helpers.cli import main as cli_main
from helpers.online import compile_learner, cosine

N_IN, N_HIDDEN = 20, 8


@pytest.fixture(scope="module")
def batch():
    brainstate.environ.set(dt=1.0 * u.ms)
    brainstate.random.seed(1)
    return helpers.poisson_dataset(60, 16, N_IN, 40 * u.Hz)


def network(seed=0, **options):
    brainstate.random.seed(seed)
    return helpers.SNN(N_IN, N_HIDDEN, 2, online=True, **options)


def flat(grads):
    return np.concatenate([np.ravel(u.get_magnitude(g)) for g in jax.tree.leaves(grads)])


def gradient(learning, spikes, labels, *, seed=0, direct_input=False, **options):
    net = network(seed, **options)
    if direct_input:  # the weights drive the membrane directly: no synapse between them
        net.synapse = lambda current: current
    return helpers.OnlineTrainer(net, learning).gradient(spikes, labels)


@pytest.mark.slow
def test_online_layers_leave_bptt_bit_identical(batch):
    spikes, labels = batch
    for options in ({}, {"recurrent": True}):
        losses = []
        for online in (False, True):
            brainstate.random.seed(0)
            net = helpers.SNN(N_IN, N_HIDDEN, 2, online=online, **options)
            losses.append(helpers.Trainer(net, lr=1e-2, event_driven=False).fit(spikes, labels, 5))
        np.testing.assert_array_equal(losses[0], losses[1])


@pytest.mark.slow
def test_online_bptt_trains_the_per_step_loss(batch):
    spikes, labels = batch
    net = network()
    trainer = helpers.OnlineTrainer(net, "bptt", lr=1e-2)
    outputs = net.simulate(jnp.asarray(spikes))
    assert trainer.loss(spikes, labels) == pytest.approx(
        float(helpers.per_step_cross_entropy(outputs, labels)), rel=1e-6
    )


@pytest.mark.parametrize("steps", [1, 5, 60])
@pytest.mark.slow
def test_d_rtrl_equals_bptt_where_it_is_exact(batch, steps):
    """No recurrence, the weights driving the membrane directly and a readout without memory (its
    decay exp(-dt / 1 us) is 0 in float32): every hidden state depends on a weight only through its
    own past, and the loss of a step only on that step's states, so D-RTRL's trace is the exact
    gradient."""
    spikes, labels = batch
    spikes = spikes[:steps]
    online = flat(gradient("d_rtrl", spikes, labels, direct_input=True, tau_out=1e-3 * u.ms))
    bptt = flat(gradient("bptt", spikes, labels, direct_input=True, tau_out=1e-3 * u.ms))
    assert np.abs(bptt).max() > 0
    np.testing.assert_allclose(online, bptt, rtol=1e-4, atol=1e-4 * np.abs(bptt).max())  # to rounding


@pytest.mark.slow
def test_one_step_through_the_synapse_counts_the_step_twice(batch):
    """With the synapse between weights and membrane (the tutorial's network), the current and the
    potential both carry the trace of the same step: D-RTRL's first-step gradient is exactly twice
    BPTT's (a limitation of braintrace 0.2.6 that notebook 14 shows)."""
    spikes, labels = batch
    online = flat(gradient("d_rtrl", spikes[:1], labels))
    bptt = flat(gradient("bptt", spikes[:1], labels))
    np.testing.assert_allclose(online, 2 * bptt, rtol=1e-4, atol=1e-6 * np.abs(bptt).max())


@pytest.mark.slow
def test_approximate_gradients_point_the_same_way(batch):
    spikes, labels = batch
    bptt = gradient("bptt", spikes, labels)
    for learning in ("d_rtrl", "es_d_rtrl", "eprop"):
        assert 0.2 < cosine(gradient(learning, spikes, labels), bptt) < 1.0


@pytest.mark.slow
def test_memory_does_not_grow_with_steps():
    brainstate.environ.set(dt=1.0 * u.ms)
    temporaries = {}
    for learning in ("d_rtrl", "es_d_rtrl", "bptt"):
        trainer = helpers.OnlineTrainer(network(), learning)
        for steps in (100, 1000):
            brainstate.random.seed(2)
            spikes, labels = helpers.poisson_dataset(steps, 8, N_IN, 20 * u.Hz)
            temporaries[learning, steps] = trainer.memory_estimate(spikes, labels)["temporaries"]
    for learning in ("d_rtrl", "es_d_rtrl"):
        assert temporaries[learning, 1000] <= 1.1 * temporaries[learning, 100]
    assert temporaries["bptt", 1000] > 5 * temporaries["bptt", 100]


@pytest.mark.slow
def test_online_training_lowers_the_loss_and_resumes_from_a_checkpoint(batch, tmp_path):
    spikes, labels = batch
    trainer = helpers.OnlineTrainer(network(), "d_rtrl", lr=1e-2)
    losses = trainer.fit(spikes, labels, 6)
    assert losses[-1] < losses[0]
    helpers.save_checkpoint(tmp_path / "c.msgpack", trainer.net, trainer.optimizer, epoch=6, losses=losses)
    continued = trainer.fit(spikes, labels, 3)
    resumed = helpers.OnlineTrainer(network(seed=5), "d_rtrl", lr=1e-2)
    helpers.load_checkpoint(tmp_path / "c.msgpack", resumed.net, resumed.optimizer)
    np.testing.assert_array_equal(resumed.fit(spikes, labels, 3), continued)


@pytest.mark.slow
@pytest.mark.parametrize("learning", ["bptt", "d_rtrl"])
def test_epochs_in_one_program_train_like_one_at_a_time(batch, learning):
    """Regression: ``fit(..., epochs_per_call=n)`` failed on an online network (its states, kept since it
    was built, entered the loop over epochs with another batch's shape)."""
    spikes, labels = batch
    losses = []
    for per_call in (1, 3):
        trainer = helpers.OnlineTrainer(network(), learning, lr=1e-2)
        trainer.accuracy(spikes[:, :5], labels[:5])  # leave the states with another batch size
        losses.append(trainer.fit(spikes, labels, 3, epochs_per_call=per_call))
    np.testing.assert_array_equal(losses[0], losses[1])


@pytest.mark.slow
def test_a_program_compiles_once_whatever_shape_the_states_were_left_in(batch):
    """Regression: an online network's states are inputs of every compiled program; built for one
    example (or left at another batch's size by scoring), they made the first training step, or the
    first epoch after an evaluation, compile a second time."""
    spikes, labels = batch
    trainer = helpers.OnlineTrainer(network(), "bptt", lr=1e-2)
    trainer.step(spikes, labels)  # compiles the step
    trainer.accuracy(spikes[:, :5], labels[:5])  # leaves the states at 5 examples
    with helpers.count_compilations() as compiled:
        trainer.step(spikes, labels)
        trainer.step(spikes, labels)
    assert compiled.jitted == 0
    minibatch = helpers.OnlineMinibatchTrainer(network(), "bptt", lr=1e-2)
    scored = {"validation": (spikes[:, :5], labels[:5]), "eval_batch_size": 5}
    minibatch.fit((spikes, labels), 1, batch_size=8, **scored)
    with helpers.count_compilations() as compiled:
        minibatch.fit((spikes, labels), 2, batch_size=8, **scored)
    assert compiled.jitted == 0


@pytest.mark.slow
def test_online_minibatches(batch):
    spikes, labels = batch
    trainer = helpers.OnlineMinibatchTrainer(network(), "es_d_rtrl", lr=1e-2)
    history = trainer.fit((spikes, labels), 2, batch_size=6, validation=(spikes, labels))
    assert history["train_loss"].shape == (2,) and np.isfinite(history["val_loss"]).all()
    assert trainer.evaluate((spikes, labels))["predictions"].shape == (16,)


def test_bad_names_and_unsupported_options_are_refused():
    brainstate.environ.set(dt=1.0 * u.ms)
    with pytest.raises(ValueError, match="learning must be one of"):
        helpers.OnlineTrainer(network(), "rtrl")
    with pytest.raises(ValueError, match="online=True"):
        helpers.OnlineTrainer(helpers.SNN(N_IN, N_HIDDEN, 2), "d_rtrl")
    with pytest.raises(ValueError, match="time constants"):
        helpers.OnlineTrainer(network(train_tau_mem=True), "d_rtrl")
    with pytest.raises(ValueError, match="dense input"):
        helpers.OnlineTrainer(network(), "d_rtrl", event_driven=True)
    with pytest.raises(ValueError, match="decay must be below 1"):
        helpers.OnlineTrainer(network(), "es_d_rtrl", decay=1.5)
    with pytest.raises(ValueError, match="no online learner"):
        compile_learner(network(), "bptt", 4)
    trainer = helpers.OnlineTrainer(network(), "d_rtrl")
    with pytest.raises(ValueError, match="SpikeEvents"):
        trainer.prepare_input(helpers.spike_events(np.zeros((3, 2, N_IN), bool)))


def read_losses(folder):
    return (folder / "history.csv").read_text().splitlines()[1:]


@pytest.mark.slow
@pytest.mark.parametrize("learning", ["bptt", "d_rtrl", "es_d_rtrl"])
def test_command_line_trains_online_and_resumes_bit_identically(tmp_path, learning, capsys):
    common = ["--steps", "30", "--batch", "8", "--rate", "20", "--lr", "0.01", "--no-progress"]
    first = ["train", *common, "--learning", learning, "--epochs", "3", "--out", str(tmp_path / "a")]
    assert cli_main(first) == 0
    checkpoint = str(tmp_path / "a" / "checkpoint.msgpack")
    resume = ["train", "--resume", checkpoint, "--epochs", "5", "--out", str(tmp_path / "b"), "--no-progress"]
    assert cli_main(resume) == 0
    straight = ["train", *common, "--learning", learning, "--epochs", "5", "--out", str(tmp_path / "c")]
    assert cli_main(straight) == 0
    assert read_losses(tmp_path / "b") == read_losses(tmp_path / "c")  # the same text, digit for digit
    assert read_losses(tmp_path / "b")[:3] == read_losses(tmp_path / "a")
    assert json.loads((tmp_path / "b" / "run.json").read_text())["settings"]["learning"] == learning
    capsys.readouterr()
    other = "d_rtrl" if learning == "bptt" else "bptt"
    with pytest.raises(SystemExit) as stop:  # the checkpoint's rule, not another
        cli_main(["train", "--resume", checkpoint, "--epochs", "5", "--learning", other,
                  "--out", str(tmp_path / "d")])  # fmt: skip
    assert stop.value.code == 2 and "--learning" in capsys.readouterr().err.splitlines()[-1]
    with pytest.raises(SystemExit) as stop:
        cli_main(["train", "--learning", "rtrl", "--out", str(tmp_path / "e")])
    assert stop.value.code == 2 and "invalid choice: 'rtrl'" in capsys.readouterr().err


@pytest.mark.slow
def test_command_line_trains_digits_online(tmp_path, capsys):
    args = ["train", "--dataset", "digits", "--learning", "d_rtrl", "--epochs", "1", "--hidden", "16"]
    assert cli_main([*args, "--no-progress", "--out", str(tmp_path / "d")]) == 0
    summary = json.loads((tmp_path / "d" / "run.json").read_text())
    assert summary["settings"]["learning"] == "d_rtrl" and 0 <= summary["test_accuracy"] <= 1


@pytest.mark.slow
def test_a_trained_online_network_scores_what_it_trained_to(batch):
    """Regression: an online network whose states were first created inside the compiled training
    step then ran silent when evaluated (reset in place), so BPTT of the per-step loss trained while
    every score stayed at chance. Its loss after training equals a plain network's with its weights."""
    spikes, labels = batch
    trainer = helpers.OnlineTrainer(network(), "bptt", lr=1e-2)
    losses = trainer.fit(spikes, labels, 3)
    plain = helpers.SNN(N_IN, N_HIDDEN, 2)
    helpers.TrainingCore(plain).load_weights(trainer.weights())
    expected = float(helpers.per_step_cross_entropy(plain.simulate(jnp.asarray(spikes)), labels))
    assert trainer.loss(spikes, labels) == pytest.approx(expected, rel=1e-5)
    assert losses[-1] != pytest.approx(losses[0], rel=1e-4)  # it trained
    assert np.asarray(trainer.net.record(jnp.asarray(spikes))["spikes"]).sum() > 0


def test_command_line_counts_the_traces_in_its_memory_estimate(tmp_path, capsys, monkeypatch):
    from helpers import cli as cli_module

    sizes = ["--steps", "10", "--batch", "4", "--inputs", "100", "--hidden", "4", "--epochs", "2"]
    needed = cli_module.training_memory(10, 4, 100, 4, 2, 5.0, epochs=2)["total"]
    # room for BPTT, not for the traces (8 bytes x 4 examples x 410 weights)
    monkeypatch.setattr(cli_module, "available_memory", lambda: needed + 1000)
    with pytest.raises(SystemExit) as stop:
        cli_main(["train", *sizes, "--learning", "d_rtrl", "--out", str(tmp_path / "o")])
    message = capsys.readouterr().err.splitlines()[-1]
    assert stop.value.code == 2 and "training needs about" in message and "memory" in message
    assert not (tmp_path / "o").exists()


def readout_gradient_by_finite_difference(trainer, spikes, labels, eps):
    """The central finite difference of the trainer's loss with respect to every readout weight and bias."""
    state = trainer.params[("readout_layer", "weight")]
    base = dict(state.value)
    slopes = []
    try:
        for name in ("weight", "bias"):
            values = np.asarray(base[name])
            for index in np.ndindex(values.shape):
                losses = []
                for sign in (1, -1):
                    moved = values.copy()
                    moved[index] += sign * eps
                    state.value = {**base, name: jnp.asarray(moved)}
                    losses.append(trainer.loss(spikes, labels))
                slopes.append((losses[0] - losses[1]) / (2 * eps))
    finally:
        state.value = base
    return np.array(slopes)


@pytest.mark.slow
def test_readout_gradient_online_equals_bptt_and_a_finite_difference():
    """The readout's own weights are where D-RTRL is exact with the tutorial's network as it is: the
    readout's state depends on its weights only through its own past (a leaky integrator of the hidden
    spikes, which do not depend on them), and the loss of a step only on that step's readout. The loss is
    smooth in these weights (the spikes stay fixed), so a central difference in float64 must agree with
    both gradients to about eps^2 (truncation) + 1e-16 / eps (rounding): 1e-8 relative with eps = 1e-6.
    (For the input weights a finite difference of the spiking loss is 0 or a jump: the surrogate is not
    the derivative of the loss, see notebook 3.)"""
    with jax.enable_x64(True), brainstate.environ.context(dt=1.0 * u.ms, precision=64):
        brainstate.random.seed(1)
        spikes, labels = helpers.poisson_dataset(30, 8, N_IN, 40 * u.Hz)
        gradients = {}
        for learning in ("bptt", "d_rtrl"):
            trainer = helpers.OnlineTrainer(network(), learning)
            grad = trainer.gradient(spikes, labels)[("readout_layer", "weight")]
            assert grad["weight"].dtype == jnp.float64
            gradients[learning] = np.concatenate([np.ravel(grad["weight"]), np.ravel(grad["bias"])])
        assert np.asarray(trainer.net.record(jnp.asarray(spikes))["spikes"]).sum() > 0  # something to read
        slopes = readout_gradient_by_finite_difference(trainer, spikes, labels, eps=1e-6)
    scale = np.abs(slopes).max()
    assert scale > 0
    np.testing.assert_allclose(gradients["bptt"], slopes, rtol=0, atol=1e-8 * scale)
    np.testing.assert_allclose(gradients["d_rtrl"], slopes, rtol=0, atol=1e-8 * scale)


@pytest.mark.slow
def test_bptt_on_a_plain_network_computes_its_gradient_again(batch):
    """OnlineTrainer(net, "bptt") on a network built without online=True: its states are made inside
    every program, so a second program on the same trainer finds nothing to reshape (it used to read
    the states the first one had made while tracing)."""
    spikes, labels = batch
    brainstate.random.seed(0)
    trainer = helpers.OnlineTrainer(helpers.SNN(N_IN, N_HIDDEN, 2), "bptt")
    memory = trainer.gradient_memory(spikes, labels)
    first, again = (flat(trainer.gradient(spikes, labels)) for _ in range(2))
    assert memory["temporaries"] > 0
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, flat(gradient("bptt", spikes, labels)))  # braintrace's layers
