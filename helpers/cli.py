"""Command line: ``python -m helpers train [options]``, one command line for every dataset, and
``python -m helpers export RUN --out model.nir`` (the job itself in :mod:`helpers.cli_export`).

Trains the tutorial's network on its dataset (the synthetic task full-batch, or ``--dataset digits``
and ``mnist1d`` with minibatches, :mod:`helpers.cli_datasets`), shows a progress bar with the current
loss, and writes the run folder ``--out`` (:mod:`helpers.runfolder`): ``checkpoint.msgpack``,
``history.csv``, ``history.png`` and ``run.json`` (settings, results, versions). ``--resume
CHECKPOINT`` continues a synthetic run to ``--epochs`` in total, with the architecture, readout, data
settings, seed and learning rate stored in the checkpoint (naming other values for them is refused).

Whatever the dataset, everything that can be checked before training is: the options and seeds, the
checkpoint, that ``--out`` can be written and has room, and that the run fits in the machine's
available memory (an estimate from the sizes, computed without allocating anything). Every dataset
has the same divergence rule (a NaN or huge loss stops the run; a loss that ends far above the
untrained loss and ln C warns), the same Ctrl-C (one line, exit status 130; ``--out`` holds the
previous run or the new one, complete) and the same run folder. Bad options end with a usage message
and 2.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from helpers import cli_datasets, cli_deep, cli_export
from helpers.checkpoint import CheckpointError, load_checkpoint, read_checkpoint
from helpers.process_group import is_main_process, launched
from helpers.readout import READOUTS
from helpers.runfolder import RUN_FILES, RunFolderError, check_folder, output_size, publish, run_files
from helpers.runfolder import size_in_words as _size
from helpers.validation import check_bits, check_positive_int, check_positive_number, check_seed
from helpers.versions import stack_versions

DATASETS = ("random", "digits", "mnist1d", "shd", "ssc")
#: what ``--resume`` takes from the checkpoint's ``extra`` record, besides the architecture and readout
RUN_SETTINGS = ("dataset", "steps", "batch", "rate", "seed", "lr", "learning")
#: ``--learning``: BPTT, or an online rule of :mod:`helpers.online` (eligibility traces, braintrace)
LEARNING = ("bptt", "d_rtrl", "es_d_rtrl")
#: exit statuses: a diverged run or a failed write; bad options (argparse's); Ctrl-C (128 + SIGINT)
EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


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
_seed = _option_type(int, check_seed, "an integer from 0 to 2**32 - 1 = 4294967295 (seeds are 32-bit)")
_positive_float = _option_type(
    float, check_positive_number, "a positive, finite number", unparsable="a positive number"
)
_bits = _option_type(int, check_bits, "an integer from 2 to 16")


def _folder(text: str) -> Path:
    """An argparse type for ``--out``: a folder name (``''`` would silently mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a folder name, got {text!r}")
    return Path(text)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except an unset one (``None``), whose help says what happens."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


def build_parser(*, record_only_given: bool = False) -> argparse.ArgumentParser:
    """The parser of ``python -m helpers``. With ``record_only_given``, options that are not on the
    command line are left out of the result instead of taking their defaults (to tell which were given)."""

    def default(value):
        return argparse.SUPPRESS if record_only_given else value

    parser = argparse.ArgumentParser(prog="python -m helpers", description="snn-tutorial command-line tools")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = commands.add_parser(
        "train",
        help="train the tutorial's spiking classifier",
        description="Train the tutorial's spiking classifier with BPTT and Adam (defaults: the tutorial's), "
        "or online with eligibility traces (--learning d_rtrl or es_d_rtrl, notebooks 14 and 16). "
        "--dataset digits or mnist1d trains with minibatches on real data, with the settings of notebook "
        "9 or 10 as defaults (the defaults shown are the random dataset's), keeps the best weights on "
        "validation and scores them once on the test split beside the notebook's baselines; it fixes "
        "--inputs, --outputs and --rate (mnist1d also --steps) and does not support --resume.",
        formatter_class=_HelpFormatter,
    )
    model = train.add_argument_group("network")
    model.add_argument(
        "--inputs", type=_positive_int, default=default(100), help="number of input channels (random only)"
    )
    model.add_argument(
        "--hidden",
        type=_positive_int,
        default=default(4),
        help="number of hidden LIF neurons (digits: 256, mnist1d: 64)",
    )
    model.add_argument(
        "--outputs", type=_positive_int, default=default(2), help="number of classes (random only)"
    )
    data = train.add_argument_group("data")
    data.add_argument(
        "--dataset",
        choices=DATASETS,
        default=default("random"),
        help="synthetic spikes, or real data (notebooks 9 and 10; shd, ssc: your own files, notebook 13)",
    )
    data.add_argument(
        "--data-dir",
        type=_folder,
        default=default(None),
        help="the folder holding the SHD or SSC files (shd_train.h5, ...; shd, ssc only; never downloaded)",
    )
    data.add_argument(
        "--steps",
        type=_positive_int,
        default=default(100),
        help="time steps of 1 ms per example (digits: 20; not mnist1d; shd, ssc: 100 steps of 10 ms)",
    )
    data.add_argument(
        "--batch",
        type=_positive_int,
        default=default(128),
        help="examples in the training batch (digits, mnist1d: in each minibatch, 32, 128)",
    )
    data.add_argument(
        "--rate", type=_positive_float, default=default(5.0), help="input firing rate (Hz) (random only)"
    )
    run = train.add_argument_group("training")
    run.add_argument(
        "--epochs",
        type=_positive_int,
        default=default(800),
        help="total epochs (including resumed ones; digits: 20, mnist1d: 12)",
    )
    run.add_argument(
        "--lr",
        type=_positive_float,
        default=default(3e-3),
        help="Adam learning rate (digits: 1e-2, mnist1d: 2e-2)",
    )
    run.add_argument("--seed", type=_seed, default=default(0), help="seed of weights and data")
    run.add_argument(
        "--learning",
        choices=LEARNING,
        default=default("bptt"),
        help="BPTT, or online learning with eligibility traces (notebooks 14 and 16; "
        "trains the per-step loss)",
    )
    run.add_argument("--readout", choices=tuple(READOUTS), default=default("mean"), help="readout over time")
    run.add_argument("--out", type=_folder, default=default(Path("runs/train")), help="output folder")
    run.add_argument(
        "--resume", type=Path, metavar="CHECKPOINT", help="continue from a checkpoint (random only)"
    )
    run.add_argument("--no-progress", action="store_true", default=default(False), help="no progress bar")
    run.add_argument(
        "--no-baselines",
        action="store_true",
        default=default(False),
        help="skip the notebook's scikit-learn baselines (real datasets only)",
    )
    run.add_argument(
        "--refit",
        action="store_true",
        default=default(False),
        help="after the best epoch is chosen on validation, train again from the seed's fresh weights on "
        "training + validation for that many epochs; score those final weights on test (real datasets only)",
    )
    run.add_argument(
        "--processes",
        type=_positive_int,
        default=default(1),
        help="data-parallel processes on this machine, coordinated on 127.0.0.1 (real datasets only; "
        "--batch a multiple of it; process 0 writes --out)",
    )
    cli_deep.add_options(train, default)  # --layers, --neuron, --output, --loss, --regularise (issue 19)
    train.set_defaults(command_parser=train)
    export = commands.add_parser(
        "export",
        help="export a trained network to a NIR file",
        description="Export a trained network (a run folder of `train`, or its checkpoint.msgpack) to a "
        "NIR file (HDF5): Input -> Affine -> CubaLIF -> Affine -> LI -> Output, time constants in ms "
        "(notebook 12 derives the mapping).",
        formatter_class=_HelpFormatter,
    )
    export.add_argument("source", type=Path, metavar="RUN_FOLDER_OR_CHECKPOINT", help="what to export")
    export.add_argument("--out", type=Path, required=True, help="the NIR file to write (e.g. model.nir)")
    export.add_argument(
        "--bits",
        type=_bits,
        default=None,
        help="quantise the weights to this many bits (one scale per layer)",
    )
    export.add_argument(
        "--dt", type=_positive_float, default=1.0, help="the time step the network ran at (ms)"
    )
    export.set_defaults(command_parser=export)
    return parser


# -- checks before training --------------------------------------------------------------------------
def _given_options(argv: list[str] | None) -> dict[str, Any]:
    """The options named on the command line (not defaulted), with their values."""
    return vars(build_parser(record_only_given=True).parse_args(argv))


#: how ``--resume`` checks each setting it reads from the checkpoint's ``extra`` record
_SETTING_TYPES = {"steps": _positive_int, "batch": _positive_int, "rate": _positive_float,
                  "seed": _seed, "lr": _positive_float}  # fmt: skip


def _resume_settings(args: argparse.Namespace, parser: argparse.ArgumentParser, given: dict) -> dict | None:
    """With ``--resume``: read the checkpoint and take from it the architecture, readout and
    :data:`RUN_SETTINGS` (data, seed, learning rate). Options ``given`` on the command line with other
    values than the checkpoint's are refused. Returns the checkpoint's contents."""
    if args.resume is None:
        return None
    try:
        resume = read_checkpoint(args.resume)
    except (OSError, CheckpointError) as error:
        parser.error(f"--resume: {error}")
    extra = resume.get("extra", {})
    config = resume["config"]
    stored = {}
    for option, key in (("inputs", "n_inputs"), ("hidden", "n_hidden"), ("outputs", "n_outputs")):
        try:
            stored[option] = _positive_int(str(config.get(key)))
        except argparse.ArgumentTypeError as error:
            parser.error(f"--resume: the checkpoint's {key} is {config.get(key)!r}: {error}")
    for option in RUN_SETTINGS:
        if option not in extra:
            continue
        value = extra[option]
        try:
            if option in ("dataset", "learning"):
                choices = DATASETS if option == "dataset" else LEARNING
                if value not in choices:
                    raise argparse.ArgumentTypeError(f"expected one of {list(choices)}")
            else:
                value = _SETTING_TYPES[option](str(value))
        except argparse.ArgumentTypeError as error:
            parser.error(f"--resume: the checkpoint's {option} is {value!r}: {error}")
        stored[option] = value
    stored["readout"] = resume.get("readout_method", args.readout)
    conflicts = [option for option, value in given.items() if option in stored and value != stored[option]]
    if conflicts:
        kept = ", ".join(f"--{option} {stored[option]}" for option in conflicts)
        dropped = ", ".join(f"--{option} {given[option]}" for option in conflicts)
        parser.error(
            f"--resume continues the checkpoint's run with its own settings ({kept}); "
            f"drop {dropped}, or train a new run without --resume"
        )
    for option, value in stored.items():
        setattr(args, option, value)
    epoch, n_losses = resume["epoch"], len(resume["losses"])
    if n_losses != epoch:
        parser.error(
            f"--resume: the checkpoint holds {epoch} epochs but {n_losses} losses; it is not a run's"
        )
    if epoch >= args.epochs:
        parser.error(f"--epochs {args.epochs}: the checkpoint already holds {epoch} epochs")
    return resume


def available_memory() -> int | None:
    """Bytes of memory this process can still use: the smaller of the machine's available memory
    (``MemAvailable`` of /proc/meminfo, else ``os.sysconf``) and what is left under a cgroup limit;
    ``None`` if neither can be read."""
    found = []
    try:
        with open("/proc/meminfo") as stream:
            for line in stream:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError, AttributeError):
            pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            found.append(int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def training_memory(
    steps: int, batch: int, inputs: int, hidden: int, outputs: int, rate_hz: float, epochs: int
) -> dict[str, float]:
    """An estimate, in bytes, of the memory a run of these sizes needs, from the sizes alone (nothing is
    allocated, nothing compiled): ``data`` (drawing the spikes: random floats, their bits, the bools),
    ``held`` (the spikes and their events, kept while training), ``step`` (the compiled training step:
    BPTT keeps about 16 bytes per hidden neuron and 8 per output for every step and example, plus the
    parameters, their gradients and Adam's moments) and ``total``, the peak of the two phases.

    An upper estimate of XLA's own (:meth:`helpers.Trainer.memory_estimate`; tested within a factor 4).
    """
    entries = steps * batch * inputs
    events = entries * rate_hz * 1e-3  # dt = 1 ms
    slots = steps * (1.5 * batch * inputs * rate_hz * 1e-3 + 16)  # padded events per step, with margin
    params = inputs * hidden + hidden + hidden * outputs + outputs
    parts = {
        "data": 9.0 * entries,
        "held": 2.0 * entries + 32 * events + 8 * slots + 40 * epochs,
        "step": steps * batch * (16 * hidden + 8 * outputs + 16) + 16 * slots + 24 * params
        + 40 * batch * (hidden + outputs),
    }  # fmt: skip
    parts["total"] = max(parts["data"], parts["held"] + parts["step"])
    return parts


def minibatch_memory(
    steps: int, n_examples: int, batch: int, inputs: int, hidden: int, outputs: int, processes: int = 1
) -> dict[str, float]:
    """The estimate of :func:`training_memory` for minibatch training on a real dataset: ``data`` (the
    whole encoded dataset, 0/1 spikes of one byte, held on the host by each of ``processes`` and, in
    shares, on the devices), ``step`` (one
    compiled minibatch or evaluation batch: BPTT's states for every step and example, its input as
    floats, the parameters with gradients and Adam's moments) and ``total``."""
    params = inputs * hidden + hidden + hidden * outputs + outputs
    rows = max(batch, cli_datasets.EVAL_BATCH)
    parts = {
        "data": (processes + 1.0) * steps * n_examples * inputs,
        "step": steps * rows * (16 * hidden + 8 * outputs + 4 * inputs + 16) + 24 * params,
    }
    parts["total"] = parts["data"] + parts["step"]
    return parts


def _check_memory(args: argparse.Namespace, parser: argparse.ArgumentParser, n_examples: int | None) -> None:
    """Refuse, before anything is drawn or encoded, sizes whose memory estimate exceeds the available
    memory: :func:`training_memory` for the synthetic task, :func:`minibatch_memory` for a dataset of
    ``n_examples``."""
    if n_examples is None:
        memory = training_memory(
            args.steps, args.batch, args.inputs, args.hidden, args.outputs, args.rate, args.epochs
        )["total"]
    else:
        memory = minibatch_memory(
            args.steps, n_examples, args.batch, args.inputs, args.hidden, args.outputs, args.processes
        )["total"]
    if args.learning != "bptt":  # eligibility traces: one per weight, hidden state (2) and example (float32)
        params = args.inputs * args.hidden + args.hidden + args.hidden * args.outputs + args.outputs
        memory += 8.0 * args.batch * params
    available = available_memory()
    if available is not None and memory > available:
        parser.error(
            f"--steps {args.steps} --batch {args.batch} --inputs {args.inputs} --hidden {args.hidden}: "
            f"training needs about {_size(memory)} of memory (estimate), more than the "
            f"{_size(available)} available; use fewer steps, a smaller batch or fewer neurons"
        )


def _check_out(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Path:
    """Refuse an ``--out`` that cannot take the run folder (:func:`helpers.runfolder.check_folder`);
    return it as an absolute path."""
    params = args.inputs * args.hidden + args.hidden + args.hidden * args.outputs + args.outputs
    try:
        return check_folder(args.out, output_size(params, args.epochs))
    except RunFolderError as error:
        parser.error(f"--out {args.out}: {error}")


# -- the two kinds of data: what differs ---------------------------------------------------------------
class _Synthetic:
    """The synthetic task (notebooks 1-4): Poisson spikes with random labels, trained full-batch."""

    def __init__(self, args, parser, given):
        self.resume = _resume_settings(args, parser, given)
        self.args = args

    def check_memory(self, parser):
        _check_memory(self.args, parser, None)

    def build(self, parser):
        import brainstate
        import brainunit as u

        from helpers.online import OnlineTrainer
        from helpers.synthetic import poisson_dataset
        from helpers.training import Trainer

        args = self.args
        brainstate.random.seed(args.seed)
        try:
            net = cli_deep.network(args)  # helpers.SNN, or a DeepSNN (--layers, --neuron, --output)
            self.spikes, self.labels = poisson_dataset(args.steps, args.batch, args.inputs, args.rate * u.Hz)
            if args.outputs != 2:
                parser.error(f"--outputs {args.outputs}: the {args.dataset!r} dataset has 2 classes")
            if args.learning == "bptt":
                self.trainer = Trainer(
                    net, lr=args.lr, readout_method=args.readout, **cli_deep.trainer_options(args)
                )
            else:
                self.trainer = OnlineTrainer(net, args.learning, lr=args.lr, readout_method=args.readout)
        except (ValueError, TypeError) as error:
            parser.error(str(error))
        self.start, self.history = 0, np.empty(0)
        if self.resume is not None:
            try:
                restored = load_checkpoint(
                    args.resume, net, self.trainer.optimizer, readout_method=args.readout
                )
            except (OSError, CheckpointError) as error:
                parser.error(f"--resume: {error}")
            self.start, self.history = restored["epoch"], restored["losses"]
        return self.trainer

    def fit(self, on_epoch):
        trainer, args = self.trainer, self.args
        new = trainer.fit(self.spikes, self.labels, args.epochs - self.start, on_epoch=on_epoch)
        losses = np.concatenate([self.history, new])
        self.history_rows = {"epoch": np.arange(1, args.epochs + 1), "train_loss": losses}
        self.accuracy = trainer.accuracy(self.spikes, self.labels)
        return losses, float(losses[0])  # the history and its untrained loss

    def files(self, summary):
        args = self.args
        summary |= {
            "resumed_from_epoch": self.start if self.resume is not None else None,
            "final_loss": float(self.history_rows["train_loss"][-1]),
            "train_accuracy": self.accuracy,
        }
        return dict(
            history=self.history_rows, summary=summary, checkpoint_epoch=args.epochs,
            extra={k: getattr(args, k) for k in RUN_SETTINGS},
            title=f"{cli_deep.describe(args)}, lr {args.lr:g}, seed {args.seed}",
        )  # fmt: skip

    def report(self):
        losses = self.history_rows["train_loss"]
        accuracy, readout = self.accuracy, self.args.readout
        return [f"final loss {losses[-1]:.4f}, training accuracy {accuracy:.4f} ({readout} readout)"]


class _RealData:
    """A real dataset (notebooks 9 and 10): minibatches, the best epoch on validation kept and scored
    once on test, beside the notebook's baselines."""

    def __init__(self, args, parser, given):
        cli_datasets.settle_options(args, parser, given)
        self.args = args

    def check_memory(self, parser):
        n_examples = cli_datasets.n_examples(self.args)
        # --refit joins training and validation in a copy: counted as a second dataset (an upper bound)
        _check_memory(self.args, parser, 2 * n_examples if self.args.refit else n_examples)

    def build(self, parser):
        import brainstate

        from helpers.distributed import DataParallelTrainer
        from helpers.minibatch import MinibatchTrainer
        from helpers.online import OnlineMinibatchTrainer

        args = self.args
        self.splits = cli_datasets.load_splits(args.dataset, args.data_dir, args.steps)
        self.encoded = cli_datasets.encode(args.dataset, self.splits, args.steps)
        brainstate.random.seed(args.seed)
        net = cli_deep.network(args)  # helpers.SNN, or a DeepSNN (--layers, --neuron, --output)
        self.trainer: MinibatchTrainer
        if args.learning == "bptt":
            # one code path for one process, many local devices and many processes (--processes)
            self.trainer = DataParallelTrainer(
                net, lr=args.lr, readout_method=args.readout, **cli_deep.trainer_options(args)
            )
        else:
            self.trainer = OnlineMinibatchTrainer(net, args.learning, lr=args.lr, readout_method=args.readout)
        return self.trainer

    def fit(self, on_epoch):
        trainer, args = self.trainer, self.args
        train, val, test = self.encoded
        self.best = {"epoch": 0, "val_accuracy": -1.0}

        def keep_best(row):
            if row["val_accuracy"] > self.best["val_accuracy"]:  # the first of equally good epochs
                self.best = {k: row[k] for k in ("epoch", "val_accuracy", "val_loss")}
                self.best_state = (trainer.weights(), trainer.optimizer.state_dict())
            on_epoch(row | {"best": self.best["val_accuracy"]})

        self.history_rows = trainer.fit(
            train, args.epochs, args.batch, seed=args.seed, validation=val,
            eval_batch_size=cli_datasets.eval_batch(args.processes), on_epoch=keep_best,
        )  # fmt: skip
        weights, optimizer_state = self.best_state
        trainer.load_weights(weights)
        trainer.optimizer.load_state_dict(optimizer_state)
        untrained = trainer.untrained_loss  # the blow-up rule's reference (a refit sets its own)
        self.refit = self._refit(on_epoch) if args.refit else None
        self.test = trainer.evaluate(test, cli_datasets.eval_batch(args.processes))  # once: best or refit
        self.baselines = {}
        if is_main_process() and not args.no_baselines:  # process 0 reports them
            self.baselines = cli_datasets.baselines(args.dataset, self.splits, self.encoded)
        return self.history_rows["train_loss"], untrained

    def _refit(self, on_epoch) -> dict:
        """``--refit``: with the epoch count chosen on validation, train from the seed's fresh weights
        on training + validation (the validation part no longer scores anything) and keep the final
        weights. Returns the refit's epochs, examples, training losses and the blow-up rule's verdict
        on them (a message, or ``None``)."""
        trainer, args = self.trainer, self.args
        (train_x, train_y), (val_x, val_y), _ = self.encoded
        both = (np.concatenate([train_x, val_x], axis=1), np.concatenate([train_y, val_y]))
        epochs = int(self.best["epoch"])
        trainer.reinitialize(args.seed)
        rows = trainer.fit(
            both, epochs, args.batch, seed=args.seed, on_epoch=lambda row: on_epoch(row | {"refit": epochs})
        )
        losses = np.asarray(rows["train_loss"], dtype=np.float64)
        return {
            "epochs": epochs,
            "examples": len(both[1]),
            "train_loss": [float(v) for v in losses],
            "blow_up": trainer.blow_up(losses, trainer.untrained_loss),
        }

    def files(self, summary):
        args, best, history = self.args, self.best, self.history_rows
        summary |= {
            "dataset": args.dataset,
            "split_sizes": self.splits.sizes(),
            "best_epoch": best["epoch"],
            "validation_accuracy": best["val_accuracy"],
            "validation_loss": best["val_loss"],
            "final_validation_accuracy": float(history["val_accuracy"][-1]),
            "final_train_loss": float(history["train_loss"][-1]),
            "test_accuracy": self.test["accuracy"],
            "test_loss": self.test["loss"],
            "test_weights": "refit" if self.refit else "best_epoch",
            "baselines": self.baselines,
        }
        extra = {k: getattr(args, k) for k in ("dataset", "steps", "batch", "seed", "lr", "learning")}
        extra |= {"epochs": args.epochs, "best_epoch": best["epoch"]}
        if self.refit:  # the checkpoint holds the refit's final weights
            summary["refit"] = {
                "epochs": self.refit["epochs"],
                "examples": self.refit["examples"],
                "train_loss": self.refit["train_loss"],
                "final_train_loss": self.refit["train_loss"][-1],
            }
            extra |= {"weights": "refit", "refit_examples": self.refit["examples"]}
        title = f"{args.dataset}: {cli_deep.describe(args)}, lr {args.lr:g}, seed {args.seed}"
        if self.refit:  # history.csv/png show the run that chose the epoch; the weights are the refit's
            title += f" (weights: refit for {self.refit['epochs']} epochs on training + validation)"
        return dict(
            history=history, summary=summary, checkpoint_epoch=best["epoch"], marker=best["epoch"],
            extra=extra, title=title,
            losses=np.asarray(self.refit["train_loss"]) if self.refit else None,
        )  # fmt: skip

    def report(self):
        best = self.best
        epoch = f"(epoch {best['epoch']} of {self.args.epochs})"
        lines = [f"best validation accuracy {best['val_accuracy']:.4f} {epoch}"]
        if self.refit:
            lines[0] += (
                f"; refit on training + validation ({self.refit['examples']} examples) for "
                f"{self.refit['epochs']} epochs: test accuracy {self.test['accuracy']:.4f} "
                "with its final weights"
            )
        else:
            lines[0] += f"; test accuracy {self.test['accuracy']:.4f} with its weights"
        return lines + [
            f"baseline {name}: penalty {b['setting']:g} chosen on validation "
            f"({b['validation_accuracy']:.4f}), test accuracy {b['test_accuracy']:.4f}"
            for name, b in self.baselines.items()
        ]


# -- the command ---------------------------------------------------------------------------------------
def _out_of_memory(error: BaseException) -> bool:
    return isinstance(error, MemoryError) or "RESOURCE_EXHAUSTED" in str(error)


class _InterruptsIgnored:
    """Ignore Ctrl-C inside the block (the lines printed after the run folder is complete)."""

    def __enter__(self):
        self.main_thread = threading.current_thread() is threading.main_thread()
        if self.main_thread:
            self.previous = signal.signal(signal.SIGINT, signal.SIG_IGN)

    def __exit__(self, *exc):
        if self.main_thread:  # a handler installed outside Python reads as None: Python's own then
            handler = self.previous if self.previous is not None else signal.default_int_handler
            signal.signal(signal.SIGINT, handler)


def train(
    args: argparse.Namespace,
    parser: argparse.ArgumentParser,
    given: dict | None = None,
    argv: list[str] | None = None,
) -> int:
    """The ``train`` command, the same for every dataset: options (or a checkpoint) -> checks (memory,
    ``--out``) -> training with a progress bar -> the run folder.

    Returns the exit status: 0; 1 if training diverged, ran out of memory or the files could not be
    written (then ``--out`` is left as it was); 130 on Ctrl-C. ``given`` holds the options named on
    the command line, ``argv`` the command line itself (default ``sys.argv[1:]``).

    With ``--processes N`` (N > 1), after the checks this process starts N copies of the same command
    on this machine (:func:`helpers.launcher.launch`) and returns their status; each copy trains its
    share of every minibatch, and only process 0 prints and writes ``--out``.
    """
    import brainstate
    import brainunit as u
    from tqdm.auto import tqdm

    from helpers.training import LossBlowUpWarning

    given = given or {}
    cli_datasets.refuse_dataset_options(args, parser)
    cli_deep.refuse_with_resume(args, parser, given)  # before a checkpoint is read (issue 19's options)
    kind = _Synthetic if cli_datasets.dataset_of(args) == "random" else _RealData
    run = kind(args, parser, given)  # settles and checks the options (and a checkpoint)
    cli_deep.settle(args, parser, given)  # the deeper networks' options (issue 19), on settled ones
    run.check_memory(parser)  # before the size of the outputs: a size beyond memory is named as such
    out = _check_out(args, parser)
    if args.processes > 1 and not launched():  # start the processes, which train
        from helpers.launcher import launch

        return launch(
            [sys.executable, "-m", "helpers", *(sys.argv[1:] if argv is None else argv)], args.processes
        )
    brainstate.environ.set(dt=cli_datasets.DT_MS.get(args.dataset, 1.0) * u.ms)
    trainer = run.build(parser)
    start = getattr(run, "start", 0)
    main_process = is_main_process()  # the one that prints and writes (of --processes N)
    try:
        with (
            tqdm(total=args.epochs, initial=start, desc="training", unit="epoch",
                 disable=args.no_progress or not main_process, file=sys.stderr) as progress,
            warnings.catch_warnings(record=True) as caught,
        ):  # fmt: skip
            warnings.simplefilter("always", LossBlowUpWarning)

            refitting: list[bool] = []  # set once --refit's epochs start (a bar of their own)

            def on_epoch(row: dict) -> None:
                if "refit" in row and not refitting:
                    refitting.append(True)
                    progress.set_description("refit on training + validation", refresh=False)
                    progress.set_postfix_str("", refresh=False)
                    progress.reset(total=row["refit"])
                progress.update(1)
                shown = {"loss": f"{row['train_loss']:.4f}"}
                if "val_accuracy" in row:
                    shown |= {"val_acc": f"{row['val_accuracy']:.4f}", "best": f"{row['best']:.4f}"}
                progress.set_postfix(shown, refresh=False)

            losses, untrained = run.fit(on_epoch)
    except FloatingPointError as error:
        if main_process:
            print(f"error: {error}; nothing was written", file=sys.stderr)
        return EXIT_FAILED
    except Exception as error:
        if not _out_of_memory(error):
            raise
        print(
            "error: out of memory while training; use fewer steps, a smaller batch or fewer neurons; "
            "nothing was written",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if not main_process:  # every process trained and scored (collectives); only process 0 reports
        return 0
    for warning in caught:
        if not issubclass(warning.category, LossBlowUpWarning):
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    warning = trainer.blow_up(losses, untrained)  # the one rule, over the whole run (resumed included)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    refit = getattr(run, "refit", None)
    if refit and refit["blow_up"]:  # --refit: the rule over the refit's own losses
        print(f"warning: refit: {refit['blow_up']}", file=sys.stderr)

    settings = {
        k: (str(v) if isinstance(v, Path) else v)
        for k, v in vars(args).items()
        if k not in ("command", "command_parser") and v is not None
    }
    summary = {"settings": settings, "epochs": args.epochs}
    parts = run.files(summary)
    summary |= {"readout": args.readout, "versions": stack_versions()}
    contents = run_files(net=trainer.net, optimizer=trainer.optimizer, readout_method=args.readout, **parts)
    try:
        publish(out, contents)
        with _InterruptsIgnored():
            for line in run.report():
                print(line)
            print(f"wrote {', '.join(RUN_FILES)} to {args.out}")
    except OSError as error:
        print(f"error: could not write to {args.out} ({error}); it was left as it was", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"interrupted: {args.out} holds the previous run or the new one, complete", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: the command line) and run the command; return the exit status.

    Bad options exit with status 2 and a usage message; a diverging run returns 1 and writes nothing;
    Ctrl-C returns 130 with one line (``--out`` holds the previous run or the new one, complete).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            return train(args, args.command_parser, _given_options(argv), argv)
        if args.command == "export":
            return cli_export.export(args, args.command_parser)
    except KeyboardInterrupt:
        print(f"interrupted: nothing was written, {args.out} was left as it was", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_USAGE  # pragma: no cover - argparse requires a command


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
