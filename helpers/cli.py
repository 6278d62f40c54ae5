"""Command-line trainer: ``python -m helpers train [options]``.

Trains the tutorial's network on its dataset, shows a progress bar with the current loss, and writes
to ``--out``: ``losses.csv`` (epoch, loss), ``loss.png``, ``checkpoint.msgpack`` and ``run.json``
(settings, results, versions). ``--resume CHECKPOINT`` continues a run to ``--epochs`` in total, with
the architecture, readout, data settings, seed and learning rate stored in the checkpoint. Nothing is
written unless training succeeds, and every file is written to a temporary name first, then renamed.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import helpers
from helpers import cli_datasets
from helpers.readout import READOUTS
from helpers.validation import check_non_negative_int, check_positive_int, check_positive_number

DATASETS = ("random", "digits", "mnist1d")
#: what ``--resume`` takes from the checkpoint's ``extra`` record, besides the architecture and readout
RUN_SETTINGS = ("dataset", "steps", "batch", "rate", "seed", "lr")


def _option_type(parse: Callable[[str], Any], check: Callable[[str, Any], Any], wanted: str, unparsable=""):
    """An argparse type: ``parse`` the text, then apply a :mod:`helpers.validation` rule; a failure
    reads "expected {wanted}" (or "expected {unparsable}" for text that does not parse at all)."""

    def convert(text: str):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {unparsable or wanted}, got {text!r}") from None
        try:
            return check("value", value)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None

    return convert


_positive_int = _option_type(int, check_positive_int, "a positive integer")
_non_negative_int = _option_type(int, check_non_negative_int, "a non-negative integer")
_positive_float = _option_type(
    float, check_positive_number, "a positive, finite number", unparsable="a positive number"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m helpers", description="snn-tutorial command-line tools")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = commands.add_parser(
        "train",
        help="train the tutorial's spiking classifier",
        description="Train the tutorial's spiking classifier with BPTT and Adam (defaults: the tutorial's). "
        "--dataset digits or mnist1d trains with minibatches on real data, with the settings of notebook "
        "9 or 10 as defaults (the defaults shown are the random dataset's), keeps the best weights on "
        "validation and scores them once on the test split beside the notebook's baselines; it fixes "
        "--inputs, --outputs and --rate (mnist1d also --steps) and does not support --resume.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    train.register("action", None, cli_datasets.RecordingStore)  # tells given options from defaults
    model = train.add_argument_group("network")
    model.add_argument(
        "--inputs", type=_positive_int, default=100, help="number of input channels (random only)"
    )
    model.add_argument(
        "--hidden",
        type=_positive_int,
        default=4,
        help="number of hidden LIF neurons (digits: 256, mnist1d: 64)",
    )
    model.add_argument("--outputs", type=_positive_int, default=2, help="number of classes (random only)")
    data = train.add_argument_group("data")
    data.add_argument(
        "--dataset",
        choices=DATASETS,
        default="random",
        help="synthetic spikes, or real data (notebooks 9 and 10)",
    )
    data.add_argument(
        "--steps",
        type=_positive_int,
        default=100,
        help="time steps of 1 ms per example (digits: 20; not mnist1d)",
    )
    data.add_argument(
        "--batch",
        type=_positive_int,
        default=128,
        help="examples in the training batch (digits, mnist1d: in each minibatch, 32, 128)",
    )
    data.add_argument(
        "--rate", type=_positive_float, default=5.0, help="input firing rate (Hz) (random only)"
    )
    run = train.add_argument_group("training")
    run.add_argument(
        "--epochs",
        type=_positive_int,
        default=800,
        help="total epochs (including resumed ones; digits: 20, mnist1d: 12)",
    )
    run.add_argument(
        "--lr", type=_positive_float, default=3e-3, help="Adam learning rate (digits: 1e-2, mnist1d: 2e-2)"
    )
    run.add_argument("--seed", type=_non_negative_int, default=0, help="seed of weights and data")
    run.add_argument("--readout", choices=tuple(READOUTS), default="mean", help="readout over time")
    run.add_argument("--out", type=Path, default=Path("runs/train"), help="output folder")
    run.add_argument(
        "--resume", type=Path, metavar="CHECKPOINT", help="continue from a checkpoint (random only)"
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(command_parser=train)
    return parser


def _write_atomically(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp creates the file private; give it normal rights
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _resume_settings(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict | None:
    """With ``--resume``: read the checkpoint and take from it the architecture, readout and
    :data:`RUN_SETTINGS` (data, seed, learning rate), overriding the options. Returns its contents."""
    if args.resume is None:
        return None
    try:
        resume = helpers.read_checkpoint(args.resume)
    except (FileNotFoundError, helpers.CheckpointError) as error:
        parser.error(f"--resume: {error}")
    # the data and architecture come from the checkpoint, so that the run continues as it was
    extra = resume.get("extra", {})
    config = resume["config"]
    for option, key in (("inputs", "n_inputs"), ("hidden", "n_hidden"), ("outputs", "n_outputs")):
        setattr(args, option, int(config[key]))
    for option in RUN_SETTINGS:
        if option in extra:
            setattr(args, option, extra[option])
    args.readout = resume.get("readout_method", args.readout)
    if int(resume["epoch"]) >= args.epochs:
        parser.error(f"--epochs {args.epochs}: the checkpoint already holds {int(resume['epoch'])} epochs")
    return resume


def _build(args: argparse.Namespace, parser: argparse.ArgumentParser):
    """The network, its trainer and the dataset the options describe: ``(trainer, spikes, labels)``."""
    import brainstate
    import brainunit as u

    brainstate.environ.set(dt=1.0 * u.ms)
    brainstate.random.seed(args.seed)
    try:
        net = helpers.SNN(args.inputs, args.hidden, args.outputs)
        spikes, labels = helpers.poisson_dataset(args.steps, args.batch, args.inputs, args.rate * u.Hz)
        if args.outputs != 2:
            parser.error(f"--outputs {args.outputs}: the {args.dataset!r} dataset has 2 classes")
        trainer = helpers.Trainer(net, lr=args.lr, readout_method=args.readout)
    except (ValueError, TypeError) as error:
        parser.error(str(error))
    return trainer, spikes, labels


def _train_with_progress(
    trainer, spikes, labels, history: np.ndarray, start_epoch: int, epochs: int, quiet: bool
) -> list[float]:
    """Continue training from ``start_epoch`` to ``epochs``, one step at a time so that the progress
    bar shows every epoch's loss; return ``history`` followed by the new losses. Raises
    :class:`FloatingPointError` (with the epoch) if the loss becomes NaN or infinite."""
    from tqdm.auto import tqdm

    data = trainer.prepare_input(spikes)  # convert to events once, not every epoch
    losses = list(history)
    with tqdm(
        range(start_epoch + 1, epochs + 1),
        desc="training",
        unit="epoch",
        disable=quiet,
        file=sys.stderr,
        initial=start_epoch,
        total=epochs,
    ) as progress:
        for epoch in progress:
            losses.append(trainer.step(data, labels))
            trainer.check_finite(np.asarray(losses[-1:]), first_epoch=epoch)
            progress.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)
    return losses


def _write_outputs(args: argparse.Namespace, trainer, losses: list, accuracy: float, resumed_from) -> None:
    """Write checkpoint.msgpack, losses.csv, loss.png and run.json to ``args.out``, each atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args.out.mkdir(parents=True, exist_ok=True)
    settings = {
        k: (str(v) if isinstance(v, Path) else v)
        for k, v in vars(args).items()
        if k not in ("command", "command_parser")
    }
    extra = {k: settings[k] for k in RUN_SETTINGS}
    checkpoint_tmp = args.out / ".checkpoint.msgpack.tmp"
    helpers.save_checkpoint(
        checkpoint_tmp, trainer, epoch=args.epochs, losses=np.asarray(losses), extra=extra
    )
    os.replace(checkpoint_tmp, args.out / "checkpoint.msgpack")

    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["epoch", "loss"])
    writer.writerows((epoch, f"{loss:.8g}") for epoch, loss in enumerate(losses, start=1))
    _write_atomically(args.out / "losses.csv", table.getvalue().encode())

    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    helpers.plot_loss(losses, ax=ax, log=True)
    ax.set_title(f"{args.hidden} hidden LIF neurons, lr {args.lr:g}, seed {args.seed}")
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, format="png", dpi=100)
    plt.close(fig)
    _write_atomically(args.out / "loss.png", image.getvalue())

    summary = {
        "settings": settings,
        "epochs": args.epochs,
        "resumed_from_epoch": resumed_from,
        "final_loss": losses[-1],
        "train_accuracy": accuracy,
        "readout": args.readout,
        "versions": helpers.stack_versions(),
    }
    _write_atomically(args.out / "run.json", (json.dumps(summary, indent=2) + "\n").encode())


