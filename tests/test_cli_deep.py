"""helpers.cli_deep: the deeper networks' options of ``python -m helpers train`` (issue 19), their
refusals (one line, exit status 2, nothing written) and a run of each kind, in-process."""

import json

import brainunit as u
import numpy as np
import pytest

import helpers
from helpers import cli_datasets
from helpers.cli import main as cli_main
from helpers.deep import DeepSNN


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--layers", "8,0"], "argument --layers: expected positive integers separated by commas"),
        (["--layers", "8", "--hidden", "8"], "--hidden and --layers: give one"),
        (["--output", "spikes", "--readout", "max"], "--output spikes and --readout max: give one"),
        (["--loss", "mse_count"], "--loss mse_count: needs --output spikes"),
        (["--output", "max", "--loss", "ce_rate"], "--loss ce_rate: needs --output spikes"),
        (["--output", "spikes", "--loss", "ce"], "--loss ce: --output spikes trains with one of ce_rate"),
        (["--output", "spikes", "--loss", "per_step_ce"], "--loss per_step_ce: --output spikes trains with"),
        (["--regularise", "upper:1:2"], "--regularise: only for the real datasets"),
        (["--input-scale", "10"], "--input-scale: only for a deep network"),
        (["--layers", "8", "--learning", "d_rtrl"], "--layers: not with --learning d_rtrl"),
        (["--neuron", "alif", "--learning", "es_d_rtrl"], "--neuron alif: not with --learning es_d_rtrl"),
        (["--output", "spikes", "--learning", "d_rtrl"], "--output: not with --learning d_rtrl"),
        (["--neuron", "hh"], "argument --neuron: invalid choice"),
        (["--loss", "hinge"], "argument --loss: invalid choice"),
        (["--hidden-scale", "0"], "argument --hidden-scale: expected a positive, finite number"),
        (["--recurrent", "2"], "argument --recurrent: expected 1 (every hidden layer) or one 0 or 1"),
        (["--layers", "8,8", "--recurrent", "1,0,1"], "--recurrent: 3 flags for 2 hidden layer(s)"),
        (["--recurrent", "--learning", "d_rtrl"], "--recurrent: not with --learning d_rtrl"),
        (["--weight-decay", "-0.1"], "argument --weight-decay: expected a non-negative, finite number"),
        (["--weight-decay", "inf"], "argument --weight-decay: expected a non-negative, finite number"),
        (["--weight-decay", "some"], "argument --weight-decay: expected a non-negative, finite number"),
        (["--weight-decay", "0.1", "--learning", "d_rtrl"], "--weight-decay: not with --learning d_rtrl"),
    ],
)
def test_refusals(args, message, tmp_path, train_usage_error):
    assert train_usage_error(args, tmp_path / "run").startswith(message)


@pytest.mark.parametrize(
    "value",
    ["upper:1", "upper:1:2,upper:1:3", "lower:a:1", "rate:-1", "band:1:2", "upper:1:inf", ""],
)
def test_regularise_refuses_bad_terms(value, tmp_path, train_usage_error):
    message = train_usage_error(["--dataset", "digits", "--regularise", value], tmp_path / "run")
    assert message.startswith("argument --regularise: ")


def test_deep_options_are_refused_with_resume(tmp_path, train_usage_error):
    message = train_usage_error(["--resume", str(tmp_path / "c.msgpack"), "--layers", "4"], tmp_path / "run")
    assert message == "--layers: not with --resume (it continues the checkpoint's run)"


@pytest.mark.slow  # about 30 s on 2 busy cores
def test_random_dataset_deep_run(tmp_path, capsys, train_usage_error):
    """A 2-layer ALIF network with a spiking output and the count loss, full-batch, written as a run
    whose checkpoint holds that network."""
    out = tmp_path / "run"
    args = ["train", "--layers", "6,5", "--neuron", "alif", "--output", "spikes", "--loss", "mse_count"]
    args += ["--steps", "30", "--batch", "8", "--inputs", "20", "--epochs", "3", "--no-progress"]
    assert cli_main([*args, "--out", str(out)]) == 0
    run = json.loads((out / "run.json").read_text())
    settings = run["settings"]
    assert (settings["layers"], settings["neuron"], settings["output"], settings["loss"]) == (
        [6, 5],
        "alif",
        "spikes",
        "mse_count",
    )
    assert settings["readout"] == "mean" and settings["hidden"] == 11
    raw = helpers.read_checkpoint(out / "checkpoint.msgpack")
    assert (raw["config"]["architecture"], raw["config"]["hidden"], raw["config"]["output"]) == (
        "deep",
        "6,5",
        "spikes",
    )
    net = DeepSNN(20, (6, 5), 2, neuron="alif", output="spikes", input_scale=100.0, hidden_scale=100.0)
    helpers.load_checkpoint(out / "checkpoint.msgpack", net, helpers.Trainer(net, loss="mse_count").optimizer)
    assert "final loss" in capsys.readouterr().out
    # resuming it: the options name a one-layer SNN, which the checkpoint's config refuses in one line
    message = train_usage_error(
        ["--resume", str(out / "checkpoint.msgpack"), "--epochs", "5"], tmp_path / "more"
    )
    assert message.startswith("--resume: ") and "architecture: checkpoint 'deep'" in message


