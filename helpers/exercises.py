"""Self-checks for the notebooks' exercises: tell the reader whether an answer is right, and if not, what
is wrong with it.

Every call prints exactly one line: ``<name>: not answered yet ...``, ``<name>: correct`` or
``<name>: not yet: <what is wrong>``. A wrong number is called too low or too high (with the exercise's
hint for that direction, if it has one), never compared with the expected value, so that the verdict
does not give the answer away. A wrong array says how many entries differ, where the first one is
and in which direction.
"""

from __future__ import annotations

import numpy as np

from helpers.arraytypes import Array

__all__ = ["check_answer"]


def _verdict(answer, expected, rtol, atol, hint_low, hint_high) -> str | None:
    """``None`` when ``answer`` matches ``expected``, else what is wrong with it."""
    if isinstance(expected, str):
        if not isinstance(answer, str):
            return f"expected a word such as 'mean', got a {type(answer).__name__}"
        return None if answer.strip().lower() == expected.strip().lower() else f"{answer.strip()!r} is not it"
    if isinstance(answer, str):
        return "expected a number or an array, got a string"
    try:
        got = np.asarray(answer, dtype=float)
    except (TypeError, ValueError):
        return f"expected a number or an array of numbers, got a {type(answer).__name__}"
    want = np.asarray(expected, dtype=float)
    if got.shape != want.shape:
        what = "a single number" if want.ndim == 0 else f"an array of shape {want.shape}"
        return f"expected {what}, got shape {got.shape}"
    if not np.all(np.isfinite(got)):
        return "the answer contains NaN or infinite values"
    close = np.isclose(got, want, rtol=rtol, atol=atol)
    if close.all():
        return None
    if want.ndim == 0:
        direction, hint = ("too low", hint_low) if got < want else ("too high", hint_high)
        return direction + (f": {hint}" if hint else "")
    first = tuple(int(i) for i in np.argwhere(~close)[0])
    direction = "too low" if got[first] < want[first] else "too high"
    return f"{int((~close).sum())} of {close.size} entries differ; the first at index {first} is {direction}"


def check_answer(
    answer: float | str | Array | None,
    expected: float | str | Array,
    *,
    rtol: float = 1e-3,
    atol: float = 1e-6,
    name: str = "answer",
    hint_low: str | None = None,
    hint_high: str | None = None,
) -> None:
    """Compare ``answer`` with ``expected`` (a number, an array or a word) and print one verdict line.

    ``None`` means "not answered yet". Numbers and arrays are compared with ``numpy.isclose(answer,
    expected, rtol, atol)``. When a number is wrong, the verdict says whether it is too low or too high
    and adds ``hint_low`` or ``hint_high``; when an array is wrong, it says which entries differ.
    """
    if answer is None:
        print(f"{name}: not answered yet (replace None with your answer)")
        return
    problem = _verdict(answer, expected, rtol, atol, hint_low, hint_high)
    print(f"{name}: correct" if problem is None else f"{name}: not yet: {problem}")
