"""The grid search of notebook 10's MLP baseline (MNIST-1D), as a stored run (issue 17):
``python -m benchmarks.mnist1d_mlp`` writes ``benchmarks/results/mnist1d_mlp.json``, which notebook
10 reads and labels as a stored result, so that it fits only the chosen setting (with 3 seeds) live.

The split is notebook 10's (``helpers.realdata.load_mnist1d()``: 3200 training and 800 validation
sequences, as values). The model is the notebook's: scikit-learn's ``MLPClassifier`` with two hidden
layers of 100, Adam on minibatches of 100, at most its default 200 epochs (the warnings of settings
that use them all are silenced, as in the notebook), one BLAS thread. Each setting of :data:`GRID`
(the penalty ``alpha`` and Adam's ``learning_rate_init``) is fitted once, with seed 0, on the training
part and scored on the validation part; the setting is chosen by
:func:`helpers.selection.tune_on_validation` itself (:data:`RULE`). The test part is neither scored
nor stored.

Recorded: the command, the machine (CPU, the stack's versions, scikit-learn, NumPy and the BLAS
library with the CPU target it chose), the rule, each setting's validation accuracy (and the number of
validation sequences it got right), its epochs of Adam and its CPU seconds, the chosen setting and the
settings tied with it, the model's parameters (for the notebook to check that it fits the same
model), the whole run's wall and CPU seconds and the load average (1 minute) before and after. About
20 CPU seconds; run it with ``nice -n 10`` on a shared machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks.bench import machine

RESULTS = Path(__file__).parent / "results"
SEED = 0
#: (alpha, learning rate), in the order of notebook 10's ``mlp_grid`` (the order decides ties)
GRID = [(alpha, lr) for lr in (1e-3, 1e-2, 3e-2) for alpha in (1e-4, 0.1, 1.0)]
RULE = (
    "the highest validation accuracy with seed 0 (helpers.selection.tune_on_validation); equal "
    "accuracies: the first in the grid's order (learning rates 1e-3, 1e-2, 3e-2; within each, alpha "
    "1e-4, 0.1, 1); no test score read"
)


def make_mlp(setting: tuple[float, float], seed: int):
    """Notebook 10's MLP: ``setting = (alpha, learning rate)``, ``seed`` its ``random_state``."""
    from sklearn.neural_network import MLPClassifier

    alpha, lr = setting
    return MLPClassifier((100, 100), alpha=alpha, learning_rate_init=lr, batch_size=100, random_state=seed)


class _Recorded:
    """A model of :func:`make_mlp` whose ``fit`` notes its CPU seconds (process time) and its epochs
    in ``log[key]``; ``fit`` and ``score`` as the model's."""

    def __init__(self, model, key, log: dict):
        self.model, self.key, self.log = model, key, log

    def fit(self, x, y):
        start = time.process_time()
        self.model.fit(x, y)
        self.log[self.key] = {"epochs": int(self.model.n_iter_), "cpu_seconds": time.process_time() - start}
        return self

    def score(self, x, y) -> float:
        return self.model.score(x, y)


def blas() -> dict[str, str]:
    """The BLAS libraries in this process, by the package that ships them (``numpy``'s does the MLP's
    products): ``"openblas 0.3.30 (SkylakeX)"``, its version and the CPU target it chose."""
    from threadpoolctl import threadpool_info

    return {
        Path(i["filepath"]).parent.name.removesuffix(".libs"): (
            f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture', 'n/a')})"
        )
        for i in sorted(threadpool_info(), key=lambda i: i["filepath"])
        if i.get("user_api") == "blas"
    }


def _load() -> float | None:
    """The 1-minute load average (``None`` where the system does not report it)."""
    try:
        return float(os.getloadavg()[0])
    except (OSError, AttributeError):
        return None


def label(setting) -> str:
    """``"alpha=0.1 lr=0.03"``, as the notebook prints a setting."""
    return f"alpha={setting[0]:g} lr={setting[1]:g}"


def data_summary(splits) -> dict:
    """What identifies the training and validation parts the grid was fitted on: each part's labels
    (SHA-256 of their int32 bytes, exact) and the sum of its inputs (compared within rounding)."""
    summary = {}
    for name, (x, y) in (("train", splits.train), ("validation", splits.val)):
        labels = np.ascontiguousarray(np.asarray(y, dtype=np.int32)).tobytes()
        summary[name] = {
            "labels_sha256": hashlib.sha256(labels).hexdigest(),
            "input_sum": float(np.asarray(x, dtype=np.float64).sum()),
        }
    return summary


def main() -> None:
    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    import helpers

    RESULTS.mkdir(exist_ok=True)
    started, cpu_started, load_before = time.time(), time.process_time(), _load()
    splits = helpers.realdata.load_mnist1d()  # its test part is not used below
    log: dict = {}

    def recorded(setting, seed):
        return _Recorded(make_mlp(setting, seed), (setting, seed), log)

    with threadpool_limits(1), warnings.catch_warnings():  # one BLAS thread, as in the notebook
        warnings.simplefilter("ignore", ConvergenceWarning)
        tuned = helpers.selection.tune_on_validation(
            recorded, GRID, splits.train, splits.val, seed=SEED, final_seeds=(SEED,)
        )
        libraries = blas()
    n_val = len(splits.val[1])
    chosen = tuned["chosen"]
    report = {
        "command": "nice -n 10 python -m benchmarks.mnist1d_mlp",
        "machine": machine(),
        "blas": libraries,
        "versions": {"scikit-learn": sklearn.__version__, "numpy": np.__version__},
        "split_sizes": {"train": len(splits.train[1]), "validation": n_val},
        "data": data_summary(splits),
        "model_parameters": make_mlp(chosen, SEED).get_params(),
        "seed": SEED,
        "rule": RULE,
        "settings": [
            {
                "alpha": setting[0],
                "learning_rate": setting[1],
                "validation_accuracy": tuned["val"][setting],
                "validation_correct": round(tuned["val"][setting] * n_val),
                **log[setting, SEED],
            }
            for setting in GRID
        ],
        "chosen": list(chosen),
        "tied_with_chosen": [
            list(s) for s in GRID if s != chosen and tuned["val"][s] == tuned["val"][chosen]
        ],
        "max_epochs": make_mlp(chosen, SEED).max_iter,
        "wall_seconds": time.time() - started,
        "cpu_seconds": time.process_time() - cpu_started,
        "load_average_1min": {"before": load_before, "after": _load()},
    }
    (RESULTS / "mnist1d_mlp.json").write_text(json.dumps(report, indent=2) + "\n")
    for row in report["settings"]:
        setting = (row["alpha"], row["learning_rate"])
        print(
            f"{label(setting):22s} validation {row['validation_accuracy']:.3f} "
            f"({row['epochs']} epochs, {row['cpu_seconds']:.1f} CPU s)",
            file=sys.stderr,
        )
    print(f"wrote {RESULTS / 'mnist1d_mlp.json'}: chosen {label(chosen)}")


if __name__ == "__main__":
    main()
