"""Command-line trainer: ``python -m helpers train [options]``.

Trains the tutorial's network on its dataset, shows a progress bar with the current loss, and writes
to ``--out``: ``losses.csv`` (epoch, loss), ``loss.png``, ``checkpoint.msgpack`` and ``run.json``
(settings, results, versions). ``--resume CHECKPOINT`` continues a run to ``--epochs`` in total, with
the architecture, readout, data settings, seed and learning rate stored in the checkpoint (naming other
values for them is refused).

Everything that can be checked before training is: the options, the checkpoint, that ``--out`` can be
written and has room, and that the run fits in the machine's available memory (an estimate from the
sizes, computed without allocating anything). The four files are written into a temporary folder
beside ``--out`` and moved into place as a whole (a previous run there is swapped out atomically), so
``--out`` holds either the previous run or the new one, complete, whatever moment a run is stopped.
Ctrl-C ends the run with one line and exit status 130; bad options end with a usage message and 2.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import ctypes
import errno
import io
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

import helpers
from helpers import cli_datasets
from helpers.readout import READOUTS
from helpers.validation import check_positive_int, check_positive_number, check_seed

DATASETS = ("random", "digits", "mnist1d")
#: what ``--resume`` takes from the checkpoint's ``extra`` record, besides the architecture and readout
RUN_SETTINGS = ("dataset", "steps", "batch", "rate", "seed", "lr", "learning")
#: ``--learning``: BPTT, or an online rule of :mod:`helpers.online` (eligibility traces, braintrace)
LEARNING = ("bptt", "d_rtrl", "es_d_rtrl")
#: the files a run writes to ``--out``
OUTPUT_FILES = ("checkpoint.msgpack", "losses.csv", "loss.png", "run.json")
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


def _folder(text: str) -> Path:
    """An argparse type for ``--out``: a folder name (``''`` would silently mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a folder name, got {text!r}")
    return Path(text)


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
        description="Train the tutorial's spiking classifier with BPTT and Adam (defaults: the tutorial's). "
        "--dataset digits or mnist1d trains with minibatches on real data, with the settings of notebook "
        "9 or 10 as defaults (the defaults shown are the random dataset's), keeps the best weights on "
        "validation and scores them once on the test split beside the notebook's baselines; it fixes "
        "--inputs, --outputs and --rate (mnist1d also --steps) and does not support --resume.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
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
        help="synthetic spikes, or real data (notebooks 9 and 10)",
    )
    data.add_argument(
        "--steps",
        type=_positive_int,
        default=default(100),
        help="time steps of 1 ms per example (digits: 20; not mnist1d)",
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
        help="BPTT, or online learning with eligibility traces (notebook 14; per-step loss)",
    )
    run.add_argument("--readout", choices=tuple(READOUTS), default=default("mean"), help="readout over time")
    run.add_argument("--out", type=_folder, default=default(Path("runs/train")), help="output folder")
    run.add_argument(
        "--resume", type=Path, metavar="CHECKPOINT", help="continue from a checkpoint (random only)"
    )
    run.add_argument("--no-progress", action="store_true", default=default(False), help="no progress bar")
    train.set_defaults(command_parser=train)
    return parser


