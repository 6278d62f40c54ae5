"""Save and restore a training run: parameters, optimiser state and loss history.

Checkpoints are ``braintools.file`` msgpack files (written to a temporary file, then renamed, so a
crash never leaves half a checkpoint). A checkpoint records the network's architecture
(:attr:`helpers.SNN.config`) and is only loaded into a network with the same one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import brainstate
import braintools
import numpy as np

from helpers.arraytypes import Array
from helpers.training import Trainer
from helpers.validation import check_instance, check_non_negative_int

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "read_checkpoint"]

FORMAT = "snn-tutorial-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A file is not a checkpoint of ours, or does not match the network it is loaded into."""


def _payload(trainer: Trainer) -> dict:
    return {
        "params": trainer.net.states(brainstate.ParamState),
        "opt_state": trainer.optimizer.opt_state,
    }


def save_checkpoint(
    path: str | os.PathLike,
    trainer: Trainer,
    *,
    epoch: int,
    losses: Array | Sequence[float] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the trainer's parameters, optimiser state, ``epoch`` and loss history to ``path``.

    ``extra`` is a dict of plain values (numbers, strings) stored alongside, e.g. the data settings.
    Returns the path written.
    """
    check_instance("trainer", trainer, Trainer, "a helpers.Trainer")
    epoch = check_non_negative_int("epoch", epoch)
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot save a checkpoint in {path.parent}: no such folder")
    losses = np.asarray([] if losses is None else losses, dtype=np.float64)
    target = {
        "format": FORMAT,
        "version": VERSION,
        "config": dict(trainer.net.config),
        "readout_method": trainer.readout_method,
        "epoch": epoch,
        "losses": losses,
        "extra": dict(extra or {}),
        **_payload(trainer),
    }
    braintools.file.msgpack_save(str(path), target, overwrite=True)
    return path


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint's contents as plain nested dicts, checking that it is one of ours."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        raw = braintools.file.msgpack_load(str(path), target=None)
    except Exception as error:  # msgpack raises several types for bad bytes
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated, corrupted or another format): {error}"
        ) from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a msgpack file but not an snn-tutorial checkpoint")
    missing = [
        key for key in ("version", "config", "epoch", "losses", "params", "opt_state") if key not in raw
    ]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}: it is incomplete")
    if raw["version"] != VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {raw['version']}, this code reads version {VERSION}"
        )
    return raw


def load_checkpoint(path: str | os.PathLike, trainer: Trainer) -> dict[str, Any]:
    """Restore parameters and optimiser state from ``path`` into ``trainer`` (in place).

    Returns ``{"epoch": int, "losses": ndarray, "config": dict, "extra": dict}``. Raises
    :class:`CheckpointError` when the checkpoint was saved from a different architecture or readout.
    """
    raw = read_checkpoint(path)
    ours = trainer.net.config
    saved = raw["config"]
    differences = [
        f"{key}: checkpoint {saved.get(key)!r}, network {ours[key]!r}"
        for key in ours
        if key not in ("surrogate",) and saved.get(key) != ours[key]
    ]
    if differences:
        raise CheckpointError(f"{path} was saved from another network ({'; '.join(differences)})")
    if raw.get("readout_method", trainer.readout_method) != trainer.readout_method:
        raise CheckpointError(
            f"{path} was trained with the {raw['readout_method']!r} readout, this trainer uses "
            f"{trainer.readout_method!r}"
        )
    try:
        braintools.file.msgpack_load(str(path), target={**raw, **_payload(trainer)}, mismatch="error")
    except ValueError as error:
        raise CheckpointError(f"{path} does not match the network's parameters: {error}") from None
    return {
        "epoch": int(raw["epoch"]),
        "losses": np.asarray(raw["losses"], dtype=np.float64),
        "config": saved,
        "extra": raw.get("extra", {}),
    }
