"""Self-checks for the notebooks' exercises: tell the reader whether an answer is right."""

from __future__ import annotations

import numpy as np

from helpers.arraytypes import Array

__all__ = ["check_answer"]


def check_answer(
    answer: float | str | Array | None,
    expected: float | str | Array,
    *,
    rtol: float = 1e-3,
    atol: float = 1e-6,
    name: str = "answer",
) -> None:
    """Compare ``answer`` with ``expected`` (numbers, arrays or strings) and print the verdict.

    ``None`` means "not answered yet". Numbers and arrays are compared with a tolerance.
    """
    if answer is None:
        print(f"{name}: not answered yet (replace None with your answer)")
        return
    if isinstance(expected, str):
        correct = str(answer).strip().lower() == expected.strip().lower()
    else:
        got, want = np.asarray(answer, dtype=float), np.asarray(expected, dtype=float)
        correct = got.shape == want.shape and bool(np.allclose(got, want, rtol=rtol, atol=atol))
        if got.shape != want.shape:
            print(f"{name}: expected shape {want.shape}, got {got.shape}")
    print(f"{name}: correct" if correct else f"{name}: not yet, try again")
