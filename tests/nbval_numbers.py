"""Numbers in notebooks, checked the way they can be trusted on any machine (a pytest plugin for nbval).

XLA compiles float32 code for the host's vector unit, so sums round differently from one CPU to the
next, and after hundreds of training epochs the difference reaches a fraction (about a quarter) of a
change of seed.
nbval compares every output exactly, which is right for what does not depend on rounding (shapes,
data statistics, compile counts) and wrong for anything printed after training. This plugin adds:

1. **Numbers within a tolerance.** In a cell tagged ``nbval-tolerance`` (or ``nbval-tolerance=T``),
   text outputs are compared with every number taken out: the text around the numbers must be the
   same (runs of spaces count as one, since a wider number shifts its padding), and each number must
   lie within ``T * max(1, |stored|)`` of the stored one: an absolute tolerance for losses and
   accuracies, a relative one for larger values. The default ``T`` is :data:`DEFAULT_TOLERANCE`.
   A stored accuracy that no longer matches what the code computes still fails; so does a changed
   word, a flipped ``True``/``False`` or a missing line.
2. **Prose that its outputs do not contradict.** After the last cell of a notebook, one more test
   item, ``prose numbers``, reads every decimal number in the notebook's markdown (outside math, code
   and link targets) and checks that some number printed by *this run* rounds to it at the precision
   the prose states: "about 0.06" holds for an output of 0.0608 and fails for 0.0655. Parameters
   quoted in prose are written as code or math (`lr=0.01`, $p = 0.005$), so that they are not mistaken
   for results. Cells tagged ``nbval-ignore-output`` (timings) are no source for prose numbers.

Enabled from the root ``conftest.py``; it acts only when nbval runs (``--nbval``).
"""

from __future__ import annotations

import copy
import math
import re

import nbformat
import pytest

#: The default tolerance of a cell tagged ``nbval-tolerance``: 0.05 absolute for numbers up to 1
#: (losses in nats, accuracies), 5 % above. Measured (README, "Portability"): the same notebooks
#: compiled for another CPU target print trained losses and accuracies that differ by up to about
#: 0.03; notebook 7 shows that rounding moves a run less than a change of seed. An edit of 0.1 or
#: more still fails.
DEFAULT_TOLERANCE = 0.05
TAG = "nbval-tolerance"

NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|\bnan\b|\binf\b")
SPACES = re.compile(r"[ \t]+")
# a decimal number in prose: digits, a point, digits; not part of a version (0.10.2) or a word
PROSE_DECIMAL = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.]*\d)")
NOT_PROSE = [
    re.compile(r"^```.*?^```", re.S | re.M),  # fenced blocks: code and directives
    re.compile(r"\$\$.*?\$\$", re.S),  # display math
    re.compile(r"\$[^$\n]+\$"),  # inline math
    re.compile(r"`[^`\n]+`"),  # inline code
    re.compile(r"\]\([^)\s]*\)"),  # link targets
    re.compile(r"<[^>\n]+>"),  # HTML tags and their attributes
]


def cell_tolerance(tags: list[str]) -> float | None:
    """The tolerance a cell's tags ask for: ``None`` (compare exactly) without the tag."""
    for tag in tags:
        if tag == TAG:
            return DEFAULT_TOLERANCE
        if tag.startswith(TAG + "="):
            value = tag.split("=", 1)[1]
            try:
                tolerance = float(value)
            except ValueError:
                tolerance = math.nan
            if not (tolerance > 0 and math.isfinite(tolerance)):
                raise ValueError(f"cell tag {tag!r}: the tolerance must be a positive number, got {value!r}")
            return tolerance
    return None


def compare_within_tolerance(stored: str, fresh: str, tolerance: float) -> str | None:
    """``None`` if ``fresh`` is ``stored`` up to numbers within ``tolerance``, else the first difference."""
    stored_text = [SPACES.sub(" ", part) for part in NUMBER.split(stored)]
    fresh_text = [SPACES.sub(" ", part) for part in NUMBER.split(fresh)]
    if stored_text != fresh_text:
        return "the text around the numbers differs"
    for old, new in zip(NUMBER.findall(stored), NUMBER.findall(fresh), strict=True):
        a, b = float(old), float(new)
        if math.isnan(a) and math.isnan(b):
            continue
        if not abs(b - a) <= tolerance * max(1.0, abs(a)):  # also catches a NaN on one side
            return f"{new} differs from the stored {old} by more than {tolerance} * max(1, |{old}|)"
    return None


def prose(markdown: str) -> str:
    """The running text of a markdown cell: math, code, link targets and HTML removed."""
    for pattern in NOT_PROSE:
        markdown = pattern.sub(" ", markdown)
    return markdown


