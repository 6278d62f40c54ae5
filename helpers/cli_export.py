"""``python -m helpers export RUN_FOLDER_OR_CHECKPOINT --out model.nir [--bits 8]``: a trained network as NIR.

Reads the checkpoint (a run folder's ``checkpoint.msgpack``, or the file itself), optionally
quantises its weights (:func:`helpers.quantise.quantised`, one scale per layer), and writes the NIR
graph (:func:`helpers.nir_export.to_nir`) to ``--out`` at the time step ``--dt`` (the ``train``
command's, 1 ms, by default). The file is written beside ``--out`` and renamed into place, so
``--out`` is either the old file or the complete new one. As with ``train``, every problem found
(a missing or foreign checkpoint, a network NIR cannot express, an ``--out`` that cannot be written)
ends with one line and exit status 2, without a traceback; Ctrl-C ends with one line and 130.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

EXIT_USAGE, EXIT_INTERRUPTED = 2, 130


def _bits(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer from 2 to 16, got {text!r}") from None
    if not 2 <= value <= 16:
        raise argparse.ArgumentTypeError(f"expected an integer from 2 to 16, got {text!r}")
    return value


def _dt(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number of ms, got {text!r}") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive number of ms, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m helpers export``."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers export",
        description="Export a trained network (a run folder of `python -m helpers train`, or its "
        "checkpoint.msgpack) to a NIR file (HDF5): Input -> Affine -> CubaLIF -> Affine -> LI -> Output, "
        "time constants in ms (notebook 12 derives the mapping).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("source", type=Path, metavar="RUN_FOLDER_OR_CHECKPOINT", help="what to export")
    parser.add_argument("--out", type=Path, required=True, help="the NIR file to write (e.g. model.nir)")
    parser.add_argument(
        "--bits", type=_bits, default=None, help="quantise weights to this many bits (per-layer scale)"
    )
    parser.add_argument("--dt", type=_dt, default=1.0, help="the time step the network ran at (ms)")
    return parser


def _check_out(out: Path, parser: argparse.ArgumentParser) -> None:
    if not out.name.strip() or out.is_dir():
        parser.error(f"--out {out}: expected a file name, got a folder")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        parser.error(f"--out {out}: no folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        parser.error(f"--out {out}: cannot write in {folder}")


def export(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run the command; errors found go through ``parser.error`` (exit status 2)."""
    source = args.source
    if not source.exists():
        parser.error(f"{source}: no such run folder or checkpoint")
    if source.is_dir() and not (source / "checkpoint.msgpack").is_file():
        parser.error(f"{source}: a folder without checkpoint.msgpack (is it a run folder of train?)")
    _check_out(args.out, parser)

    import brainstate
    import brainunit as u

    import helpers
    from helpers.nir_export import NIRError, load_network, to_nir
    from helpers.quantise import quantised

    brainstate.environ.set(dt=args.dt * u.ms)
    try:
        net = load_network(source)
    except (OSError, helpers.CheckpointError) as error:
        parser.error(str(error))
    metadata = {"source": str(source)}
    if args.bits is not None:
        net, scales = quantised(net, args.bits)
        metadata |= {"bits": args.bits} | {f"scale_{name}": scale for name, scale in scales.items()}
    try:
        graph = to_nir(net, metadata=metadata)
    except NIRError as error:
        parser.error(f"{source}: cannot be exported: {error}")
    import nir

    folder = args.out.parent if str(args.out.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{args.out.name}.", suffix=".tmp")
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes the file private; give it a normal file's rights
    try:
        nir.write(temporary, graph)
        os.replace(temporary, args.out)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError):
            parser.error(f"--out {args.out}: could not write it ({error})")
        raise
    quant = f", weights quantised to {args.bits} bits" if args.bits else ""
    print(
        f"wrote {args.out}: {net.n_inputs} inputs -> {net.n_hidden} CubaLIF -> {net.n_outputs} LI "
        f"at dt = {args.dt:g} ms{quant}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (the arguments after ``export``) and run; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return export(args, parser)
    except KeyboardInterrupt:
        print(f"interrupted: {args.out} was left as it was", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
