"""Save and restore a training run: a network, its optimiser's state and the loss history.

A checkpoint holds a network and an optimiser (any ``braintools.optim`` optimiser), not a trainer:
every training path (:class:`helpers.Trainer`, :class:`helpers.MinibatchTrainer`, the command line)
saves and restores the same way. Stored: the network's parameters, the optimiser's own state dict
(its moments and step count, learning rate), the epoch, the losses, the readout and plain ``extra``
values. Checkpoints are ``braintools.file`` msgpack files (written to a temporary file, then renamed,
so a crash never leaves half a checkpoint). A checkpoint records the network's architecture
(:attr:`helpers.SNN.config`) and is only loaded into a network with the same one.

Introduced in the README ("Train from the command line"); notebooks do not use it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import brainstate
import braintools
import brainunit as u
import jax.numpy as jnp
import numpy as np

from helpers.arraytypes import Array
from helpers.model import SNN
from helpers.readout import READOUTS
from helpers.validation import check_instance, check_non_negative_int, check_one_of

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "read_checkpoint", "load_network"]

FORMAT = "snn-tutorial-checkpoint"
VERSION = 2  # 2: the optimiser's state dict (with its step count) replaces version 1's bare opt_state

#: the parts of ``braintools.optim.Optimizer.state_dict()`` a checkpoint keeps (its ``param_groups``
#: repeat the weights, which ``params`` holds already)
OPTIMIZER_KEYS = ("step_count", "lr", "base_lr", "opt_state")


class CheckpointError(ValueError):
    """A file is not a checkpoint of ours, or does not match the network it is loaded into."""


def _check_pair(net, optimizer) -> None:
    check_instance("net", net, SNN, "a helpers.SNN")
    check_instance("optimizer", optimizer, braintools.optim.Optimizer, "a braintools.optim optimizer")
    if getattr(optimizer, "opt_state", None) is None:
        raise ValueError("optimizer has no state yet: register the network's weights with it first")


def _payload(net: SNN, optimizer) -> dict:
    """What a checkpoint restores: the parameter states and the optimiser's state dict (``optimizer``
    ``None``: the parameters only)."""
    if optimizer is None:
        return {"params": net.states(brainstate.ParamState)}
    state = {k: optimizer.state_dict()[k] for k in OPTIMIZER_KEYS}
    # a fresh optimiser counts with a Python 0, a trained one with an int32 array: store the array
    state["step_count"] = jnp.asarray(state["step_count"], dtype=jnp.int32)
    return {"params": net.states(brainstate.ParamState), "optimizer": state}


def save_checkpoint(
    path: str | os.PathLike,
    net: SNN,
    optimizer,
    *,
    epoch: int,
    losses: Array | Sequence[float] | None = None,
    readout_method: str = "mean",
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``net``'s parameters, ``optimizer``'s state dict, ``epoch`` and the loss history to ``path``.

    ``readout_method`` is the readout the network was trained with (checked on load). ``extra`` is a
    dict of plain values (numbers, strings) stored alongside, e.g. the data settings. Returns the path.
    """
    _check_pair(net, optimizer)
    check_one_of("readout_method", readout_method, READOUTS)
    epoch = check_non_negative_int("epoch", epoch)
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot save a checkpoint in {path.parent}: no such folder")
    losses = np.asarray([] if losses is None else losses, dtype=np.float64)
    target = {
        "format": FORMAT,
        "version": VERSION,
        "config": dict(net.config),
        "readout_method": readout_method,
        "epoch": epoch,
        "losses": losses,
        "extra": dict(extra or {}),
        **_payload(net, optimizer),
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
        key for key in ("version", "config", "epoch", "losses", "params", "optimizer") if key not in raw
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


def _kind(value) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"


def _field_problem(raw: dict) -> str | None:
    """What is wrong with the fields of a checkpoint that are not the network's arrays, or ``None``."""
    config = raw["config"]
    if not isinstance(config, dict):
        return f"config must be a dict, got {_kind(config)}"
    for key, value in config.items():  # the network's config is checked against it on load
        if not isinstance(key, str) or type(value) not in (str, int, float, bool):
            return f"config[{key!r}] must be a plain value (number, string), got {_kind(value)}"
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
    for key in ("params", "optimizer"):
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


def load_checkpoint(
    path: str | os.PathLike, net: SNN, optimizer, *, readout_method: str = "mean"
) -> dict[str, Any]:
    """Restore ``net``'s parameters and ``optimizer``'s state dict (step count included) from ``path``,
    in place.

    Returns ``{"epoch": int, "losses": ndarray, "config": dict, "extra": dict}``. Raises
    :class:`CheckpointError` when the checkpoint was saved from a network whose
    :attr:`~helpers.SNN.config` differs from ``net``'s (the network's own config is the reference: a
    field it lacks or has of another type counts as a difference), or with another readout.
    """
    _check_pair(net, optimizer)
    check_one_of("readout_method", readout_method, READOUTS)
    return _restore(path, read_checkpoint(path), net, optimizer, readout_method)


def _restore(path, raw: dict, net: SNN, optimizer, readout_method: str) -> dict[str, Any]:
    """:func:`load_checkpoint` once its arguments are checked (``optimizer`` ``None``: the network only)."""
    ours = net.config
    saved = raw["config"]

    def same(key) -> bool:
        a, b = saved.get(key), ours.get(key)
        kinds = {type(a), type(b)}
        return a == b and (len(kinds) == 1 or kinds == {int, float})

    differences = [
        f"{key}: checkpoint {saved.get(key)!r}, network {ours.get(key)!r}"
        for key in [*ours, *(key for key in saved if key not in ours)]
        if key != "surrogate" and not same(key)
    ]
    if differences:
        raise CheckpointError(f"{path} was saved from another network ({'; '.join(differences)})")
    if raw.get("readout_method", readout_method) != readout_method:
        raise CheckpointError(
            f"{path} was trained with the {raw['readout_method']!r} readout, not the {readout_method!r} one"
        )
    payload = _payload(net, optimizer)
    expected = braintools.file.msgpack_to_state_dict(payload)
    for key in expected:
        problem = _mismatch(raw[key], expected[key], key)
        if problem:
            raise CheckpointError(f"{path} does not match the network's parameters: {problem}")
    try:
        restored = braintools.file.msgpack_load(str(path), target={**raw, **payload}, mismatch="error")
    except ValueError as error:
        raise CheckpointError(f"{path} does not match the network's parameters: {error}") from None
    if optimizer is not None:
        optimizer.load_state_dict(restored["optimizer"])
    return {
        "epoch": raw["epoch"],
        "losses": np.asarray(raw["losses"], dtype=np.float64),
        "config": saved,
        "extra": raw.get("extra", {}),
    }


#: how :func:`load_network` turns a checkpoint's config (plain numbers) back into ``SNN`` arguments
_UNITS = {"tau_syn_ms": ("tau_syn", u.ms), "tau_mem_ms": ("tau_mem", u.ms), "tau_out_ms": ("tau_out", u.ms),
          "v_threshold_mV": ("v_threshold", u.mV)}  # fmt: skip


def load_network(path: str | os.PathLike) -> tuple[SNN, dict[str, Any]]:
    """The trained network a checkpoint holds, built from its config alone (no optimiser needed).

    ``path`` is a checkpoint, or a run folder holding ``checkpoint.msgpack``. The network is
    ``SNN(...)`` (or a :class:`helpers.deep.DeepSNN` for a config whose ``architecture`` is ``deep``)
    with the checkpoint's architecture (the time step must be set in
    ``brainstate.environ``) and its parameters; every check of :func:`load_checkpoint` on them applies.
    Returns ``(network, info)`` with ``info`` as :func:`load_checkpoint` returns it plus
    ``readout_method``. The surrogate is stored by name only and not rebuilt (it matters only for
    training): the network gets the default one. Used by ``python -m helpers export`` (notebook 12).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.msgpack"
    raw = read_checkpoint(path)
    config = dict(raw["config"])
    if config.get("architecture") == "deep":
        net = _deep_network(path, config)
        readout_method = raw.get("readout_method", "mean")
        return net, _restore(path, raw, net, None, readout_method) | {"readout_method": readout_method}
    known = {"n_inputs", "n_hidden", "n_outputs", "input_scale", "surrogate", "recurrent", "train_tau_mem"}
    unknown = sorted(set(config) - known - set(_UNITS))
    missing = sorted({"n_inputs", "n_hidden", "n_outputs", *_UNITS} - set(config))
    if unknown or missing:
        raise CheckpointError(
            f"{path} holds a network this code cannot build (config: unknown {unknown}, missing {missing})"
        )
    kwargs: dict[str, Any] = {key: config[key] for key in known - {"surrogate"} if key in config}
    kwargs |= {name: config[key] * unit for key, (name, unit) in _UNITS.items()}
    try:
        net = SNN(**kwargs)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path} holds a network this code cannot build: {error}") from None
    readout_method = raw.get("readout_method", "mean")
    info = _restore(path, raw, net, None, readout_method)
    return net, info | {"readout_method": readout_method}


def _deep_network(path, config: dict) -> SNN:
    """The :class:`helpers.deep.DeepSNN` a checkpoint's config (:attr:`helpers.deep.DeepSNN.config`)
    describes; :class:`CheckpointError` when it cannot be built from it."""
    from helpers.deep import DeepSNN, parse_conv, parse_layers

    try:
        kwargs: dict[str, Any] = {key: config[key] for key in ("n_inputs", "n_outputs", "neuron", "output")}
        kwargs |= {name: config[key] * unit for key, (name, unit) in _UNITS.items()}
        kwargs["hidden"] = parse_layers(config["hidden"])
        kwargs["recurrent"] = tuple(flag == "1" for flag in str(config["recurrent"]).split(","))
        kwargs["input_scale"], kwargs["hidden_scale"] = config["input_scale"], config["hidden_scale"]
        if "conv" in config:  # a convolutional front end: over an image of image_shape, or over time
            kwargs["conv"] = parse_conv(config["conv"])
            shape = str(config["image_shape"])
            kwargs["image_shape"] = tuple(int(n) for n in shape.split(",")) if shape else None
        if config["neuron"] == "alif":
            kwargs["tau_adapt"] = config["tau_adapt_ms"] * u.ms
            kwargs["adaptation"] = config["adaptation_mV"] * u.mV
        return DeepSNN(**kwargs)
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path} holds a deep network this code cannot build: {error!r}") from None
