"""The convolutional front end of helpers.deep.DeepSNN (issue 19): the layer against a hand computation
on tiny cases (over an image, over time, pooling), shapes, clear errors, checkpoints, and the CLI's
``--conv`` (refusals, and a run whose checkpoint reloads with its convolution)."""

import json

import brainstate
import brainunit as u
import jax.numpy as jnp
import numpy as np
import pytest

import helpers
from helpers import cli_datasets
from helpers.cli import main as cli_main
from helpers.deep import ConvLayer, DeepSNN, conv_neurons, parse_conv

LAYER = dict(
    neuron="lif", tau_syn=10.0 * u.ms, tau_mem=20.0 * u.ms, tau_adapt=100.0 * u.ms, adaptation=0.1 * u.mV,
    v_threshold=1.0 * u.mV, spike_fn=helpers.heaviside, input_scale=2.0,
)  # fmt: skip


def _set_kernel(layer: ConvLayer, weight: np.ndarray, bias: np.ndarray) -> None:
    layer.conv.weight.value = {
        "weight": jnp.asarray(weight, jnp.float32),
        "bias": jnp.asarray(bias, jnp.float32),
    }


def test_parse_conv():
    assert parse_conv("8:3:2,16:3") == ((8, 3, 2), (16, 3, 1))
    assert parse_conv("4:5") == ((4, 5, 1),)
    for bad in ("", "8", "8:3:2:1", "8:0", "a:3", "8:3,", "-1:3"):
        with pytest.raises(ValueError, match="CHANNELS:KERNEL"):
            parse_conv(bad)


def test_image_convolution_by_hand():
    """Conv2d with SAME zero padding is a cross-correlation: out[i, j, c] = b[c] + sum over the 3x3
    neighbourhood and the input channels of x[i + di - 1, j + dj - 1, k] * w[di, dj, k, c]."""
    rng = np.random.default_rng(0)
    layer = ConvLayer((4, 5, 2), 3, 3, over="image", **LAYER)
    weight, bias = rng.normal(size=(3, 3, 2, 3)), rng.normal(size=(1, 1, 3))
    _set_kernel(layer, weight, bias)
    x = (rng.random((2, 4 * 5 * 2)) < 0.5).astype(np.float32)  # [B, H * W * C_in], row-major
    image = np.pad(x.reshape(2, 4, 5, 2), ((0, 0), (1, 1), (1, 1), (0, 0)))
    expected = np.zeros((2, 4, 5, 3))
    for i in range(4):
        for j in range(5):
            expected[:, i, j] = (
                np.einsum("bhwk,hwkc->bc", image[:, i : i + 3, j : j + 3], weight) + bias[0, 0]
            )
    current = layer.current(jnp.asarray(x))
    assert u.get_unit(current) == u.mA
    np.testing.assert_allclose(current.to_decimal(u.mA), expected, rtol=1e-5, atol=1e-5)
    assert (layer.n_neurons, layer.out_shape, layer.n_out) == (60, (4, 5, 3), 60)


def test_time_convolution_by_hand():
    """Step by step, the layer's currents are the causal convolution of the input sequence over time:
    I_t = b + sum_j w[j] x[t - (K - 1) + j], the steps before the first being zeros."""
    rng = np.random.default_rng(1)
    kernel, c_in, channels, steps = 3, 4, 2, 6
    layer = ConvLayer((c_in,), channels, kernel, over="time", **LAYER)
    weight, bias = rng.normal(size=(kernel, c_in, channels)), rng.normal(size=(1, channels))
    _set_kernel(layer, weight, bias)
    x = (rng.random((steps, 2, c_in)) < 0.5).astype(np.float32)
    brainstate.nn.init_all_states(layer, batch_size=2)
    currents = np.array([layer.current(jnp.asarray(x_t)).to_decimal(u.mA) for x_t in x])
    padded = np.concatenate([np.zeros((kernel - 1, 2, c_in)), x])
    expected = np.array(
        [np.einsum("jbk,jkc->bc", padded[t : t + kernel], weight) + bias[0] for t in range(steps)]
    )
    np.testing.assert_allclose(currents, expected, rtol=1e-5, atol=1e-5)
    brainstate.nn.init_all_states(layer, batch_size=2)  # a fresh state empties the delay line
    np.testing.assert_allclose(layer.current(jnp.asarray(x[3])).to_decimal(u.mA), expected[0] * 0 + (
        np.einsum("bk,kc->bc", x[3], weight[-1]) + bias[0]), rtol=1e-5, atol=1e-5)  # fmt: skip