def _size(n_bytes: float) -> str:
    """``n_bytes`` in words: ``"3.2 GiB"``."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n_bytes < 1024 or unit == "PiB":
            return f"{n_bytes:.0f} {unit}" if unit == "bytes" else f"{n_bytes:.3g} {unit}"
        n_bytes /= 1024
    raise AssertionError  # pragma: no cover


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
        resume = helpers.read_checkpoint(args.resume)
    except (OSError, helpers.CheckpointError) as error:
        parser.error(f"--resume: {error}")
    extra = resume.get("extra", {})
    config = resume["config"]
    stored = {"inputs": config["n_inputs"], "hidden": config["n_hidden"], "outputs": config["n_outputs"]}
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


def _output_size(args: argparse.Namespace) -> int:
    """Bytes the four output files take, generously: checkpoint, one CSV row per epoch, PNG, JSON."""
    params = args.inputs * args.hidden + args.hidden + args.hidden * args.outputs + args.outputs
    return 3 * 4 * params * 2 + 8 * args.epochs + 32 * args.epochs + 512 * 1024


def _check_resources(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Path:
    """Before training: refuse sizes whose memory estimate exceeds the available memory, and an ``--out``
    that cannot be written or lacks room. Returns ``--out`` as an absolute path."""
    memory = training_memory(
        args.steps, args.batch, args.inputs, args.hidden, args.outputs, args.rate, args.epochs
    )["total"]
    available = available_memory()
    if available is not None and memory > available:
        parser.error(
            f"--steps {args.steps} --batch {args.batch} --inputs {args.inputs} --hidden {args.hidden}: "
            f"training needs about {_size(memory)} of memory (estimate), more than the "
            f"{_size(available)} available; use fewer steps, a smaller batch or fewer neurons"
        )
    out = Path(os.path.abspath(args.out))
    try:
        if out.parent == out:
            parser.error(f"--out {args.out}: give a folder below the root")
        if out.is_symlink():  # the swap would replace the link, not the folder it points to
            parser.error(f"--out {args.out}: is a symbolic link; give the folder it points to")
        if out.exists():
            if not out.is_dir():
                parser.error(f"--out {args.out}: exists and is not a folder")
            others = sorted(path.name for path in out.iterdir() if path.name not in OUTPUT_FILES)
            if others:
                shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
                parser.error(
                    f"--out {args.out}: the folder holds other files ({shown}); give an empty or new "
                    f"folder, or one holding a previous run ({', '.join(OUTPUT_FILES)}), which is replaced"
                )
        existing = out.parent
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            parser.error(f"--out {args.out}: {existing} is a file, not a folder")
        with tempfile.TemporaryFile(dir=existing, prefix=".snn-write-test-"):
            pass
        free, needed = shutil.disk_usage(existing).free, _output_size(args)
    except OSError as error:
        parser.error(f"--out {args.out}: cannot write there ({error.strerror or error})")
    if free < needed:
        parser.error(
            f"--out {args.out}: the outputs need about {_size(needed)} but {existing} has {_size(free)} free"
        )
    return out


# -- training ----------------------------------------------------------------------------------------
def _build(args: argparse.Namespace, parser: argparse.ArgumentParser):
    """The network, its trainer and the dataset the options describe: ``(trainer, spikes, labels)``."""
    import brainstate
    import brainunit as u

    brainstate.environ.set(dt=1.0 * u.ms)
    brainstate.random.seed(args.seed)
    try:
        online = args.learning != "bptt"
        net = helpers.SNN(args.inputs, args.hidden, args.outputs, online=online)
        spikes, labels = helpers.poisson_dataset(args.steps, args.batch, args.inputs, args.rate * u.Hz)
        if args.outputs != 2:
            parser.error(f"--outputs {args.outputs}: the {args.dataset!r} dataset has 2 classes")
        if online:
            trainer = helpers.OnlineTrainer(net, args.learning, lr=args.lr, readout_method=args.readout)
        else:
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


# -- writing: a whole folder at once -----------------------------------------------------------------
# Every change to the file system goes through the five functions below, so that a test can stop the
# writing after any one of them and check that --out holds one complete run.
def _write_file(path: Path, content: bytes | Callable[[Path], Any]) -> None:
    """Write ``content`` (bytes, or a function that writes the file at a path) and flush it to disk."""
    if callable(content):
        content(path)
    else:
        path.write_bytes(content)
    with open(path, "rb") as stream:
        os.fsync(stream.fileno())


def _rename(source: Path, target: Path) -> None:
    os.rename(source, target)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); ``False``
    where the system or file system cannot (then the caller renames twice)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _make_folder(path: Path) -> None:
    os.mkdir(path)


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path)


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold a Ctrl-C back until the block is done (the swap of the folders), then raise it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda *_: received.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
        if received:
            raise KeyboardInterrupt


def publish(out: Path, contents: dict[str, bytes | Callable[[Path], Any]]) -> None:
    """Make ``out`` a folder holding exactly ``contents`` (file name -> bytes, or a function writing the
    file at a path), replacing a previous one as a whole.

    The files are written into a temporary sibling folder, flushed to disk, then moved into place: if
    ``out`` exists, the two folders are swapped in one atomic step (Linux), or, elsewhere, ``out`` is
    renamed aside and the new folder renamed in (rolled back if that fails). A Ctrl-C during the swap
    is held back until it is done. Then the old folder is deleted. Whenever this stops, ``out`` holds
    the old run or the new one, complete, and nothing else is left beside it (folders created for it
    are removed again if it was not written).
    """
    created: list[Path] = []
    staging = aside = None
    try:
        for folder in reversed([out.parent, *out.parent.parents]):
            if not folder.exists():
                created.append(folder)  # before: an interrupt right after mkdir still removes it
                _make_folder(folder)
        staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.new-"))
        aside = staging.with_name(staging.name.replace(".new-", ".old-", 1))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes the folder private; give it normal rights
        for name, content in contents.items():
            _write_file(staging / name, content)
        with _interrupts_deferred():
            if not out.exists():
                _rename(staging, out)
            elif not _exchange(staging, out):  # no atomic swap here: rename out aside, the new one in
                _rename(out, aside)
                _rename(staging, out)
        for old in (staging, aside):  # after a swap, staging holds the old run; after two renames, aside
            if old.exists():
                _remove_tree(old)
    except BaseException:
        if aside is not None and aside.exists() and not out.exists():
            os.rename(aside, out)  # roll back: the old run stays
        for leftover in (staging, aside):
            if leftover is not None:
                shutil.rmtree(leftover, ignore_errors=True)
        if not out.exists():
            for folder in reversed(created):
                with contextlib.suppress(OSError):
                    folder.rmdir()
        raise


def _outputs(args: argparse.Namespace, trainer, losses: list, accuracy: float, resumed_from) -> dict:
    """The four output files: name -> bytes (or, for the checkpoint, a function that writes it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = {
        k: (str(v) if isinstance(v, Path) else v)
        for k, v in vars(args).items()
        if k not in ("command", "command_parser")
    }
    extra = {k: settings[k] for k in RUN_SETTINGS}

    def checkpoint(path: Path) -> None:
        helpers.save_checkpoint(path, trainer, epoch=args.epochs, losses=np.asarray(losses), extra=extra)

    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["epoch", "loss"])
    writer.writerows((epoch, f"{loss:.8g}") for epoch, loss in enumerate(losses, start=1))

    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    helpers.plot_loss(losses, ax=ax, log=True)
    ax.set_title(f"{args.hidden} hidden LIF neurons, lr {args.lr:g}, seed {args.seed}")
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, format="png", dpi=100)
    plt.close(fig)

    summary = {
        "settings": settings,
        "epochs": args.epochs,
        "resumed_from_epoch": resumed_from,
        "final_loss": losses[-1],
        "train_accuracy": accuracy,
        "readout": args.readout,
        "versions": helpers.stack_versions(),
    }
    return {
        "checkpoint.msgpack": checkpoint,
        "losses.csv": table.getvalue().encode(),
        "loss.png": image.getvalue(),
        "run.json": (json.dumps(summary, indent=2) + "\n").encode(),
    }


