"""helpers.versions: a clear error when the stack lacks a feature, one line when versions differ."""

import os
import subprocess
import sys
import warnings

import pytest

import helpers


@pytest.mark.slow
def test_import_fails_clearly_without_brainpy_state(tmp_path):
    fake = tmp_path / "brainpy"
    fake.mkdir()
    (fake / "__init__.py").write_text("__version__ = '2.6.0'  # an old brainpy without brainpy.state\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", "import helpers"], capture_output=True, text=True, env=env)
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("ImportError: helpers needs brainpy.state.LIF")
    assert "tested with brainstate 0.5.4, brainpy 2.8.2" in last_line
    assert "AttributeError" not in result.stderr


def test_other_versions_give_a_one_line_warning():
    faked = dict(helpers.TESTED_VERSIONS, brainstate="0.6.0", jax="0.11.0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        helpers.check_stack(faked)
    assert len(caught) == 1 and caught[0].category is helpers.StackWarning
    message = str(caught[0].message)
    assert "\n" not in message and "found brainstate 0.6.0, jax 0.11.0" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        helpers.check_stack(dict(helpers.TESTED_VERSIONS))  # the pinned versions: silent
