"""The deeper networks' options of ``python -m helpers train`` (issue 19): ``--layers``, ``--conv``,
``--neuron``, ``--output``, ``--loss``, ``--regularise`` and the weight scales, with one-line refusals of the
combinations that make no sense. :mod:`helpers.cli` calls :func:`add_options` when it builds the
parser, :func:`settle` once the dataset's options are settled, and :func:`network` and
:func:`trainer_options` when it builds the trainer.

Without any of these options the command trains what it always trained (a :class:`helpers.SNN`, the
cross-entropy of ``--readout``). ``--layers``, ``--conv``, ``--neuron alif`` or ``--output spikes``
build a :class:`helpers.deep.DeepSNN` instead.

``--conv CHANNELS:KERNEL[:POOL],...`` puts a convolutional front end of spiking layers
(:class:`helpers.deep.ConvLayer`) before the hidden layers: on digits (:data:`IMAGE_SHAPES`) 2-D
convolutions of ``KERNEL x KERNEL`` pixels over the 8x8 image at every step, each optionally followed
by ``POOL x POOL`` max pooling of its spikes; on every other dataset causal 1-D convolutions over the
last ``KERNEL`` steps (MNIST-1D is fed one position per step, so that is its position axis; no pooling).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from helpers.deep import NEURONS, conv_neurons, parse_conv, parse_layers
from helpers.readout import LOSSES, READOUTS, SPIKE_LOSSES, check_loss

if TYPE_CHECKING:
    from helpers.model import SNN

#: ``--output``: output spikes, or a membrane readout read over time in one of the ways of READOUTS
OUTPUT_CHOICES = ("spikes", *READOUTS)
#: the options of this module, as argparse names them
OPTIONS = (
    "layers",
    "conv",
    "neuron",
    "recurrent",
    "output",
    "loss",
    "regularise",
    "input_scale",
    "hidden_scale",
    "weight_decay",
)
#: the loss a spiking output trains with when ``--loss`` is not given: snnTorch's count squared error.
#: Over seeds 0-2 the count cross-entropy let output classes fall silent for good on some seeds (1 and
#: 3 classes never predicted on digits, 9 and 4 on MNIST-1D, two layers of 128:
#: ``benchmarks/results/deeper.json``) and scored a lower mean validation accuracy than ``mse_count``
#: on both datasets and with two layers of 256 on digits (``benchmarks/results/deep.json``); runs
#: recorded before this default was changed spell ``--loss ce_count``
DEFAULT_SPIKE_LOSS = "mse_count"
#: the weight scales of a deep network when ``--input-scale`` / ``--hidden-scale`` are not given: the
#: variance multipliers of its Kaiming-normal weights, large enough that every layer of a network of
#: two 128-neuron layers fires at initialisation on the latency-coded digits (about one spike per
#: neuron and example in each; the one-layer network's default, about 4.4, leaves the second layer and
#: a spiking output silent, so no gradient reaches them). Chosen on the digits' validation split.
DEEP_SCALES = (100.0, 100.0)
#: the datasets whose steps are images, ``(height, width)``: ``--conv`` convolves over them (2-D); on the
#: others it convolves over time (1-D, causal)
IMAGE_SHAPES = {"digits": (8, 8)}
#: ``--regularise`` terms: ``rate:STRENGTH``, ``upper:STRENGTH:COUNT``, ``lower:STRENGTH:COUNT``
REGULARISERS = ("rate", "upper", "lower")


def _layers(text: str) -> tuple[int, ...]:
    try:
        return parse_layers(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _recurrent(text: str) -> tuple[bool, ...]:
    """``1`` (every hidden layer), or one ``0``/``1`` per hidden layer (``1,0``)."""
    items = str(text).split(",")
    if not items or any(item.strip() not in ("0", "1") for item in items):
        raise argparse.ArgumentTypeError(
            f"expected 1 (every hidden layer) or one 0 or 1 per hidden layer (e.g. 1,0), got {text!r}"
        )
    return tuple(item.strip() == "1" for item in items)


def _conv(text: str) -> tuple[tuple[int, int, int], ...]:
    try:
        return parse_conv(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_regularise(text: str) -> dict[str, tuple[float, ...]]:
    """``--regularise``'s value as ``{term: numbers}``: comma-separated terms ``rate:S`` (the L1 penalty
    of notebook 11, strength ``S``), ``upper:S:C`` (every hidden neuron's mean count above ``C`` spikes
    per example is penalised) and ``lower:S:C`` (every layer's mean count below ``C``), each term once;
    a clear error otherwise."""
    terms: dict[str, tuple[float, ...]] = {}
    for item in str(text).split(","):
        name, *numbers = item.strip().split(":")
        wanted = 1 if name == "rate" else 2
        if name not in REGULARISERS or name in terms or len(numbers) != wanted:
            raise argparse.ArgumentTypeError(
                f"expected terms rate:STRENGTH, upper:STRENGTH:COUNT, lower:STRENGTH:COUNT separated by "
                f"commas, each once (e.g. upper:1e-3:10,lower:1:0.5), got {text!r}"
            )
        try:
            values = tuple(float(x) for x in numbers)
        except ValueError:
            values = (-1.0,)
        if not all(v >= 0 and v != float("inf") for v in values):
            raise argparse.ArgumentTypeError(
                f"{name}: expected non-negative finite numbers, got {':'.join(numbers)!r}"
            )
        terms[name] = values
    return terms


def _regularise(text: str) -> dict[str, tuple[float, ...]]:
    return parse_regularise(text)


def _finite_number(text: str, *, zero_allowed: bool, expected: str) -> float:
    """``text`` as a finite number above zero (or, with ``zero_allowed``, at least zero); otherwise an
    argparse error that says ``expected``."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (0 <= value if zero_allowed else 0 < value) or not value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def _scale(text: str) -> float:
    return _finite_number(text, zero_allowed=False, expected="a positive, finite number")


def _weight_decay(text: str) -> float:
    return _finite_number(text, zero_allowed=True, expected="a non-negative, finite number (e.g. 0.01)")


def add_options(train: argparse.ArgumentParser, default: Callable[[Any], Any]) -> None:
    """Add the group "deeper networks" to the ``train`` parser (``default`` as in ``build_parser``)."""
    group = train.add_argument_group("deeper networks (issue 19)")
    group.add_argument(
        "--layers",
        type=_layers,
        default=default(None),
        help="hidden layer sizes, e.g. 128,128 (instead of --hidden; builds a helpers.deep.DeepSNN)",
    )
    group.add_argument(
        "--conv",
        type=_conv,
        default=default(None),
        metavar="C:K[:P],...",
        help="a convolutional front end of spiking layers before the hidden ones, CHANNELS:KERNEL[:POOL] "
        "each (e.g. 8:3:2): on digits 2-D over the 8x8 image at every step (KERNELxKERNEL pixels, POOLxPOOL "
        "max pooling), on the other datasets causal 1-D over the last KERNEL steps (builds a DeepSNN)",
    )
    group.add_argument(
        "--neuron",
        choices=NEURONS,
        default=default("lif"),
        help="hidden neurons: LIF, or ALIF (adaptive threshold)",
    )
    group.add_argument(
        "--recurrent",
        type=_recurrent,
        nargs="?",
        const=(True,),
        default=default(None),
        metavar="FLAGS",
        help="feed each hidden layer's spikes back into it at the next step: alone or 1 for every hidden "
        "layer, or one 0/1 per layer (e.g. 1,0); builds a DeepSNN",
    )
    group.add_argument(
        "--output",
        choices=OUTPUT_CHOICES,
        default=default(None),
        help="a spiking output layer read as spike counts, or a membrane readout read over time "
        "(mean, max, last: the same as --readout)",
    )
    group.add_argument(
        "--loss",
        choices=tuple(LOSSES),
        default=default(None),
        help=f"ce (of the readout) or per_step_ce for a membrane readout; {', '.join(SPIKE_LOSSES)} for "
        f"--output spikes (default: ce, or {DEFAULT_SPIKE_LOSS} for spikes)",
    )
    group.add_argument(
        "--regularise",
        type=_regularise,
        default=default(None),
        metavar="TERMS",
        help="activity penalties (real datasets): rate:S, upper:S:COUNT (per neuron), lower:S:COUNT "
        "(per layer), comma-separated",
    )
    group.add_argument(
        "--input-scale",
        type=_scale,
        default=default(None),
        help=f"a deep network's first-layer weight variance scale (default {DEEP_SCALES[0]:g})",
    )
    group.add_argument(
        "--hidden-scale",
        type=_scale,
        default=default(None),
        help=f"a deep network's later layers' weight variance scale (default {DEEP_SCALES[1]:g})",
    )
    group.add_argument(
        "--weight-decay",
        type=_weight_decay,
        default=default(None),
        metavar="DECAY",
        help="train with AdamW: every step also shrinks each weight by lr * DECAY times itself (decoupled "
        "weight decay, Loshchilov & Hutter 2019; e.g. 0.01; bptt only; default: Adam without decay)",
    )


def is_deep(args: argparse.Namespace) -> bool:
    """Whether the options ask for a :class:`~helpers.deep.DeepSNN` rather than a :class:`~helpers.SNN`."""
    return (
        args.layers is not None
        or args.conv is not None
        or args.recurrent is not None
        or args.neuron != "lif"
        or args.output == "spikes"
    )


def refuse_with_resume(args: argparse.Namespace, parser: argparse.ArgumentParser, given: dict) -> None:
    """Refuse these options beside ``--resume`` (before the checkpoint is read): a resumed run
    continues with the checkpoint's own network and loss."""
    if args.resume is not None:
        for option in OPTIONS:
            if option in given:
                parser.error(
                    f"--{option.replace('_', '-')}: not with --resume (it continues the checkpoint's run)"
                )


def settle(args: argparse.Namespace, parser: argparse.ArgumentParser, given: dict) -> None:
    """Refuse the combinations that make no sense (one line, exit status 2) and settle the rest:
    ``--output`` sets the readout, ``--layers`` the number of hidden neurons (their sum), ``--loss``
    its default. Call it after the dataset's options are settled."""
    deep = is_deep(args)
    refuse_with_resume(args, parser, given)
    if args.layers is not None and "hidden" in given:
        parser.error("--hidden and --layers: give one (--layers 128 is one hidden layer of 128)")
    if args.output is not None:
        if "readout" in given and args.output != args.readout:
            parser.error(
                f"--output {args.output} and --readout {args.readout}: give one (--output replaces it)"
            )
        args.readout = "mean" if args.output == "spikes" else args.output
    for option in ("input_scale", "hidden_scale"):
        if getattr(args, option) is not None and not deep:
            parser.error(
                f"--{option.replace('_', '-')}: only for a deep network "
                "(--layers, --conv, --recurrent, --neuron alif or --output spikes)"
            )
    if args.learning != "bptt":
        for option in ("layers", "conv", "recurrent", "output", "loss", "regularise", "weight_decay"):
            if getattr(args, option) is not None and (option != "output" or args.output == "spikes"):
                parser.error(
                    f"--{option.replace('_', '-')}: not with --learning {args.learning} (online learning "
                    "trains the one-layer network on the per-step loss)"
                )
        if args.neuron != "lif":
            parser.error(f"--neuron {args.neuron}: not with --learning {args.learning} (LIF only)")
    if args.regularise is not None and args.dataset == "random":
        parser.error(
            "--regularise: only for the real datasets (digits, mnist1d, shd, ssc: minibatch training)"
        )
    spiking = args.output == "spikes"
    if args.loss is None:
        args.loss = DEFAULT_SPIKE_LOSS if spiking else "ce"
    try:
        check_loss(args.loss, spiking_output=spiking, readout_method=args.readout)
    except ValueError:
        if spiking:
            parser.error(f"--loss {args.loss}: --output spikes trains with one of {', '.join(SPIKE_LOSSES)}")
        parser.error(
            f"--loss {args.loss}: needs --output spikes (a membrane readout trains with ce or per_step_ce)"
        )
    if args.conv is not None:
        try:
            conv_neurons(args.conv, IMAGE_SHAPES.get(args.dataset), args.inputs)
        except ValueError as error:
            parser.error(f"--conv: {error}")
        if args.layers is None:  # --hidden (or the dataset's default) is the one dense layer after it
            args.layers = (args.hidden,)
    if args.recurrent is not None:
        n_dense = len(args.layers) if args.layers is not None else 1
        if len(args.recurrent) not in (1, n_dense):
            parser.error(
                f"--recurrent: {len(args.recurrent)} flags for {n_dense} hidden layer(s); "
                "give 1 (every layer) or one per layer of --layers"
            )
    if is_deep(args):  # every hidden neuron, the convolutions' included (for the memory estimate)
        args.hidden = sum(layer_sizes(args))


def layer_sizes(args: argparse.Namespace) -> tuple[int, ...]:
    """The spiking neurons of every hidden layer of the deep network the options ask for, those of the
    convolutions first (as :attr:`helpers.deep.DeepSNN.layer_sizes`)."""
    dense = args.layers if args.layers is not None else (args.hidden,)
    if args.conv is None:
        return tuple(dense)
    return (*conv_neurons(args.conv, IMAGE_SHAPES.get(args.dataset), args.inputs), *dense)


def network(args: argparse.Namespace) -> SNN:
    """The network the options ask for: :class:`helpers.SNN` (as before this module) or a
    :class:`helpers.deep.DeepSNN`. Needs ``dt`` set; draws from brainstate's generator."""
    from helpers.model import SNN  # noqa: F811 (the stack loads only when a network is built)

    if not is_deep(args):
        return SNN(args.inputs, args.hidden, args.outputs, online=args.learning != "bptt")
    from helpers.deep import DeepSNN

    input_scale = DEEP_SCALES[0] if args.input_scale is None else args.input_scale
    hidden_scale = DEEP_SCALES[1] if args.hidden_scale is None else args.hidden_scale
    return DeepSNN(
        args.inputs,
        args.layers if args.layers is not None else (args.hidden,),
        args.outputs,
        neuron=args.neuron,
        recurrent=recurrent_flags(args),
        output="spikes" if args.output == "spikes" else "membrane",
        input_scale=input_scale,
        hidden_scale=hidden_scale,
        conv=args.conv,
        image_shape=IMAGE_SHAPES.get(args.dataset) if args.conv is not None else None,
    )


def recurrent_flags(args: argparse.Namespace) -> bool | tuple[bool, ...]:
    """``--recurrent`` as :class:`~helpers.deep.DeepSNN` takes it: one flag for every hidden layer, or
    one per layer (``False`` without the option)."""
    if args.recurrent is None:
        return False
    return args.recurrent[0] if len(args.recurrent) == 1 else tuple(args.recurrent)


def regularizer(args: argparse.Namespace) -> Callable | None:
    """The regulariser ``f(hidden spikes, mask)`` of ``--regularise`` (``None`` without it): the sum of
    :func:`helpers.activity.rate_penalty` and :func:`helpers.activity.firing_bounds` (per layer)."""
    if args.regularise is None:
        return None
    from helpers.activity import firing_bounds, rate_penalty

    terms = args.regularise
    parts = []
    if "rate" in terms:
        parts.append(rate_penalty(terms["rate"][0]))
    if "upper" in terms or "lower" in terms:
        parts.append(firing_bounds(terms.get("upper"), terms.get("lower"), layer_sizes=layer_sizes(args)))

    def penalty(hidden, mask):
        return sum(part(hidden, mask) for part in parts)

    return penalty


def trainer_options(args: argparse.Namespace) -> dict[str, Any]:
    """The trainer's keyword arguments these options set: ``loss`` (when not the default ``ce``),
    for minibatch training ``regularizer``, and with ``--weight-decay`` an ``optimizer``
    (``braintools.optim.AdamW`` with ``--lr``); empty without them, so that the trainers get what they
    always got (Adam with ``--lr``)."""
    options: dict[str, Any] = {}
    if args.loss != "ce":
        options["loss"] = args.loss
    if args.regularise is not None:
        options["regularizer"] = regularizer(args)
    if getattr(args, "weight_decay", None) is not None:
        import braintools

        options["optimizer"] = braintools.optim.AdamW(lr=args.lr, weight_decay=args.weight_decay)
    return options


def describe(args: argparse.Namespace) -> str:
    """The network in words for a run's title: ``128 hidden LIF neurons`` (as before), or for a deep
    network ``hidden layers 128,128 of ALIF neurons, spiking output`` (``conv 8:3:2 over the image,
    hidden layers ...`` with a convolutional front end)."""
    if not is_deep(args):
        return f"{args.hidden} hidden LIF neurons"
    layers = ",".join(map(str, args.layers if args.layers is not None else (args.hidden,)))
    output = "spiking output" if args.output == "spikes" else f"{args.readout} readout"
    conv = ""
    if args.conv is not None:
        over = "the image" if args.dataset in IMAGE_SHAPES else "time"
        conv = f"conv {','.join(':'.join(map(str, c)) for c in args.conv)} over {over}, "
    recurrent = ""
    if args.recurrent is not None:
        flags = ",".join(str(int(r)) for r in args.recurrent)
        recurrent = " recurrent" if flags == "1" else f" recurrent {flags}"
    return f"{conv}hidden layers {layers} of{recurrent} {args.neuron.upper()} neurons, {output}"
