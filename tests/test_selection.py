"""helpers.selection: the best epoch and the best baseline setting are chosen on validation only."""

import warnings

import numpy as np
import pytest

from helpers.selection import fit_best_epoch, tune_on_validation


class FakeTrainer:
    """Calls ``on_epoch`` with given validation accuracies; its weights are the epoch number."""

    def __init__(self, accuracies):
        self.accuracies = accuracies
        self.epoch = 0

    def fit(self, train, epochs, batch_size, *, seed, validation, on_epoch):
        for epoch, acc in enumerate(self.accuracies[:epochs], start=1):
            self.epoch = epoch
            on_epoch({"epoch": epoch, "train_loss": 1.0, "val_loss": 1.0, "val_accuracy": acc})
        return {"epoch": np.arange(1, epochs + 1), "val_accuracy": np.asarray(self.accuracies[:epochs])}

    def weights(self):
        return {"w": self.epoch}

    def load_weights(self, weights):
        self.epoch = weights["w"]


def test_fit_best_epoch_keeps_the_first_best_epoch_and_loads_it():
    trainer = FakeTrainer([0.5, 0.8, 0.7, 0.8, 0.6])
    result = fit_best_epoch(trainer, None, 5, 32, seed=0, validation=("x", "y"))
    assert result["best_epoch"] == 2 and result["val_accuracy"] == 0.8
    assert result["weights"] == {"w": 2} and trainer.epoch == 2  # the best weights are back in
    assert len(result["history"]["epoch"]) == 5


def test_fit_best_epoch_needs_a_validation_split():
    with pytest.raises(ValueError, match="validation"):
        fit_best_epoch(FakeTrainer([0.5]), None, 1, 32, seed=0, validation=None)


class Threshold:
    """A one-feature classifier: predicts x > setting; its seed shifts the threshold a little."""

    def __init__(self, setting, seed):
        self.setting, self.seed, self.fits = setting, seed, 0

    def fit(self, x, y):
        self.fits += 1
        return self

    def score(self, x, y):
        return float(np.mean((x > self.setting + 0.01 * self.seed) == y))


def test_tune_on_validation_chooses_on_validation_and_refits_the_chosen_setting_per_seed():
    x_train, y_train = np.zeros(4), np.zeros(4, bool)  # the training data do not favour any setting
    x_val = np.array([0.1, 0.4, 0.6, 0.9])
    y_val = x_val > 0.5
    result = tune_on_validation(
        Threshold, [0.0, 0.5, 0.95], (x_train, y_train), (x_val, y_val), final_seeds=[0, 1, 2]
    )
    assert result["chosen"] == 0.5
    assert result["val"] == {0.0: 0.5, 0.5: 1.0, 0.95: 0.5}
    assert [m.seed for m in result["models"]] == [0, 1, 2] and all(m.setting == 0.5 for m in result["models"])
    assert result["final_val"].shape == (3,)


def test_tune_on_validation_refuses_an_empty_grid():
    with pytest.raises(ValueError, match="grid"):
        tune_on_validation(Threshold, [], (np.zeros(1), np.zeros(1)), (np.zeros(1), np.zeros(1)))


@pytest.mark.slow  # starts two worker processes
def test_tune_on_validation_in_worker_processes_fits_the_same_models():
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 5))
    y = (x @ rng.normal(size=5) + 0.5 * rng.normal(size=120) > 0).astype(int)
    make = lambda C, seed: LogisticRegression(C=C, random_state=seed)  # noqa: E731
    splits = (x[:80], y[:80]), (x[80:], y[80:])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # the workers obey the caller's filters
        with pytest.raises(ConvergenceWarning):
            tune_on_validation(lambda C, seed: LogisticRegression(max_iter=1), [1.0], *splits, n_jobs=2)
    here, workers = (
        tune_on_validation(make, [0.01, 0.1, 1.0], *splits, final_seeds=[0, 1, 2], n_jobs=n) for n in (1, 2)
    )
    assert here["val"] == workers["val"] and here["chosen"] == workers["chosen"]
    np.testing.assert_array_equal(here["final_val"], workers["final_val"])
    for a, b in zip(here["models"], workers["models"], strict=True):
        np.testing.assert_array_equal(a.coef_, b.coef_)
    with pytest.raises(ValueError, match="n_jobs"):
        tune_on_validation(make, [1.0], *splits, n_jobs=0)


@pytest.mark.slow  # starts a worker process
def test_tune_in_background_returns_at_once_and_fits_the_same_models():
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    from helpers.selection import tune_in_background

    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 5))
    y = (x @ rng.normal(size=5) + 0.5 * rng.normal(size=120) > 0).astype(int)
    make = lambda C, seed: LogisticRegression(C=C, random_state=seed)  # noqa: E731
    splits = (x[:80], y[:80]), (x[80:], y[80:])
    with threadpool_limits(1):
        here = tune_on_validation(make, [0.01, 0.1, 1.0], *splits, final_seeds=[0, 1])
    pending = tune_in_background(make, [0.01, 0.1, 1.0], *splits, final_seeds=[0, 1])
    assert not pending.done()  # back before its worker process has even started
    background = pending.result(timeout=120)
    assert here["val"] == background["val"] and here["chosen"] == background["chosen"]
    np.testing.assert_array_equal(here["final_val"], background["final_val"])
    for a, b in zip(here["models"], background["models"], strict=True):
        np.testing.assert_array_equal(a.coef_, b.coef_)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # the filters in force at the call travel
        failing = tune_in_background(lambda C, seed: LogisticRegression(max_iter=1), [1.0], *splits)
    with pytest.raises(ConvergenceWarning):
        failing.result(timeout=120)
    with pytest.raises(ValueError, match="grid"):  # bad arguments are refused at the call
        tune_in_background(make, [], *splits)
