#!/usr/bin/env python3
"""Execute the tutorial notebooks top to bottom and store their outputs (for authors).

For each notebook, the MyST-markdown twin is the text we edit; this script reads it, runs it in a
fresh ``python3`` kernel from the ``notebooks/`` folder, writes the ``.ipynb`` with its outputs, and
rewrites the twin from the executed notebook so that the pair is in sync.

    JAX_PLATFORMS=cpu .venv/bin/python scripts/execute_notebooks.py [notebooks/03_loss.md ...]

With ``--time-only`` nothing is written: each notebook runs in a fresh kernel and its wall time is
printed (how the README's table of times is measured, on an otherwise idle machine).
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

import jupytext
from jupytext.config import load_jupytext_configuration_file
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
CONFIG = load_jupytext_configuration_file(str(ROOT / "pyproject.toml"))
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def execute(twin: Path, write: bool = True) -> float:
    """Run ``twin`` in a fresh kernel; store its outputs when ``write``. Returns the wall time (s)."""
    notebook = jupytext.read(twin)
    notebook.metadata["kernelspec"] = KERNELSPEC
    for index, cell in enumerate(notebook.cells):
        # stable ids (nbformat requires them): re-running an unchanged notebook changes no line
        cell.id = hashlib.sha1(f"{index}:{cell.source}".encode()).hexdigest()[:8]
    start = time.perf_counter()
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        record_timing=False,  # no timestamps in the stored notebook
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
    seconds = time.perf_counter() - start
    if not write:
        print(f"{twin.name}: {seconds:.1f} s", flush=True)
        return seconds
    notebook.metadata.pop("widgets", None)
    ipynb = twin.with_suffix(".ipynb")
    jupytext.write(notebook, ipynb, fmt="ipynb", config=CONFIG)
    # the twin is written from the stored .ipynb, exactly as the pairing test reads it
    jupytext.write(jupytext.read(ipynb), twin, fmt="md:myst", config=CONFIG)
    print(f"{twin.name}: executed in {seconds:.1f} s")
    return seconds


def main(argv: list[str]) -> int:
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    write = "--time-only" not in argv
    names = [a for a in argv if a != "--time-only"]
    twins = [Path(a).with_suffix(".md") for a in names] or sorted(NOTEBOOKS.glob("[0-9][0-9]_*.md"))
    total = sum(execute(twin.resolve(), write) for twin in twins)
    print(f"all {len(twins)}: {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
