"""The stored grid of notebook 10's MLP (``benchmarks/results/mnist1d_mlp.json``, written by
``python -m benchmarks.mnist1d_mlp``): its choice follows its own rule from its own numbers, it holds
no test score, it describes the script's grid and model, and its data are the notebook's split. Fits
nothing."""

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import mnist1d_mlp

STORED = Path(mnist1d_mlp.__file__).parent / "results" / "mnist1d_mlp.json"


@pytest.fixture(scope="module")
def stored() -> dict:
    return json.loads(STORED.read_text())


def _keys(value, path=()):
    """Every key of a nested JSON value, with the path to it."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*path, key)
            yield from _keys(inner, (*path, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _keys(inner, (*path, index))


def test_the_choice_follows_the_rule(stored):
    settings = [(s["alpha"], s["learning_rate"]) for s in stored["settings"]]
    assert settings == mnist1d_mlp.GRID  # the grid's order, which decides ties
    assert stored["rule"] == mnist1d_mlp.RULE and "first in the grid's order" in stored["rule"]
    accuracy = dict(zip(settings, (s["validation_accuracy"] for s in stored["settings"]), strict=True))
    best = max(accuracy.values())
    first_best = next(setting for setting in settings if accuracy[setting] == best)
    assert tuple(stored["chosen"]) == first_best
    ties = [list(setting) for setting in settings if accuracy[setting] == best and setting != first_best]
    assert stored["tied_with_chosen"] == ties


def test_accuracies_are_counts_of_the_validation_split(stored):
    n_val = stored["split_sizes"]["validation"]
    for s in stored["settings"]:
        assert 0 <= s["validation_correct"] <= n_val
        assert s["validation_accuracy"] == pytest.approx(s["validation_correct"] / n_val, abs=1e-12)
        assert 1 <= s["epochs"] <= stored["max_epochs"]


def test_no_test_score_is_stored(stored):
    assert not [path for path in _keys(stored) if "test" in str(path[-1]).lower()]


def test_the_stored_model_is_the_scripts(stored):
    chosen = tuple(stored["chosen"])
    parameters = json.loads(json.dumps(mnist1d_mlp.make_mlp(chosen, stored["seed"]).get_params()))
    assert stored["model_parameters"] == parameters
    assert stored["seed"] == mnist1d_mlp.SEED
    assert stored["command"].endswith("python -m benchmarks.mnist1d_mlp")


def test_the_stored_run_was_fitted_on_the_notebook_s_split():
    from helpers import realdata

    stored = json.loads((mnist1d_mlp.RESULTS / "mnist1d_mlp.json").read_text())["data"]
    here = mnist1d_mlp.data_summary(realdata.load_mnist1d())
    for part in ("train", "validation"):
        assert here[part]["labels_sha256"] == stored[part]["labels_sha256"]
        assert np.isclose(here[part]["input_sum"], stored[part]["input_sum"], rtol=1e-6)
