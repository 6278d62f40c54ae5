"""benchmarks.refit: the inner split it decides on never touches the test split, and it runs the
command that benchmarks.deep chose."""

import json

import numpy as np

from benchmarks import refit
from helpers import realdata


def test_inner_split_is_the_training_part_and_outer_validation_only():
    outer, inner = realdata.load_digits(), refit.inner_splits()
    assert inner.sizes() == {"train": 809, "val": 269, "test": 269}
    training = {row.tobytes() for row in outer.train[0]}
    assert all(row.tobytes() in training for part in (inner.train, inner.val) for row in part[0])
    assert len(inner.train[1]) + len(inner.val[1]) == len(outer.train[1])  # a partition of it
    np.testing.assert_array_equal(inner.test[0], outer.val[0])  # the outer validation part plays test
    # every class keeps its share in the inner validation part (a quarter, rounded)
    assert np.all(np.abs(np.bincount(inner.val[1]) - np.bincount(outer.train[1]) / 4) <= 0.5)


def test_the_chosen_command_is_deep_json_s():
    chosen = json.loads((refit.RESULTS / "deep.json").read_text())["chosen_command"]
    assert "python -m helpers train " + " ".join((*refit.chosen_options(), "--seed", "SEED")) == chosen
    assert "--refit" not in refit.chosen_options()


def test_the_stored_run_follows_its_rule():
    """refit.json: the test split read only when the inner check adopted --refit, for deep.json's choice."""
    stored = json.loads((refit.RESULTS / "refit.json").read_text())
    deep = json.loads((refit.RESULTS / "deep.json").read_text())
    assert stored["chosen_command"] == deep["chosen_command"] and stored["rule"] == refit.RULE
    mean = stored["inner_check"]["outer_validation_accuracy_mean"]
    assert stored["refit_adopted"] == (round(mean["--refit"], 9) > round(mean["as chosen"], 9))
    for label, runs in stored["inner_check"]["runs"].items():  # inner runs never hold a test accuracy
        assert [r["seed"] for r in runs] == list(refit.SEEDS) and all("test_accuracy" not in r for r in runs)
        assert mean[label] == np.mean([r["outer_validation_accuracy"] for r in runs])
    assert bool(stored["runs"]) == stored["refit_adopted"]