def train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """The ``train`` command: options (or a checkpoint) -> training with a progress bar -> files.

    Returns the exit status: 0, or 1 if training diverged (then nothing is written).
    """
    if cli_datasets.dataset_of(args) != "random":  # digits, mnist1d: minibatch training on real data
        return cli_datasets.train(args, parser)
    resume = _resume_settings(args, parser)
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out}: exists and is not a folder")
    trainer, spikes, labels = _build(args, parser)

    start_epoch, history = 0, np.empty(0)
    if resume is not None:
        try:
            restored = helpers.load_checkpoint(args.resume, trainer)
        except helpers.CheckpointError as error:
            parser.error(f"--resume: {error}")
        start_epoch, history = restored["epoch"], restored["losses"]
    try:
        losses = _train_with_progress(
            trainer, spikes, labels, history, start_epoch, args.epochs, quiet=args.no_progress
        )
    except FloatingPointError as error:
        print(f"error: {error}; nothing was written", file=sys.stderr)
        return 1
    accuracy = trainer.accuracy(spikes, labels)

    _write_outputs(args, trainer, losses, accuracy, resumed_from=start_epoch if resume is not None else None)
    print(f"final loss {losses[-1]:.4f}, training accuracy {accuracy:.4f} ({args.readout} readout)")
    print(f"wrote losses.csv, loss.png, checkpoint.msgpack and run.json to {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: the command line) and run the command; return the exit status.

    Bad options exit with status 2 and a usage message; a diverging run returns 1 and writes nothing.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train":
        return train(args, args.command_parser)
    return 2  # pragma: no cover - argparse requires a command


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