def test_plain_options_still_build_the_snn():
    """Without the deep options, the network and the trainer's arguments are what they always were."""
    from helpers import cli_deep
    from helpers.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["train", "--output", "max"])
    cli_deep.settle(args, parser, {"output": "max"})  # --output max is --readout max
    assert (args.readout, args.loss) == ("max", "ce")
    assert not cli_deep.is_deep(args) and cli_deep.trainer_options(args) == {}
    assert cli_deep.describe(args) == "4 hidden LIF neurons"
    argv = [
        "train",
        "--dataset",
        "digits",
        "--layers",
        "16,8",
        "--output",
        "spikes",
        "--regularise",
        "rate:0.1",
    ]
    args = parser.parse_args(argv)
    cli_deep.settle(args, parser, {"layers": (16, 8), "output": "spikes", "regularise": args.regularise})
    assert (args.readout, args.loss, args.hidden) == ("mean", "mse_count", 24) and cli_deep.is_deep(args)
    assert set(cli_deep.trainer_options(args)) == {"loss", "regularizer"}
    assert cli_deep.describe(args) == "hidden layers 16,8 of LIF neurons, spiking output"


def test_weight_decay_trains_with_adamw():
    """``--weight-decay D`` gives the trainer AdamW with ``--lr``: one step with a zero gradient shrinks
    every weight by ``lr * D`` times itself (decoupled decay, by hand: ``w (1 - lr D)``); it is refused
    beside ``--resume``."""
    import brainstate
    import braintools
    import jax.numpy as jnp

    from helpers import cli_deep
    from helpers.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["train", "--lr", "0.01", "--weight-decay", "0.5"])
    cli_deep.settle(args, parser, {"lr": 0.01, "weight_decay": 0.5})
    optimizer = cli_deep.trainer_options(args)["optimizer"]
    assert isinstance(optimizer, braintools.optim.AdamW) and optimizer.base_lr == 0.01
    weight = brainstate.ParamState(jnp.array([2.0, -4.0]))
    optimizer.register_trainable_weights({"w": weight})
    optimizer.update({"w": jnp.zeros(2)})
    np.testing.assert_allclose(weight.value, [2.0 * (1 - 0.005), -4.0 * (1 - 0.005)], rtol=1e-6)


def test_weight_decay_is_refused_with_resume(tmp_path, train_usage_error):
    message = train_usage_error(
        ["--resume", str(tmp_path / "c.msgpack"), "--weight-decay", "0.1"], tmp_path / "run"
    )
    assert message == "--weight-decay: not with --resume (it continues the checkpoint's run)"


def test_recurrent_option_builds_recurrent_layers():
    """``--recurrent`` alone makes every hidden layer recurrent; ``1,0`` only the first."""
    import brainstate

    from helpers import cli_deep
    from helpers.cli import build_parser

    parser = build_parser()
    for flags, expected, words in (
        (["--recurrent"], (True, True), "of recurrent LIF"),
        (["--recurrent", "1,0"], (True, False), "of recurrent 1,0 LIF"),
    ):
        args = parser.parse_args(["train", "--layers", "6,5", *flags])
        cli_deep.settle(args, parser, {"layers": (6, 5), "recurrent": args.recurrent})
        assert cli_deep.is_deep(args) and words in cli_deep.describe(args)
        with brainstate.environ.context(dt=1.0 * u.ms):
            net = cli_deep.network(args)
        assert net.recurrent_layers == expected
        assert net.config["recurrent"] == ",".join(str(int(r)) for r in expected)


@pytest.fixture
def small_digits(shrink_splits):
    """Real digits, cut to a few examples per part."""
    return shrink_splits((64, 32, 32))


@pytest.mark.slow  # about 60 s on 2 busy cores
def test_digits_deep_run_with_bounds(tmp_path, small_digits, capsys):
    """Digits through the minibatch path with a spiking output, the default count loss (the squared
    error) and both bounds: the
    history's losses are the loss without the penalty, as MinibatchTrainer.fit reports them."""
    out = tmp_path / "digits"
    args = ["train", "--dataset", "digits", "--layers", "8,8", "--neuron", "alif", "--output", "spikes"]
    args += ["--regularise", "upper:1e-3:5,lower:1:0.5", "--epochs", "2", "--no-baselines", "--no-progress"]
    assert cli_main([*args, "--out", str(out)]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["regularise"] == {"upper": [1e-3, 5.0], "lower": [1.0, 0.5]}
    assert run["settings"]["loss"] == "mse_count" and 0 <= run["test_accuracy"] <= 1
    assert np.isfinite(run["final_train_loss"])
    # the checkpoint rebuilds the network from its config alone and scores what run.json says
    import brainstate

    brainstate.environ.set(dt=1.0 * u.ms)
    net, info = helpers.load_network(out)
    assert isinstance(net, DeepSNN) and (net.hidden, net.neuron, net.output) == ((8, 8), "alif", "spikes")
    _, _, test = cli_datasets.encode("digits", small_digits("digits"), 20)
    accuracy = helpers.MinibatchTrainer(net, loss="mse_count").evaluate(test)["accuracy"]
    assert accuracy == pytest.approx(run["test_accuracy"], abs=1e-12)
    # the NIR export maps one hidden LIF layer: a deep network is refused in one line
    with pytest.raises(SystemExit) as stop:
        cli_main(["export", str(out), "--out", str(tmp_path / "deep.nir"), "--bits", "8"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "cannot be exported: a helpers.deep.DeepSNN" in err.splitlines()[-1]
