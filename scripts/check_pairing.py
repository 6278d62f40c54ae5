#!/usr/bin/env python3
"""Check that every notebook's MyST twin is exactly what jupytext writes from its ``.ipynb``.

    .venv/bin/python scripts/check_pairing.py                       # every notebook in notebooks/
    .venv/bin/python scripts/check_pairing.py notebooks/03_loss.md  # the pairs of the given files

Exits 1 and names each pair that is out of sync (an edited twin that was not re-executed, or an
``.ipynb`` without its twin). The test suite and the pre-commit hook call :func:`pairing_problem`.
It never writes: ``jupytext --sync`` lets the newer file win and can silently overwrite an edit.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jupytext
from jupytext.config import load_jupytext_configuration_file

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
CONFIG = load_jupytext_configuration_file(str(ROOT / "pyproject.toml"))


def paired_text(ipynb: Path) -> str:
    """The MyST twin that jupytext writes from the ``.ipynb``, with the repository's configuration."""
    return jupytext.writes(jupytext.read(ipynb), fmt="md:myst", config=CONFIG)


def pairing_problem(ipynb: Path) -> str | None:
    """``None`` if ``ipynb``'s twin (the ``.md`` beside it) is in sync with it, else what is wrong."""
    twin = ipynb.with_suffix(".md")
    if not ipynb.exists():
        return f"{twin.name} has no {ipynb.name}: run scripts/execute_notebooks.py notebooks/{twin.name}"
    if not twin.exists():
        return f"{twin.name} is missing: every notebook has a MyST twin"
    if twin.read_text() != paired_text(ipynb):
        return (
            f"{twin.name} and {ipynb.name} differ: edit the .md, then run "
            f"scripts/execute_notebooks.py notebooks/{twin.name}"
        )
    return None


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    notebooks = sorted({p.with_suffix(".ipynb") for p in paths if p.suffix in (".ipynb", ".md")})
    problems = [problem for ipynb in notebooks if (problem := pairing_problem(ipynb))]
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