def unsupported_prose_numbers(markdown: list[str], outputs: list[str]) -> list[str]:
    """The decimal numbers of ``markdown`` that no number in ``outputs`` rounds to, with their context."""
    printed = [float(n) for text in outputs for n in NUMBER.findall(text) if n not in ("nan", "inf")]
    problems = []
    for cell in markdown:
        text = prose(cell)
        for match in PROSE_DECIMAL.finditer(text):
            quoted = match.group()
            decimals = len(quoted.split(".")[1])
            if not any(f"{abs(value):.{decimals}f}" == quoted for value in printed):
                context = " ".join(text[max(0, match.start() - 60) : match.end() + 20].split())
                problems.append(f"{quoted}: ...{context}...")
    return problems


def output_texts(outputs) -> list[str]:
    """The text of a cell's outputs: stream text and ``text/*`` data (not images)."""
    texts = []
    for output in outputs:
        if "text" in output:
            texts.append(output["text"])
        for mime, value in output.get("data", {}).items():
            if mime.startswith("text/") and isinstance(value, str):
                texts.append(value)
    return texts


class ProseNumbers(pytest.Item):
    """Checks a notebook's prose against the outputs that nbval has just computed."""

    def __init__(self, *, notebook, **kwargs):
        super().__init__(**kwargs)
        self.notebook = notebook  # nbval's IPyNbFile

    def runtest(self):
        code_cells = [c for c in self.notebook.nb.cells if c.cell_type == "code"]
        if len(self.notebook.cells_run) < len(code_cells):
            pytest.skip("the prose is checked only when every cell of the notebook has run")
        markdown = [c.source for c in self.notebook.nb.cells if c.cell_type == "markdown"]
        outputs = [text for texts in self.notebook.fresh_outputs.values() for text in texts]
        problems = unsupported_prose_numbers(markdown, outputs)
        if problems:
            raise AssertionError(
                f"{len(problems)} number(s) in the prose match no output of this run at the precision "
                "they are quoted with:\n  " + "\n  ".join(problems)
            )

    def reportinfo(self):
        return self.path, 0, f"{self.name}"


def _checking_compare(cell):
    """nbval's comparison for ``cell``, recording the fresh outputs and honouring the tolerance tag."""
    exact_compare = cell.compare_outputs  # nbval's bound method
    tolerance = cell_tolerance(cell.cell.metadata.get("tags", []))

    def compare(fresh, stored, skip_compare=None):
        cell.parent.fresh_outputs[cell.cell_num] = output_texts(fresh)
        if tolerance is None:
            return exact_compare(fresh, stored, skip_compare)
        fresh_texts, stored_texts = output_texts(fresh), output_texts(stored)
        if len(fresh_texts) == len(stored_texts):
            problems = [
                compare_within_tolerance(cell.sanitize(old), cell.sanitize(new), tolerance)
                for old, new in zip(stored_texts, fresh_texts, strict=True)
            ]
            problem = next((p for p in problems if p), None)
        else:
            problem = f"{len(fresh_texts)} text outputs where {len(stored_texts)} are stored"
        if problem is None:  # texts agree: compare everything else (output kinds, images) exactly
            return exact_compare(_without_text(fresh), _without_text(stored), skip_compare)
        cell.comparison_traceback = [
            f"outputs differ beyond the cell's tolerance ({tolerance}): {problem}",
            "stored:",
            *stored_texts,
            "fresh:",
            *fresh_texts,
        ]
        return False

    return compare


def _recording_run(cell):
    run = cell.runtest

    def runtest():
        cell.parent.cells_run.add(cell.cell_num)
        run()

    return runtest


def _without_text(outputs):
    """Copies of nbval's outputs with their texts blanked, to compare everything else exactly."""
    blanked = []
    for output in outputs:
        output = nbformat.from_dict(copy.deepcopy(dict(output)))
        if "text" in output:
            output.text = ""
        for mime in output.get("data", {}):
            if mime.startswith("text/"):
                output.data[mime] = ""
        blanked.append(output)
    return blanked


def pytest_collection_modifyitems(session, config, items):
    try:
        from nbval.plugin import IPyNbCell
    except ImportError:  # nbval not installed: nothing to extend
        return
    result = []
    for index, item in enumerate(items):
        result.append(item)
        if not isinstance(item, IPyNbCell):
            continue
        notebook = item.parent
        if not hasattr(notebook, "fresh_outputs"):
            notebook.fresh_outputs = {}  # cell number -> texts of this run's outputs (compared cells)
            notebook.cells_run = set()
        item.compare_outputs = _checking_compare(item)
        item.runtest = _recording_run(item)
        is_last = index + 1 == len(items) or getattr(items[index + 1], "parent", None) is not notebook
        if is_last:
            result.append(ProseNumbers.from_parent(notebook, name="prose numbers", notebook=notebook))
    items[:] = result
