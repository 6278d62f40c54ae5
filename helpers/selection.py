"""Choices made on the validation set: the best epoch of a training run, the best setting of a baseline.

Notebooks 9-11 train on one split, choose on a second (validation) and score the chosen model once on
a third (test). This module holds the two choices they share:

- :func:`fit_best_epoch` trains a :class:`~helpers.MinibatchTrainer` and keeps the weights of the epoch
  with the highest validation accuracy (early stopping by selection, as ``python -m helpers train``).
- :func:`tune_on_validation` fits a scikit-learn classifier for every setting of a small grid, scores
  each on the validation split, picks the best, and fits it from several seeds: the baselines get the
  same care as the spiking networks. :func:`tune_in_background` does the same in worker processes and
  returns at once, so that the caller can train something else meanwhile (notebook 10).

None of these functions looks at a test split; scoring the chosen model on it is left to the caller, once.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Protocol

import numpy as np

from helpers.validation import check_positive_int

__all__ = ["fit_best_epoch", "tune_on_validation", "tune_in_background"]


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
    grid, final_seeds, n_jobs = _check_tuning(grid, final_seeds, n_jobs)
    if n_jobs == 1:
        fit = _fit_here(make_model, train, validation)
    else:
        fit = _fit_with_joblib(make_model, train, validation, n_jobs)
    return _tune(fit, grid, seed, final_seeds)


def tune_in_background(
    make_model: Callable[..., Classifier],
    grid: Sequence,
    train: tuple,
    validation: tuple,
    *,
    seed: int = 0,
    final_seeds: Sequence[int] = (0,),
    n_jobs: int = 1,
) -> Future:
    """Start :func:`tune_on_validation` (the same arguments, the same fits and choice) and return at
    once: a ``concurrent.futures.Future`` whose ``result()`` is its dict, when the fits are done.

    The fits (and their validation scores) run ``n_jobs`` at a time in worker processes of their own,
    each with one BLAS thread, under the warning filters in force at this call; a thread of this
    process waits for them and makes the choice. So the caller is free for other work while they run:
    notebook 10 trains its spiking networks while its MLP's chosen setting fits from three seeds. The
    results are those of :func:`tune_on_validation` with one BLAS thread
    (``threadpoolctl.threadpool_limits(1)``); ``make_model`` must be picklable (a lambda is, by value).
    An error in a fit is raised by ``result()``, and the fits not yet done are dropped; the worker
    processes end with the tuning. ``cancel()`` stops it only in the moment before it starts; after
    that it returns ``False`` and the fits go on: running the caller's cell again starts a second tuning
    beside the first.
    """
    grid, final_seeds, n_jobs = _check_tuning(grid, final_seeds, n_jobs)
    future: Future = Future()
    executor = _worker_processes(n_jobs)
    fit = _fit_in(executor, make_model, train, validation, list(warnings.filters))

    def run() -> None:
        if not future.set_running_or_notify_cancel():  # cancelled before it started
            executor.shutdown(wait=False, kill_workers=True)
            return
        try:
            future.set_result(_tune(fit, grid, seed, final_seeds))
            executor.shutdown(wait=False)
        except BaseException as error:  # handed to the caller by result(), the workers stopped
            executor.shutdown(wait=False, kill_workers=True)
            future.set_exception(error)

    threading.Thread(target=run, name="tune_in_background", daemon=True).start()
    return future


def _check_tuning(grid, final_seeds, n_jobs) -> tuple[list, list[int], int]:
    grid = list(grid)
    final_seeds = [int(s) for s in final_seeds]
    if not grid or not final_seeds:
        raise ValueError(f"grid and final_seeds must not be empty, got {grid!r} and {final_seeds!r}")
    return grid, final_seeds, check_positive_int("n_jobs", n_jobs)


def _tune(fit: Callable[[list], list], grid: list, seed: int, final_seeds: list[int]) -> dict:
    """The search of :func:`tune_on_validation`, given ``fit``: a function from ``[(setting, seed),
    ...]`` to ``[(fitted model, validation accuracy), ...]``."""
    fitted = dict(zip(grid, fit([(setting, seed) for setting in grid]), strict=True))
    val = {setting: score for setting, (model, score) in fitted.items()}
    chosen = max(grid, key=lambda setting: val[setting])
    refits = iter(fit([(chosen, s) for s in final_seeds if s != seed]))
    final = [fitted[chosen] if s == seed else next(refits) for s in final_seeds]
    return {
        "val": val,
        "chosen": chosen,
        "models": [model for model, score in final],
        "final_val": np.array([score for model, score in final]),
    }


def _fit_here(make_model, train, validation) -> Callable[[list], list]:
    """A function from ``[(setting, seed), ...]`` to ``[(fitted model, validation accuracy), ...]``, one
    after the other in this process."""
    (x, y), (x_val, y_val) = train, validation

    def fit_one(setting, seed):
        model = make_model(setting, seed).fit(x, y)
        return model, float(model.score(x_val, y_val))

    return lambda jobs: [fit_one(setting, seed) for setting, seed in jobs]


def _fit_in_worker(make_model, train, validation, filters) -> Callable:
    """``fit_one(setting, seed) -> (fitted model, validation accuracy)`` for a worker process, under
    the warning filters ``filters`` (a copy of ``warnings.filters``). Defined here, so that it travels
    by value: a worker imports what the model needs, not helpers."""
    (x, y), (x_val, y_val) = train, validation

    def fit_one(setting, seed):
        with warnings.catch_warnings():
            warnings.resetwarnings()
            for action, message, category, module, line in reversed(filters):  # the first one wins
                message, module = (getattr(p, "pattern", p) or "" for p in (message, module))
                warnings.filterwarnings(action, message, category, module, line)
            model = make_model(setting, seed).fit(x, y)
            return model, float(model.score(x_val, y_val))

    return fit_one


def _fit_with_joblib(make_model, train, validation, n_jobs: int) -> Callable[[list], list]:
    """As :func:`_fit_here`, ``n_jobs`` at a time in joblib's ``loky`` worker processes (reused
    between calls), each with one BLAS thread and the caller's warning filters at the time of the fits."""
    import joblib

    def fit(jobs: list) -> list:
        if not jobs:
            return []
        fit_one = _fit_in_worker(make_model, train, validation, list(warnings.filters))
        with joblib.parallel_config(backend="loky", n_jobs=n_jobs, inner_max_num_threads=1):
            return joblib.Parallel()(joblib.delayed(fit_one)(setting, seed) for setting, seed in jobs)

    return fit


def _worker_processes(n_jobs: int):
    """``n_jobs`` worker processes of their own (a loky executor, which sends functions by value), each
    with one thread in every BLAS and OpenMP library, as joblib's ``inner_max_num_threads=1``."""
    from joblib._parallel_backends import LokyBackend
    from joblib.externals.loky.process_executor import ProcessPoolExecutor

    env = dict.fromkeys(LokyBackend.MAX_NUM_THREADS_VARS, "1")
    return ProcessPoolExecutor(max_workers=n_jobs, env=env)


def _fit_in(executor, make_model, train, validation, filters) -> Callable[[list], list]:
    """As :func:`_fit_here`, in ``executor``'s worker processes (see :func:`tune_in_background`)."""
    fit_one = _fit_in_worker(make_model, train, validation, filters)

    def fit(jobs: list) -> list:
        futures = [executor.submit(fit_one, setting, seed) for setting, seed in jobs]
        try:
            return [f.result() for f in futures]
        except BaseException:  # the first error ends the tuning: the fits still queued are not run
            for f in futures:
                f.cancel()
            raise

    return fit