@pytest.mark.slow  # about 2 s of CPU
def test_pooling_is_the_max_of_each_block():
    rng = np.random.default_rng(2)
    layer = ConvLayer((4, 4, 1), 2, 3, 2, over="image", **{**LAYER, "input_scale": 400.0})
    brainstate.nn.init_all_states(layer, batch_size=3)
    for _ in range(2):  # two steps, so that some neurons fire
        out = np.asarray(layer(jnp.asarray((rng.random((3, 16)) < 0.6).astype(np.float32))))
    spikes = np.asarray(layer.neurons.get_spike())  # [B, 4, 4, 2]
    assert 0 < spikes.sum() < spikes.size
    expected = spikes.reshape(3, 2, 2, 2, 2, 2).max(axis=(2, 4)).reshape(3, 8)
    np.testing.assert_array_equal(out, expected)
    assert layer.out_shape == (2, 2, 2) and layer.n_out == 8


def test_network_shapes_and_config():
    net = DeepSNN(64, (6,), 3, conv="4:3:2,5:3", image_shape=(8, 8), output="spikes")
    assert net.layer_sizes == (8 * 8 * 4, 4 * 4 * 5, 6) and conv_neurons(net.conv, (8, 8), 64) == (256, 80)
    assert net.n_hidden == sum(net.layer_sizes) and net.layers[0].input_layer.in_size == (4 * 4 * 5,)
    assert (net.config["conv"], net.config["image_shape"]) == ("4:3:2,5:3:1", "8,8")
    assert "conv" not in DeepSNN(32, (6,), 3).config  # without it, the config is as before


@pytest.mark.slow  # builds and runs two networks: over 2 s of CPU
def test_network_records_every_layer():
    net = DeepSNN(64, (6,), 3, conv="4:3:2,5:3", image_shape=(8, 8), output="spikes")
    x = (np.random.default_rng(3).random((5, 2, 64)) < 0.3).astype(np.float32)
    recorded = net.record(jnp.asarray(x))
    assert recorded["spikes"].shape == (5, 2, net.n_hidden) and recorded["voltage"].shape == (
        5,
        2,
        net.n_hidden,
    )
    assert recorded["output"].shape == (5, 2, 3)
    assert DeepSNN(**net.init_kwargs).config == net.config  # what Trainer.reinitialize builds
    over_time = DeepSNN(32, (6,), 3, conv=[(4, 5)])
    assert over_time.layer_sizes == (4, 6) and over_time.config["image_shape"] == ""
    assert over_time.simulate(jnp.zeros((7, 2, 32))).shape == (7, 2, 3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(conv="4:9", image_shape=(8, 8)), "kernel 9 is larger than the 8x8 image"),
        (dict(conv="4:3:3", image_shape=(8, 8)), "pool 3 does not divide the 8x8 feature maps"),
        (dict(conv="4:3:2,4:1:3", image_shape=(8, 8)), "pool 3 does not divide the 4x4"),
        (dict(conv="4:3:2,4:5", image_shape=(8, 8)), "kernel 5 is larger than the 4x4 image"),
        (dict(conv="4:3:2"), "a convolution over time (no image_shape) has no pooling"),
        (dict(image_shape=(8, 8)), "image_shape is only for a convolutional front end"),
        (dict(conv="4:3", image_shape=(5, 5)), "n_inputs=64 is not a whole number of 5x5 images"),
        (dict(conv="4:3", image_shape=(8,)), "image_shape must be (height, width)"),
        (dict(conv=[(4, 0)]), "conv must be a sequence of (channels, kernel)"),
        (dict(conv="4x3"), "expected CHANNELS:KERNEL"),
    ],
)
def test_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        DeepSNN(64, (6,), 3, **kwargs)


