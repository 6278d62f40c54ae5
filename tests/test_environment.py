"""environment.yml is the single source of the pins; the non-conda set-up installs exactly its list."""

import importlib.metadata as metadata
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import helpers

ROOT = Path(__file__).resolve().parent.parent
ENV = yaml.safe_load((ROOT / "environment.yml").read_text())
SETUP = runpy.run_path(str(ROOT / "scripts" / "setup_env.py"))
PIP_LIST = next(d["pip"] for d in ENV["dependencies"] if isinstance(d, dict))
PINS = dict(req.split("==") for req in PIP_LIST if "==" in req)
# installed by the environment tool itself, not by the list
TOOLING = {"pip", "setuptools", "wheel"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_pip_entry_is_an_exact_pin_or_the_project():
    assert [r for r in PIP_LIST if "==" not in r] == ["-e ."]
    for requirement in PIP_LIST[:-1]:
        assert re.fullmatch(r"[A-Za-z0-9._-]+==[0-9][A-Za-z0-9.+!-]*", requirement), requirement
    conda = [d for d in ENV["dependencies"] if isinstance(d, str)]
    assert conda == ["python=3.11.7", "pip=24.0"]


def test_setup_script_reads_the_same_list_as_yaml():
    assert SETUP["pip_requirements"](ROOT / "environment.yml") == PIP_LIST


def test_installed_environment_is_exactly_the_pip_list():
    installed = {canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}
    expected = {canonical(k): v for k, v in PINS.items()}
    wrong = {k: (installed.get(k), v) for k, v in expected.items() if installed.get(k) != v}
    assert not wrong, f"installed != pinned (installed, pinned): {wrong}; run `make env`"
    extra = set(installed) - set(expected) - TOOLING - {"snn-tutorial"}
    assert not extra, f"installed but not in environment.yml: {sorted(extra)}"
    assert "snn-tutorial" in installed


def test_helpers_is_installed_not_path_hacked():
    assert Path(helpers.__file__).resolve().parent == ROOT / "helpers"
    # (a build may also leave snn_tutorial.egg-info in the repository root; look at every copy)
    found = [d for d in metadata.distributions() if canonical(d.metadata["Name"]) == "snn-tutorial"]
    urls = [(d.read_text("direct_url.json") or "").replace(" ", "") for d in found]
    assert any('"editable":true' in url for url in urls), "install the package with pip install -e ."


def test_tested_versions_are_the_pins():
    for name, version in helpers.TESTED_VERSIONS.items():
        assert PINS[name] == version


def test_ci_runs_make_targets_that_exist():
    """Every ``make`` line of .ci/run names targets the Makefile defines (checked by a dry run)."""
    targets = [
        line.split()[1:]
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.startswith("make ")
    ]
    assert ["lint"] in targets and ["test"] in targets
    for target in targets:
        dry_run = subprocess.run(["make", "-n", *target], cwd=ROOT, capture_output=True, text=True)
        assert dry_run.returncode == 0, dry_run.stderr


def test_setup_script_runs_on_the_standard_library_alone():
    """setup_env.py runs before any environment exists: without site-packages (-S) it still works."""
    result = subprocess.run(
        [sys.executable, "-S", "-I", str(ROOT / "scripts" / "setup_env.py"), "--help"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "--venv" in result.stdout


@pytest.mark.slow
def test_pre_commit_uses_the_pinned_tools():
    """The pre-commit hooks run the environment's own ruff (the pinned version) and the pairing check."""
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert set(hooks) == {"ruff-check", "ruff-format", "jupytext-pairing"}
    assert hooks["ruff-check"]["entry"].startswith(".venv/bin/ruff check")
    assert hooks["ruff-format"]["entry"].startswith(".venv/bin/ruff format")
    pairing = subprocess.run(
        [sys.executable, *hooks["jupytext-pairing"]["entry"].split()[1:]], cwd=ROOT, capture_output=True
    )
    assert pairing.returncode == 0, pairing.stderr
