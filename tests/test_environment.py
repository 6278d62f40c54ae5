"""environment.yml is the single source of the pins; the non-conda set-up installs exactly its list."""

import importlib.metadata as metadata
import re
import runpy
import subprocess
import sys
from pathlib import Path

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


def test_readme_commands_are_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make tutorial" in readme and "make test" in readme
    assert "make test" in ci


def test_setup_script_is_standard_library_only():
    code = (ROOT / "scripts" / "setup_env.py").read_text()
    imports = set(re.findall(r"^(?:from|import) (\w+)", code, re.M))
    assert imports <= set(sys.stdlib_module_names) | {"__future__"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "setup_env.py"), "--help"], capture_output=True
    )
    assert result.returncode == 0