@pytest.mark.slow  # about 2 s of CPU
def test_events_give_the_dense_numbers():
    """The full-batch Trainer feeds SpikeEvents: a convolution densifies each step, the same numbers."""
    net = DeepSNN(16, (5,), 2, conv="3:3", image_shape=(4, 4), input_scale=50.0)
    x = (np.random.default_rng(4).random((6, 3, 16)) < 0.3).astype(np.float32)
    np.testing.assert_array_equal(
        np.asarray(net.simulate(helpers.spike_events(x))), np.asarray(net.simulate(jnp.asarray(x)))
    )


@pytest.mark.slow  # about 3 s of CPU
def test_checkpoint_reloads_the_convolution(tmp_path):
    net = DeepSNN(32, (5,), 3, conv="4:3", neuron="alif", output="spikes")
    path = tmp_path / "conv.msgpack"
    helpers.save_checkpoint(path, net, helpers.Trainer(net, loss="ce_count").optimizer, epoch=0, losses=[])
    loaded, _ = helpers.load_network(path)
    assert (loaded.conv, loaded.image_shape, loaded.layer_sizes) == (((4, 3, 1),), None, (4, 5))
    x = jnp.asarray((np.random.default_rng(5).random((8, 2, 32)) < 0.3).astype(np.float32))
    np.testing.assert_array_equal(np.asarray(loaded.simulate(x)), np.asarray(net.simulate(x)))
    other = DeepSNN(32, (5,), 3, conv="4:5", neuron="alif", output="spikes")
    with pytest.raises(helpers.CheckpointError, match="conv: checkpoint '4:3:1', network '4:5:1'"):
        helpers.load_checkpoint(path, other, helpers.Trainer(other, loss="ce_count").optimizer)


# -- the command line -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--conv", "8"], "argument --conv: expected CHANNELS:KERNEL or CHANNELS:KERNEL:POOL"),
        (["--dataset", "digits", "--conv", "8:9"], "--conv: kernel 9 is larger than the 8x8 image"),
        (["--dataset", "digits", "--conv", "8:3:3"], "--conv: pool 3 does not divide the 8x8 feature maps"),
        (["--dataset", "mnist1d", "--conv", "8:3:2"], "--conv: pool 2: a convolution over time"),
        (["--conv", "8:3", "--learning", "d_rtrl"], "--conv: not with --learning d_rtrl"),
        (["--resume", "c.msgpack", "--conv", "8:3"], "--conv: not with --resume"),
    ],
)
def test_cli_refusals(args, message, tmp_path, train_usage_error):
    assert train_usage_error(args, tmp_path / "run").startswith(message)


def test_cli_settles_the_layers():
    from helpers import cli_deep
    from helpers.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["train", "--dataset", "digits", "--conv", "4:3:2"])
    cli_datasets.settle_options(args, parser, {"dataset": "digits", "conv": args.conv})
    cli_deep.settle(args, parser, {"dataset": "digits", "conv": args.conv})
    assert args.layers == (128,) and cli_deep.layer_sizes(args) == (256, 128) and args.hidden == 384
    assert (
        cli_deep.describe(args) == "conv 4:3:2 over the image, hidden layers 128 of LIF neurons, mean readout"
    )


@pytest.mark.slow  # about 40 s on 2 busy cores
def test_cli_digits_conv_run_reloads(tmp_path, shrink_splits):
    """A digits run with a convolution over the image: its checkpoint rebuilds the network, with its
    convolution, from the config alone and scores what run.json says."""
    load = shrink_splits((64, 32, 32))
    out = tmp_path / "conv"
    args = ["train", "--dataset", "digits", "--conv", "4:3:2", "--layers", "16", "--neuron", "alif"]
    args += ["--output", "spikes", "--epochs", "2", "--no-baselines", "--no-progress"]
    assert cli_main([*args, "--out", str(out)]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["conv"] == [[4, 3, 2]] and run["settings"]["hidden"] == 256 + 16
    brainstate.environ.set(dt=1.0 * u.ms)
    net, _ = helpers.load_network(out)
    assert (net.conv, net.image_shape, net.hidden) == (((4, 3, 2),), (8, 8), (16,))
    _, _, test = cli_datasets.encode("digits", load("digits"), 20)
    accuracy = helpers.MinibatchTrainer(net, loss="mse_count").evaluate(test)["accuracy"]
    assert accuracy == pytest.approx(run["test_accuracy"], abs=1e-12)
