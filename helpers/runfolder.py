"""A run folder: the files a training run writes, checked before training and published as a whole.

Every run of ``python -m helpers train`` (whatever the dataset) writes the same four files,
:data:`RUN_FILES`: ``checkpoint.msgpack`` (network, optimiser state and loss history,
:mod:`helpers.checkpoint`), ``history.csv`` and ``history.png`` (the history of
:mod:`helpers.training`: ``epoch``, ``train_loss`` and any validation columns) and ``run.json``
(settings, results, versions). :func:`check_folder` tells before training whether a folder can take
them; :func:`run_files` renders them; :func:`publish` writes them into a temporary sibling folder and
swaps it in atomically, so the folder holds the previous run or the new one, complete, whatever moment
a run is stopped.

Introduced by the command line (README, "Train from the command line"); it knows nothing of argparse.
"""

from __future__ import annotations

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
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from helpers.checkpoint import save_checkpoint
from helpers.plotting import plot_history, plot_loss

__all__ = ["RUN_FILES", "RunFolderError", "check_folder", "run_files", "publish", "size_in_words"]

#: the files a run writes, whatever the dataset
RUN_FILES = ("checkpoint.msgpack", "history.csv", "history.png", "run.json")

#: a file's content: bytes, or a function that writes the file at a path
Content = bytes | Callable[[Path], Any]


class RunFolderError(ValueError):
    """A folder cannot take a run (a file in the way, no right to write, too little room)."""


def size_in_words(n_bytes: float) -> str:
    """``n_bytes`` in words: ``"3.2 GiB"``."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n_bytes < 1024:
            return f"{n_bytes:.0f} {unit}" if unit == "bytes" else f"{n_bytes:.3g} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.3g} PiB"


def check_folder(out: Path, needed_bytes: int) -> Path:
    """Check, before training, that ``out`` can become a run folder; return it as an absolute path.

    Refused (:class:`RunFolderError`, a message that names the problem): the root; a symbolic link; a
    file; a folder holding files other than :data:`RUN_FILES` (a previous run is replaced as a whole,
    anything else would be lost); a path under a file; a place where no file can be created; less than
    ``needed_bytes`` free on its file system.
    """
    out = Path(os.path.abspath(out))
    try:
        if out.parent == out:
            raise RunFolderError("give a folder below the root")
        if out.is_symlink():  # the swap would replace the link, not the folder it points to
            raise RunFolderError("is a symbolic link; give the folder it points to")
        if out.exists():
            if not out.is_dir():
                raise RunFolderError("exists and is not a folder")
            others = sorted(path.name for path in out.iterdir() if path.name not in RUN_FILES)
            if others:
                shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
                raise RunFolderError(
                    f"the folder holds other files ({shown}); give an empty or new folder, or one holding "
                    f"a previous run ({', '.join(RUN_FILES)}), which is replaced"
                )
        existing = out.parent
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            raise RunFolderError(f"{existing} is a file, not a folder")
        with tempfile.TemporaryFile(dir=existing, prefix=".snn-write-test-"):
            pass
        free = shutil.disk_usage(existing).free
    except OSError as error:
        raise RunFolderError(f"cannot write there ({error.strerror or error})") from None
    if free < needed_bytes:
        raise RunFolderError(
            f"the outputs need about {size_in_words(needed_bytes)} but {existing} has "
            f"{size_in_words(free)} free"
        )
    return out


def output_size(n_params: int, epochs: int) -> int:
    """Bytes the four files take, generously: the checkpoint (weights and two Adam moments, twice for
    msgpack's overhead), a CSV row and a loss per epoch, the PNG and the JSON."""
    return 3 * 4 * n_params * 2 + 8 * epochs + 32 * epochs + 512 * 1024


def run_files(
    *,
    net,
    optimizer,
    history: Mapping[str, np.ndarray],
    summary: dict[str, Any],
    title: str,
    checkpoint_epoch: int,
    readout_method: str,
    extra: dict[str, Any],
    marker: int | None = None,
    losses: np.ndarray | None = None,
) -> dict[str, Content]:
    """The four files of a run (name -> bytes, or for the checkpoint a function writing it).

    ``history`` has ``epoch`` and ``train_loss`` and optionally ``val_loss`` and ``val_accuracy``
    (arrays ``[epochs]``); the checkpoint holds the network, the optimiser and the training losses of
    the first ``checkpoint_epoch`` epochs (or ``losses``, where the weights come from another run: the
    command line's ``--refit``); ``marker`` draws a dotted line at that epoch (the best one).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if losses is None:
        losses = np.asarray(history["train_loss"], dtype=np.float64)[:checkpoint_epoch]
    losses = np.asarray(losses, dtype=np.float64)

    def checkpoint(path: Path) -> None:
        save_checkpoint(
            path,
            net,
            optimizer,
            epoch=checkpoint_epoch,
            losses=losses,
            readout_method=readout_method,
            extra=extra,
        )

    columns = [key for key in ("epoch", "train_loss", "val_loss", "val_accuracy") if key in history]
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(columns)
    for row in zip(*(history[key] for key in columns), strict=True):
        writer.writerow([int(row[0]), *(f"{value:.8g}" for value in row[1:])])

    if "val_accuracy" in history:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
        shown = dict(history)
        shown["train_accuracy"] = np.full_like(history["val_accuracy"], np.nan)  # not measured per epoch
        plot_history(shown, axes=axes)
        if marker is not None:
            axes[1].axvline(marker, color="0.5", ls=":", lw=1)
        fig.suptitle(title)
    else:
        fig, ax = plt.subplots(figsize=(6.5, 3.5))
        plot_loss(history["train_loss"], ax=ax, log=True)
        ax.set_title(title)
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, format="png", dpi=100)
    plt.close(fig)
    return {
        "checkpoint.msgpack": checkpoint,
        "history.csv": table.getvalue().encode(),
        "history.png": image.getvalue(),
        "run.json": (json.dumps(summary, indent=2) + "\n").encode(),
    }


# -- writing: a whole folder at once -----------------------------------------------------------------
# Every change to the file system goes through the five functions below, so that a test can stop the
# writing after any one of them and check that the folder holds one complete run.
def _write_file(path: Path, content: Content) -> None:
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


def publish(out: Path, contents: Mapping[str, Content]) -> None:
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
