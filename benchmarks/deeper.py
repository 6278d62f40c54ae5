"""Deeper networks compared on digits and MNIST-1D (issue 19, notebook 15): ``python -m benchmarks.deeper``
writes ``benchmarks/results/deeper.json``.

For each dataset (notebook 9's digits in latency code, notebook 10's MNIST-1D in level crossings, their
splits, minibatches and learning rates), every variant of :data:`VARIANTS` (one or two hidden layers of
:data:`HIDDEN` neurons, LIF or ALIF, with or without recurrence, a membrane readout or a spiking output
trained with the count cross-entropy or the count squared error) is trained from seeds 0, 1 and 2 for
the dataset's epochs; each run keeps its best epoch on validation (``helpers.selection.fit_best_epoch``)
and those weights are scored on the test split. The test scores are stored for every run because the
weights are not kept, but the comparison is meant to be read on validation: the notebook chooses a
variant by its mean validation accuracy and reads the test scores of that variant only.

The classical baselines of notebooks 9 and 10 are fitted on the same splits and tuned the same way
(``helpers.selection.tune_on_validation``: the notebook's grid searched with seed 0 on validation, the
chosen setting fitted from seeds 0, 1, 2).

``--dataset digits`` or ``--dataset mnist1d`` runs one dataset and merges it into the file; each run's
CPU seconds (process time, all cores), the wall time and the load average at the start are recorded.
Run it with ``nice -n 10`` on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks.bench import machine

RESULTS = Path(__file__).parent / "results"
OUT = RESULTS / "deeper.json"
SEEDS = (0, 1, 2)
HIDDEN = 128
#: per dataset: inputs, minibatch size and learning rate of notebooks 9 and 10, and the weight scales
#: (variance multipliers) of every layer: on digits helpers.cli_deep.DEEP_SCALES (chosen on the digits'
#: validation split); MNIST-1D's level crossings send about twice the digits' input spikes, and at 100
#: the second layer of an untrained network has 18 of 128 neurons saturated, at 30 none
#: (epochs: MNIST-1D's validation accuracy still rises after 30, digits' has long stopped)
DATASETS = {
    "digits": {"n_inputs": 64, "batch_size": 32, "lr": 1e-2, "scale": 100.0, "epochs": 30},
    "mnist1d": {"n_inputs": 32, "batch_size": 128, "lr": 2e-2, "scale": 30.0, "epochs": 60},
}
#: label -> (DeepSNN options, loss)
VARIANTS = {
    "1 layer, LIF": ({"hidden": (HIDDEN,)}, "ce"),
    "2 layers, LIF": ({"hidden": (HIDDEN, HIDDEN)}, "ce"),
    "2 layers, ALIF": ({"hidden": (HIDDEN, HIDDEN), "neuron": "alif"}, "ce"),
    "2 layers, ALIF, recurrent": ({"hidden": (HIDDEN, HIDDEN), "neuron": "alif", "recurrent": True}, "ce"),
    "2 layers, ALIF, spiking output, ce_count": (
        {"hidden": (HIDDEN, HIDDEN), "neuron": "alif", "output": "spikes"},
        "ce_count",
    ),
    "2 layers, ALIF, spiking output, mse_count": (
        {"hidden": (HIDDEN, HIDDEN), "neuron": "alif", "output": "spikes"},
        "mse_count",
    ),
}


def encoded_splits(dataset: str):
    """The dataset's splits as values and as spikes, as notebooks 9 and 10 encode them."""
    from helpers import cli_datasets, realdata

    if dataset == "digits":
        splits = realdata.load_digits()
        return splits, realdata.encode_splits(splits, lambda x: realdata.latency_code(x, 20))
    splits = realdata.load_mnist1d()
    return splits, realdata.encode_splits(
        splits, lambda x: realdata.level_crossings(x, cli_datasets.MNIST1D_LEVELS)
    )