def _out_of_memory(error: BaseException) -> bool:
    return isinstance(error, MemoryError) or "RESOURCE_EXHAUSTED" in str(error)


def train(args: argparse.Namespace, parser: argparse.ArgumentParser, given: dict | None = None) -> int:
    """The ``train`` command: options (or a checkpoint) -> checks -> training with a progress bar -> files.

    Returns the exit status: 0, or 1 if training diverged or the files could not be written (then
    ``--out`` is left as it was). ``given`` holds the options named on the command line.
    """
    if cli_datasets.dataset_of(args) != "random":  # digits, mnist1d: minibatch training on real data
        return cli_datasets.train(args, parser, given or {})
    resume = _resume_settings(args, parser, given or {})
    out = _check_resources(args, parser)
    trainer, spikes, labels = _build(args, parser)

    start_epoch, history = 0, np.empty(0)
    if resume is not None:
        try:
            restored = helpers.load_checkpoint(args.resume, trainer)
        except (OSError, helpers.CheckpointError) as error:
            parser.error(f"--resume: {error}")
        start_epoch, history = restored["epoch"], restored["losses"]
    try:
        losses = _train_with_progress(
            trainer, spikes, labels, history, start_epoch, args.epochs, quiet=args.no_progress
        )
        accuracy = trainer.accuracy(spikes, labels)
    except FloatingPointError as error:
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
    warning = trainer.blow_up(losses)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)

    contents = _outputs(args, trainer, losses, accuracy, start_epoch if resume is not None else None)
    args.writing = True  # for the message of a Ctrl-C from here on (see main)
    try:
        publish(out, contents)
    except OSError as error:
        print(f"error: could not write to {args.out} ({error}); it was left as it was", file=sys.stderr)
        return EXIT_FAILED
    print(f"final loss {losses[-1]:.4f}, training accuracy {accuracy:.4f} ({args.readout} readout)")
    print(f"wrote losses.csv, loss.png, checkpoint.msgpack and run.json to {args.out}")
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
            return train(args, args.command_parser, _given_options(argv))
    except KeyboardInterrupt:
        if getattr(args, "writing", False):
            where = f"{args.out} holds the previous run or the new one, complete"
        else:
            where = f"nothing was written, {args.out} was left as it was"
        print(f"interrupted: {where}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_USAGE  # pragma: no cover - argparse requires a command


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
