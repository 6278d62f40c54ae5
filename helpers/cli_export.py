"""``python -m helpers export RUN_FOLDER_OR_CHECKPOINT --out model.nir [--bits 8]``: a trained network as NIR.

Reads the checkpoint (a run folder's ``checkpoint.msgpack``, or the file itself) with
:func:`helpers.load_network`, optionally quantises its weights (:func:`helpers.quantised`, one scale per
layer), and writes the NIR graph (:func:`helpers.to_nir`) to ``--out`` at the time step ``--dt`` (the
``train`` command's, 1 ms, by default). The file is written beside ``--out`` and renamed into place, so
``--out`` is either the old file or the complete new one. The options are parsed by :mod:`helpers.cli`
(one command line); as for ``train``, every problem found (a missing or foreign checkpoint, a network
NIR cannot express, an ``--out`` that cannot be written) ends with one line and exit status 2, without
a traceback, and Ctrl-C with one line and 130.

Introduced in notebook 12 (and the README, "Export to NIR").
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from helpers.checkpoint import CheckpointError, load_network
from helpers.nir_export import NIRError, check_exportable, to_nir
from helpers.quantise import quantised

__all__ = ["export"]


def _check_out(out: Path, parser: argparse.ArgumentParser) -> Path:
    """Refuse an ``--out`` that is not a writable file name; return its folder."""
    if not out.name.strip() or out.is_dir():
        parser.error(f"--out {out}: expected a file name, got a folder")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        parser.error(f"--out {out}: no folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        parser.error(f"--out {out}: cannot write in {folder}")
    return folder


def _write_atomically(graph, out: Path, folder: Path) -> None:
    """Write ``graph`` to a temporary file in ``folder``, then rename it to ``out`` (on an OSError
    nothing is left behind)."""
    import nir

    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{out.name}.", suffix=".tmp")
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes the file private; give it a normal file's rights
    try:
        nir.write(temporary, graph)
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def export(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """The ``export`` command (``args.source``, ``out``, ``bits``, ``dt`` in ms); problems found go
    through ``parser.error`` (one line, exit status 2). Returns 0."""
    source = args.source
    if not source.exists():
        parser.error(f"{source}: no such run folder or checkpoint")
    if source.is_dir() and not (source / "checkpoint.msgpack").is_file():
        parser.error(f"{source}: a folder without checkpoint.msgpack (is it a run folder of train?)")
    folder = _check_out(args.out, parser)

    import brainstate
    import brainunit as u

    brainstate.environ.set(dt=args.dt * u.ms)
    try:
        net, info = load_network(source)
    except (OSError, CheckpointError) as error:
        parser.error(str(error))
    try:
        check_exportable(net)  # before quantising it: a deep network (issue 19) is refused in one line
    except NIRError as error:
        parser.error(f"{source}: cannot be exported: {error}")
    metadata = {"source": str(source), "epoch": info["epoch"], "readout_method": info["readout_method"]}
    if args.bits is not None:
        net, scales = quantised(net, args.bits)
        metadata |= {"bits": args.bits} | {f"scale_{name}": scale for name, scale in scales.items()}
    try:
        graph = to_nir(net, metadata=metadata)
    except NIRError as error:
        parser.error(f"{source}: cannot be exported: {error}")
    except ImportError as error:  # nir is an optional dependency (pyproject's export extra)
        parser.error(str(error))
    try:
        _write_atomically(graph, args.out, folder)
    except OSError as error:
        parser.error(f"--out {args.out}: could not write it ({error})")
    quant = f", weights quantised to {args.bits} bits" if args.bits else ""
    print(
        f"wrote {args.out}: {net.n_inputs} inputs -> {net.n_hidden} CubaLIF -> {net.n_outputs} LI "
        f"at dt = {args.dt:g} ms{quant}"
    )
    return 0