def train_variant(dataset: str, options: dict, loss: str, encoded) -> list[dict]:
    """One variant from every seed: best epoch on validation, then the test split once."""
    import brainstate

    import helpers
    from helpers.deep import DeepSNN

    settings = DATASETS[dataset]
    train, val, test = encoded
    brainstate.random.seed(0)
    net = DeepSNN(
        settings["n_inputs"], n_outputs=10, input_scale=settings["scale"], hidden_scale=settings["scale"],
        **options,
    )  # fmt: skip
    trainer = helpers.MinibatchTrainer(net, lr=settings["lr"], loss=loss)
    runs = []
    for seed in SEEDS:
        start = time.process_time()
        trainer.reinitialize(seed)
        best = helpers.selection.fit_best_epoch(
            trainer, train, settings["epochs"], settings["batch_size"], seed=seed, validation=val
        )
        scores = trainer.evaluate(val)
        never = 10 - len(np.unique(scores["predictions"]))
        silent, saturated = helpers.activity.silent_and_saturated(scores["hidden_counts"], train[0].shape[0])
        runs.append(
            {
                "seed": seed,
                "best_epoch": int(best["best_epoch"]),
                "validation_accuracy": float(best["val_accuracy"]),
                "test_accuracy": float(trainer.evaluate(test)["accuracy"]),
                "hidden_spikes_per_example": float(scores["hidden_counts"].sum(axis=1).mean()),
                "silent": int(silent.sum()),
                "saturated": int(saturated.sum()),
                "classes_never_predicted": int(never),
                "cpu_seconds": time.process_time() - start,
            }
        )
        print(f"  {dataset} seed {seed}: {runs[-1]}", file=sys.stderr, flush=True)
    return runs


def baselines(dataset: str, splits) -> dict:
    """The classical baselines of notebook 9 (digits) or 10 (MNIST-1D), tuned on validation as there."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    from helpers.selection import tune_on_validation

    if dataset == "digits":
        models = {
            "logistic regression": (
                lambda C, seed: LogisticRegression(C=C, max_iter=2000),
                [0.01, 0.1, 1.0, 10.0],
                (0,),
            ),
            "MLP (128 hidden)": (
                lambda alpha, seed: MLPClassifier(
                    (128,), alpha=alpha, tol=1e-3, max_iter=1000, random_state=seed
                ),
                [1e-4, 1e-2, 1.0],
                SEEDS,
            ),
        }
    else:
        models = {
            "logistic regression": (
                lambda C, seed: LogisticRegression(C=C, max_iter=2000, random_state=seed),
                [0.01, 0.1, 1.0, 10.0],
                SEEDS,
            ),
            "MLP (100, 100)": (
                lambda s, seed: MLPClassifier(
                    (100, 100), alpha=s[0], learning_rate_init=s[1], batch_size=100, random_state=seed
                ),
                [(alpha, lr) for lr in (1e-3, 1e-2) for alpha in (1e-4, 0.1, 1.0)],
                SEEDS,
            ),
        }
    x_test, y_test = splits.test
    report = {}
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, (make, grid, seeds) in models.items():
            result = tune_on_validation(make, grid, splits.train, splits.val, final_seeds=seeds)
            report[name] = {
                "validation_accuracy_per_setting": {str(k): float(v) for k, v in result["val"].items()},
                "chosen": str(result["chosen"]),
                "validation_accuracy": [float(v) for v in result["final_val"]],
                "test_accuracy": [float(m.score(x_test, y_test)) for m in result["models"]],
            }
    return report


def run_dataset(dataset: str) -> dict:
    splits, encoded = encoded_splits(dataset)
    started, load = time.time(), os.getloadavg()[0]
    variants = {}
    for label, (options, loss) in VARIANTS.items():
        print(f"{dataset}: {label}", file=sys.stderr, flush=True)
        variants[label] = {
            "options": {k: v for k, v in options.items() if k != "hidden"},
            "loss": loss,
            "hidden": list(options["hidden"]),
            "runs": train_variant(dataset, options, loss, encoded),
        }
    start = time.process_time()
    classical = baselines(dataset, splits)
    return {
        "settings": DATASETS[dataset] | {"seeds": list(SEEDS)},
        "variants": variants,
        "baselines": classical,
        "baselines_cpu_seconds": time.process_time() - start,
        "wall_seconds": time.time() - started,
        "load_average_at_start": load,
    }


def main(argv: list[str] | None = None) -> None:
    import brainstate
    import brainunit as u

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=(*DATASETS, "all"), default="all")
    args = parser.parse_args(argv)
    brainstate.environ.set(dt=1.0 * u.ms)
    report = json.loads(OUT.read_text()) if OUT.exists() else {}
    report |= {
        "command": "nice -n 10 python -m benchmarks.deeper",
        "machine": machine(),
        "selection": "each run keeps its best epoch on validation; variants are compared on validation "
        "(mean of 3 seeds) and only the chosen variant's test accuracies are read",
    }
    for dataset in DATASETS if args.dataset == "all" else (args.dataset,):
        report[dataset] = run_dataset(dataset)
        RESULTS.mkdir(exist_ok=True)
        OUT.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {dataset} to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
