"""Notebook hygiene and pairing. (nbval re-executes the notebooks themselves; see README.)"""

import json
import re
from pathlib import Path

import pytest

from scripts.check_pairing import main as check_pairing_main
from scripts.check_pairing import pairing_problem

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MAX_BYTES = 500_000
# absolute local paths that would leak from the author's machine into stored outputs
LOCAL_PATH = re.compile(r"(/home/|/root/|/Users/|/tmp/|/work/|[A-Z]:\\\\Users)")


def ids(paths):
    return [p.name for p in paths]


def test_the_tutorial_has_its_numbered_notebooks():
    names = [p.stem for p in NOTEBOOKS]
    assert names == [
        "01_network", "02_dataset", "03_loss", "04_training",
        "05_surrogates", "06_generalisation", "07_seeds", "08_performance",
        "09_digits", "10_mnist1d", "11_activity", "12_export", "13_scaling", "14_online",
        "15_deeper", "16_online_training",
    ]  # fmt: skip
    assert sorted((ROOT / "notebooks").glob("*.ipynb")) == NOTEBOOKS, "unnumbered notebook in notebooks/"


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_twin_is_in_sync(ipynb):
    problem = pairing_problem(ipynb)
    assert problem is None, problem


def test_an_edited_or_missing_twin_is_detected(tmp_path, capsys):
    """The check the pairing test runs tells a faithful copy of a pair from an edited one."""
    ipynb = tmp_path / NOTEBOOKS[0].name
    twin = ipynb.with_suffix(".md")
    ipynb.write_bytes(NOTEBOOKS[0].read_bytes())
    twin.write_text(NOTEBOOKS[0].with_suffix(".md").read_text())
    assert pairing_problem(ipynb) is None  # the control: an unedited copy is in sync
    assert check_pairing_main([str(twin)]) == 0

    twin.write_text(twin.read_text().replace("# 1. The network", "# 1. A network", 1))
    assert "differ: edit the .md" in pairing_problem(ipynb)
    assert check_pairing_main([str(twin)]) == 1  # the pre-commit hook's exit status
    assert "differ" in capsys.readouterr().err

    twin.unlink()
    assert "is missing" in pairing_problem(ipynb)


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_hygiene(ipynb):
    raw = ipynb.read_text()
    assert len(raw.encode()) < MAX_BYTES, f"{ipynb.name} is {len(raw) / 1e3:.0f} kB (limit 500 kB)"
    nb = json.loads(raw)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert "widgets" not in nb["metadata"]
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1)), "run top to bottom once"
    for index, cell in enumerate(code, start=1):
        assert cell["source"], f"cell {index} is empty"
        assert set(cell["metadata"]) <= {"tags", "jupyter", "mystnb"}, f"cell {index} carries editor metadata"
        for output in cell["outputs"]:
            assert output["output_type"] != "error", f"cell {index} stored an error"
            text = json.dumps(output.get("text", "")) + json.dumps(
                output.get("data", {}).get("text/plain", "")
            )
            assert not LOCAL_PATH.search(text), f"cell {index} shows a local path"
            assert output.get("name") != "stderr", f"cell {index} wrote to stderr: {output.get('text')}"
            assert "Warning" not in text, f"cell {index} shows a warning"
    assert "sys.path" not in raw, "import helpers as an installed package"
    assert "JAX_PLATFORMS" not in "".join("".join(c["source"]) for c in code), "set the platform in config"


EXERCISE_NOTEBOOKS = [p for p in NOTEBOOKS if p.stem[:2] in {"01", "02", "03", "04", "05", "06", "07", "15"}]


@pytest.mark.parametrize("ipynb", EXERCISE_NOTEBOOKS, ids=ids(EXERCISE_NOTEBOOKS))
def test_exercises_have_self_checks_and_hidden_solutions(ipynb):
    nb = json.loads(ipynb.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    text = "".join("".join(c["source"]) for c in nb["cells"])
    exercises = re.findall(r"\*\*Exercise (\d)\.\*\*", text)
    assert 2 <= len(exercises) <= 3
    solutions = [c for c in code if "".join(c["source"]).startswith("# Solution")]
    assert len(solutions) == len(exercises)
    for cell in solutions:
        tags = cell["metadata"].get("tags", [])
        assert "hide-cell" in tags or "hide-input" in tags, "solutions are collapsed in the docs"
        assert cell["metadata"].get("jupyter", {}).get("source_hidden"), "and in Jupyter"
        assert cell["metadata"]["mystnb"]["code_prompt_show"] == "Show the solution"
        outputs = "".join("".join(o.get("text", [])) for o in cell["outputs"])
        assert outputs.rstrip().endswith("correct") and "not yet" not in outputs
        if "hide-cell" in tags:  # the solution's output is hidden with it, and gives only the verdict
            assert cell["metadata"]["jupyter"].get("outputs_hidden"), "its output is hidden in Jupyter too"
            assert re.fullmatch(r"exercise \d: correct\n", outputs), outputs
    checks = [c for c in code if "helpers.check_answer(" in "".join(c["source"])]
    assert len(checks) >= 2 * len(exercises)  # one after the reader's cell, one in the solution


DATA_NOTEBOOKS = ["02_dataset", "03_loss", "04_training", "05_surrogates", "07_seeds"]


def test_notebook_2_describes_the_data_that_notebooks_3_to_7_train_on():
    """Each prints ``helpers.dataset_fingerprint`` of its data in a cell nbval compares exactly."""
    fingerprints = {}
    for name in DATA_NOTEBOOKS:
        nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
        for cell in nb["cells"]:
            text = "".join("".join(o.get("text", "")) for o in cell.get("outputs", []))
            lines = [line for line in text.splitlines() if line.startswith("dataset: ")]
            if lines:
                assert not any(t.startswith("nbval-") for t in cell["metadata"].get("tags", [])), (
                    f"{name}: the fingerprint must be compared exactly"
                )
                fingerprints[name] = lines[0]
    assert set(fingerprints) == set(DATA_NOTEBOOKS), "a notebook does not print its data's fingerprint"
    assert len(set(fingerprints.values())) == 1, fingerprints
