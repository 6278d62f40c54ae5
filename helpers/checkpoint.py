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
from helpers.readout import READOUTS
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
            f"{path} has checkpoint version {raw['version']!r}, this code reads version {VERSION}"
        )
    problem = _field_problem(raw)
    if problem:
        raise CheckpointError(f"{path} is not a valid checkpoint: {problem}")
    return raw


#: the type of every field of :attr:`helpers.SNN.config` as a checkpoint stores it
CONFIG_TYPES = {
    "n_inputs": int, "n_hidden": int, "n_outputs": int, "tau_syn_ms": float, "tau_mem_ms": float,
    "tau_out_ms": float, "v_threshold_mV": float, "input_scale": float, "surrogate": str,
}  # fmt: skip
#: fields of :attr:`helpers.SNN.config` present only when the option is set
OPTIONAL_CONFIG_TYPES = {"recurrent": bool, "train_tau_mem": bool}


def _kind(value) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"


def _field_problem(raw: dict) -> str | None:
    """What is wrong with the fields of a checkpoint that are not the network's arrays, or ``None``."""
    config = raw["config"]
    if not isinstance(config, dict):
        return f"config must be a dict, got {_kind(config)}"
    if not set(CONFIG_TYPES) <= set(config) <= set(CONFIG_TYPES) | set(OPTIONAL_CONFIG_TYPES):
        return (
            f"config must hold the keys {sorted(CONFIG_TYPES)} (and optionally "
            f"{sorted(OPTIONAL_CONFIG_TYPES)}), got {sorted(config)}"
        )
    for key, kind in (CONFIG_TYPES | OPTIONAL_CONFIG_TYPES).items():
        if key not in config:
            continue
        value = config[key]
        if type(value) is not kind and not (kind is float and type(value) is int):
            return f"config[{key!r}] must be {kind.__name__}, got {_kind(value)}"
    epoch = raw["epoch"]
    if type(epoch) is not int or epoch < 0:
        return f"epoch must be a non-negative integer, got {_kind(epoch)}"
    losses = raw["losses"]
    if not (isinstance(losses, np.ndarray) and losses.ndim == 1 and losses.dtype == np.float64):
        return f"losses must be a 1-D float64 array, got {_kind(losses)}"
    readout_method = raw.get("readout_method", "mean")
    if not isinstance(readout_method, str) or readout_method not in READOUTS:
        return f"readout_method must be one of {sorted(READOUTS)}, got {_kind(readout_method)}"
    extra = raw.get("extra", {})
    if not isinstance(extra, dict) or not all(
        isinstance(key, str) and (value is None or type(value) in (str, int, float, bool))
        for key, value in extra.items()
    ):
        return f"extra must be a dict of plain values (numbers, strings), got {_kind(extra)}"
    for key in ("params", "opt_state"):
        if not isinstance(raw[key], dict):
            return f"{key} must be a dict of arrays, got {_kind(raw[key])}"
    return None


def _mismatch(saved, expected, where: str) -> str | None:
    """The first difference between a checkpoint's tree and the network's (same keys; arrays of the same
    shape and dtype; other leaves of the same type, and unit fields equal), or ``None``."""
    if isinstance(expected, dict):
        if not isinstance(saved, dict):
            return f"{where} must be a dict, got {_kind(saved)}"
        if set(saved) != set(expected):
            return f"{where} must hold the keys {sorted(expected)}, got {sorted(saved)}"
        for key in expected:
            problem = _mismatch(saved[key], expected[key], f"{where}/{key}")
            if problem:
                return problem
        return None
    if hasattr(expected, "shape") and hasattr(expected, "dtype"):
        if not isinstance(saved, np.ndarray):
            return f"{where} must be an array, got {_kind(saved)}"
        if saved.shape != tuple(expected.shape) or saved.dtype != expected.dtype:
            return (
                f"{where} must have shape {tuple(expected.shape)} and dtype {expected.dtype}, "
                f"got shape {saved.shape} and dtype {saved.dtype}"
            )
        if where.endswith("/dim") and not np.array_equal(saved, np.asarray(expected)):
            return (
                f"{where} (the physical unit) must be {np.asarray(expected).tolist()}, got {saved.tolist()}"
            )
        return None
    if type(saved) is not type(expected):
        return f"{where} must be {type(expected).__name__}, got {_kind(saved)}"
    if where.rsplit("/", 1)[-1] in ("scale", "base", "factor") and saved != expected:
        return f"{where} (the physical unit) must be {expected!r}, got {saved!r}"
    return None


def load_checkpoint(path: str | os.PathLike, trainer: Trainer) -> dict[str, Any]:
    """Restore parameters and optimiser state from ``path`` into ``trainer`` (in place).

    Returns ``{"epoch": int, "losses": ndarray, "config": dict, "extra": dict}``. Raises
    :class:`CheckpointError` when the checkpoint was saved from a different architecture or readout.
    """
    raw = read_checkpoint(path)
    ours = trainer.net.config
    saved = raw["config"]
    differences = [
        f"{key}: checkpoint {saved.get(key)!r}, network {ours.get(key)!r}"
        for key in [*ours, *(key for key in saved if key not in ours)]
        if key not in ("surrogate",) and saved.get(key) != ours.get(key)
    ]
    if differences:
        raise CheckpointError(f"{path} was saved from another network ({'; '.join(differences)})")
    if raw.get("readout_method", trainer.readout_method) != trainer.readout_method:
        raise CheckpointError(
            f"{path} was trained with the {raw['readout_method']!r} readout, this trainer uses "
            f"{trainer.readout_method!r}"
        )
    expected = braintools.file.msgpack_to_state_dict(_payload(trainer))
    for key in ("params", "opt_state"):
        problem = _mismatch(raw[key], expected[key], key)
        if problem:
            raise CheckpointError(f"{path} does not match the network's parameters: {problem}")
    try:
        braintools.file.msgpack_load(str(path), target={**raw, **_payload(trainer)}, mismatch="error")
    except ValueError as error:
        raise CheckpointError(f"{path} does not match the network's parameters: {error}") from None
    return {
        "epoch": raw["epoch"],
        "losses": np.asarray(raw["losses"], dtype=np.float64),
        "config": saved,
        "extra": raw.get("extra", {}),
    }
