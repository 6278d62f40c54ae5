"""Choices made on the validation set: the best epoch of a training run, the best setting of a baseline.

Notebooks 9-11 train on one split, choose on a second (validation) and score the chosen model once on
a third (test). This module holds the two choices they share:

- :func:`fit_best_epoch` trains a :class:`~helpers.MinibatchTrainer` and keeps the weights of the epoch
  with the highest validation accuracy (early stopping by selection, as ``python -m helpers train``).
- :func:`tune_on_validation` fits a scikit-learn classifier for every setting of a small grid, scores
  each on the validation split, picks the best, and fits it from several seeds: the baselines get the
  same care as the spiking networks.

Neither function looks at a test split; scoring the chosen model on it is left to the caller, once.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from helpers.validation import check_positive_int

__all__ = ["fit_best_epoch", "tune_on_validation"]


class Classifier(Protocol):
    """What :func:`tune_on_validation` needs of a model: scikit-learn's ``fit`` and ``score``."""

    def fit(self, x: Any, y: Any) -> Classifier: ...

    def score(self, x: Any, y: Any) -> float: ...


def fit_best_epoch(trainer, train, epochs: int, batch_size: int, *, seed: int, validation) -> dict:
    """Train with ``trainer.fit`` (see :meth:`helpers.MinibatchTrainer.fit`) and load the weights of the
    epoch with the highest validation accuracy (the first of equally good epochs) back into the trainer.

    Returns ``{"history", "best_epoch", "val_accuracy", "weights"}``: the full history (arrays
    ``[epochs]``), the chosen epoch (1..epochs), its validation accuracy and its weights (for
    :meth:`~helpers.MinibatchTrainer.load_weights`).
    """
    if validation is None:
        raise ValueError("fit_best_epoch chooses the epoch on validation: pass validation=(spikes, labels)")
    best = {"best_epoch": 0, "val_accuracy": -1.0, "weights": None}

    def keep_best(row: dict) -> None:
        if row["val_accuracy"] > best["val_accuracy"]:
            best.update(best_epoch=row["epoch"], val_accuracy=row["val_accuracy"], weights=trainer.weights())

    history = trainer.fit(train, epochs, batch_size, seed=seed, validation=validation, on_epoch=keep_best)
    trainer.load_weights(best["weights"])
    return {"history": history, **best}


def tune_on_validation(
    make_model: Callable[..., Classifier],
    grid: Sequence,
    train: tuple,
    validation: tuple,
    *,
    seed: int = 0,
    final_seeds: Sequence[int] = (0,),
    n_jobs: int = 1,
) -> dict:
    """Fit ``make_model(setting, seed)`` (an unfitted scikit-learn classifier) on ``train = (x, y)`` for
    every ``setting`` of ``grid``, choose the setting with the highest accuracy on ``validation = (x,
    y)`` (the first of equal ones), then fit the chosen setting from every seed of ``final_seeds``.

    The grid is searched with one seed to keep the cost at one fit per setting; the chosen setting's
    spread over seeds is then measured with ``final_seeds``. A deterministic model (the same fit
    whatever the seed) needs only ``final_seeds=(seed,)``.

    With ``n_jobs`` above 1, the fits run that many at a time in worker processes (joblib's ``loky``
    backend), each with one BLAS thread and the caller's warning filters: the same fits as one after
    the other with one BLAS thread (``threadpoolctl.threadpool_limits(1)``), in less wall time when
    that many cores are free; ``make_model`` must then be picklable (a lambda is, by value).

    Returns ``{"val": {setting: validation accuracy with seed}, "chosen": setting, "models": [the
    chosen setting fitted from each of final_seeds], "final_val": validation accuracies [n]}``.
    """
    grid = list(grid)
    final_seeds = [int(s) for s in final_seeds]
    if not grid or not final_seeds:
        raise ValueError(f"grid and final_seeds must not be empty, got {grid!r} and {final_seeds!r}")
    n_jobs = check_positive_int("n_jobs", n_jobs)
    x_train, y_train = train
    x_val, y_val = validation
    fit = _fitter(make_model, x_train, y_train, n_jobs)
    fitted = dict(zip(grid, fit([(setting, seed) for setting in grid]), strict=True))
    val = {setting: float(model.score(x_val, y_val)) for setting, model in fitted.items()}
    chosen = max(grid, key=lambda setting: val[setting])
    refits = iter(fit([(chosen, s) for s in final_seeds if s != seed]))
    models = [fitted[chosen] if s == seed else next(refits) for s in final_seeds]
    return {
        "val": val,
        "chosen": chosen,
        "models": models,
        "final_val": np.array([model.score(x_val, y_val) for model in models]),
    }


def _fitter(make_model, x, y, n_jobs: int) -> Callable[[list], list]:
    """A function from ``[(setting, seed), ...]`` to the fitted models, in this process (``n_jobs``
    1) or ``n_jobs`` at a time in worker processes (see :func:`tune_on_validation`)."""
    if n_jobs == 1:
        return lambda jobs: [make_model(setting, seed).fit(x, y) for setting, seed in jobs]
    import joblib

    def fit_one(setting, seed, filters):
        # defined here, so that it travels by value: a worker imports what the model needs, not helpers
        with warnings.catch_warnings():
            warnings.resetwarnings()
            for action, message, category, module, line in reversed(filters):  # the first one wins
                message, module = (getattr(p, "pattern", p) or "" for p in (message, module))
                warnings.filterwarnings(action, message, category, module, line)
            return make_model(setting, seed).fit(x, y)

    def fit(jobs: list) -> list:
        if not jobs:
            return []
        filters = list(warnings.filters)
        with joblib.parallel_config(backend="loky", n_jobs=n_jobs, inner_max_num_threads=1):
            return joblib.Parallel()(
                joblib.delayed(fit_one)(setting, seed, filters) for setting, seed in jobs
            )

    return fit
