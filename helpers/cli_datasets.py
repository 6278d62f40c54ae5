"""What ``python -m helpers train --dataset digits|mnist1d|shd|ssc`` needs of each real dataset: its defaults,
the options it fixes, its splits, its spike code and the notebook's baselines. The command line itself
(checks, training, Ctrl-C, the run folder) is :mod:`helpers.cli`, the same for every dataset.

The network, encoding and settings default to those of notebooks 9 (digits: 64 latency-coded pixels
over 20 steps, 128 hidden LIF neurons, 12 epochs of minibatches of 32, ``lr=1e-2``) and 10 (MNIST-1D:
32 level-crossing channels over 40 steps, 64 hidden neurons, 12 epochs of minibatches of 128,
``lr=2e-2``), on the notebooks' fixed split (its seed is 0, whatever ``--seed``; ``--seed`` draws the
weights and the shuffle). The progress bar shows the validation accuracy after every epoch; the
weights of the best epoch on validation are kept, written as the checkpoint, and scored once on the
test split. The baselines of the notebook (scikit-learn, on the identical split, their penalty chosen on
validation as the notebook chooses it) are scored beside it.

``shd`` and ``ssc`` (notebook 13) read the Spiking Heidelberg Digits or Spiking Speech Commands from
the reader's own files in ``--data-dir`` (:mod:`helpers.shd`; never downloaded): 700 channels binned
to ``--steps`` steps of 10 ms (default 100, the first second), SHD's validation part a fixed tenth of
each class of its training file; the baseline is logistic regression on spike counts.

The run folder (:mod:`helpers.runfolder`) holds ``checkpoint.msgpack`` (the best-on-validation
weights), ``history.csv`` (epoch, training loss, validation loss and accuracy), ``history.png`` and
``run.json``.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

from helpers import realdata, selection, shd
from helpers.checkpoint import CheckpointError, read_checkpoint

#: the notebooks' settings for each real dataset; ``None`` marks a random-only option it refuses
DEFAULTS = {
    "digits": {"hidden": 128, "batch": 32, "epochs": 12, "lr": 1e-2, "steps": 20},
    "mnist1d": {"hidden": 64, "batch": 128, "epochs": 12, "lr": 2e-2},
    "shd": {"hidden": 128, "batch": 64, "epochs": 20, "lr": 2e-3, "steps": 100},
    "ssc": {"hidden": 128, "batch": 64, "epochs": 20, "lr": 2e-3, "steps": 100},
}
#: options of the random dataset that a real dataset fixes: refused when given
FIXED = {
    "digits": ("inputs", "outputs", "rate"),
    "mnist1d": ("inputs", "outputs", "rate", "steps"),
    "shd": ("inputs", "outputs", "rate"),
    "ssc": ("inputs", "outputs", "rate"),
}
#: the simulation's time step per dataset (ms); SHD and SSC: the width of a time bin
DT_MS = {"digits": 1.0, "mnist1d": 1.0, "shd": 10.0, "ssc": 10.0}
#: MNIST-1D's level crossings (notebook 10): 16 levels, two channels each
MNIST1D_LEVELS = np.linspace(-2, 2, 16)
#: scikit-learn's iteration budgets of the baselines (the notebooks'; tests lower them)
MLP_MAX_ITER = {"digits": 1000, "mnist1d": 200}
LOGISTIC_MAX_ITER = 2000
#: the L2 penalties searched on validation, as in notebooks 9 and 10: logistic regression's C, the MLP's alpha
LOGISTIC_GRID = (0.01, 0.1, 1.0, 10.0)
MLP_GRID = {"digits": (1e-4, 1e-2, 1.0), "mnist1d": (1e-4, 0.1, 1.0)}
EVAL_BATCH = 256
#: examples in each dataset (all three parts), for the memory estimate before anything is loaded
N_EXAMPLES = {"digits": 1797, "mnist1d": 5000}


def n_examples(args: argparse.Namespace) -> int:
    """Examples in all three parts of ``args.dataset``: fixed, or counted in SHD's files (their labels)."""
    if args.dataset in shd.FILES:
        return shd.count(args.data_dir, args.dataset)
    return N_EXAMPLES[args.dataset]


def eval_batch(processes: int) -> int:
    """:data:`EVAL_BATCH` rounded up to a multiple of ``processes`` (every batch is split over them)."""
    return -(-EVAL_BATCH // processes) * processes


def dataset_of(args: argparse.Namespace) -> str:
    """The dataset a ``train`` command runs on: ``--dataset``, or that of a real-data checkpoint
    given to ``--resume`` (so that resuming one is refused clearly, not attempted as random data)."""
    if args.dataset == "random" and args.resume is not None:
        try:
            extra = read_checkpoint(args.resume).get("extra", {})
        except (FileNotFoundError, CheckpointError):
            return "random"  # the random path reports it
        if extra.get("dataset") in DEFAULTS:
            return extra["dataset"]
    return args.dataset


def settle_options(args: argparse.Namespace, parser: argparse.ArgumentParser, given: dict) -> None:
    """Refuse the options the dataset fixes; fill in the notebook's settings where none was given."""
    if args.resume is not None:
        if args.dataset == "random":  # a real-data checkpoint (see dataset_of)
            parser.error(
                f"--resume: {args.resume} holds a --dataset {dataset_of(args)} run; only --dataset random "
                "runs can be resumed"
            )
        parser.error(f"--resume: not supported for --dataset {args.dataset} (only for --dataset random)")
    for option in FIXED[args.dataset]:
        if option in given:
            parser.error(f"--{option}: not an option for --dataset {args.dataset} (the dataset fixes it)")
    for option, value in DEFAULTS[args.dataset].items():
        if option not in given:
            setattr(args, option, value)
    if args.batch % args.processes:
        parser.error(f"--batch {args.batch}: must be a multiple of --processes {args.processes}")
    if args.dataset in shd.FILES:
        try:
            shd.check_folder(args.data_dir, args.dataset)
        except shd.SHDFormatError as error:
            parser.error(f"--data-dir: {error}")
        args.inputs, args.outputs = shd.N_CHANNELS, shd.N_CLASSES[args.dataset]
    elif args.dataset == "digits":
        args.inputs, args.outputs = 64, 10
    else:
        args.inputs, args.outputs, args.steps = 2 * len(MNIST1D_LEVELS), 10, 40
    args.rate = None


def refuse_dataset_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """The options that belong to some datasets only, refused (or required) up front on every one:
    ``--data-dir`` is for (and needed by) shd and ssc alone; ``--processes``, ``--no-baselines`` and
    ``--refit`` are for the real datasets (the synthetic task trains full-batch in one process, with no
    baselines and no validation)."""
    if args.dataset in shd.FILES:
        if args.data_dir is None:
            parser.error(f"--dataset {args.dataset} needs --data-dir DIR: {shd.where_from(args.dataset)}")
    elif args.data_dir is not None:
        parser.error(f"--data-dir: only for --dataset shd or ssc, not {args.dataset}")
    if args.processes != 1 and dataset_of(args) == "random":
        parser.error("--processes: only for the real datasets (digits, mnist1d, shd, ssc)")
    if args.no_baselines and dataset_of(args) == "random":
        parser.error("--no-baselines: only for the real datasets (digits, mnist1d, shd, ssc)")
    if args.refit and dataset_of(args) == "random":
        parser.error("--refit: only for the real datasets (digits, mnist1d, shd, ssc: chosen on validation)")
    if args.refit and args.learning != "bptt":
        parser.error(f"--refit: with bptt only, not --learning {args.learning}")
    if args.processes != 1 and args.learning != "bptt":
        parser.error(f"--processes: data parallelism trains with bptt only, not --learning {args.learning}")


def load_splits(dataset: str, data_dir: Path | None = None, steps: int = 100):
    """The splits of ``dataset``: the notebook's as values, or SHD's or SSC's from ``data_dir``
    (spikes already, ``steps`` bins), as :class:`helpers.realdata.Splits`."""
    if dataset in shd.FILES:
        if data_dir is None:
            raise ValueError(f"--dataset {dataset} needs --data-dir: {shd.where_from(dataset)}")
        return shd.load(data_dir, dataset, dt_ms=DT_MS[dataset], steps=steps)
    if dataset == "digits":
        return realdata.load_digits()
    return realdata.load_mnist1d()


def encode(dataset: str, splits, steps: int):
    """The notebook's spike code of all three parts: :class:`~helpers.realdata.Splits` of spikes."""
    if dataset in shd.FILES:  # spikes already
        return splits
    if dataset == "digits":
        return realdata.encode_splits(splits, lambda x: realdata.latency_code(x, steps))
    return realdata.encode_splits(splits, lambda x: realdata.level_crossings(x, MNIST1D_LEVELS))


def baselines(dataset: str, splits, encoded) -> dict[str, dict]:
    """The notebook's baselines, tuned as the notebook tunes them: each one's L2 penalty (``C`` of
    logistic regression, ``alpha`` of the MLP) is chosen on validation from the notebook's grid with one
    seed (:func:`helpers.selection.tune_on_validation`), and the chosen model is scored once on test.

    Returns ``{name: {"setting": chosen, "validation_accuracy": ..., "test_accuracy": ...}}``. The fits
    go through the host's BLAS, so another CPU can round them differently (and swap two settings that
    score within that rounding of each other); the notebooks report the MLP over 3 seeds.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    labels = [part[1] for part in splits]
    mlp_iter = MLP_MAX_ITER.get(dataset)  # (no MLP baseline for shd, ssc)

    def logistic(c, seed):
        return LogisticRegression(C=c, max_iter=LOGISTIC_MAX_ITER)

    def mlp(hidden):
        return lambda alpha, seed: MLPClassifier(hidden, alpha=alpha, max_iter=mlp_iter, random_state=seed)

    pixels = [part[0] for part in splits]
    candidates: dict[str, tuple]  # name -> (model maker, grid of penalties, the three parts' inputs)
    if dataset in shd.FILES:  # spike counts per channel of the binned recordings
        counts = [realdata.spike_counts(part[0]) for part in encoded]
        candidates = {"logistic_regression_counts": (logistic, LOGISTIC_GRID, counts)}
    elif dataset == "digits":
        counts = [realdata.spike_counts(part[0]) for part in encoded]
        candidates = {
            "logistic_regression_pixels": (logistic, LOGISTIC_GRID, pixels),
            "logistic_regression_latency_counts": (logistic, LOGISTIC_GRID, counts),
            "mlp_128_pixels": (mlp((128,)), MLP_GRID["digits"], pixels),
        }
    else:
        candidates = {
            "logistic_regression_sequence": (logistic, LOGISTIC_GRID, pixels),
            "mlp_100_100_sequence": (mlp((100, 100)), MLP_GRID["mnist1d"], pixels),
        }
    results = {}
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, (make_model, grid, (x_train, x_val, x_test)) in candidates.items():
            tuned = selection.tune_on_validation(make_model, grid, (x_train, labels[0]), (x_val, labels[1]))
            results[name] = {
                "setting": tuned["chosen"],
                "validation_accuracy": float(tuned["final_val"][0]),
                "test_accuracy": float(tuned["models"][0].score(x_test, labels[2])),
            }
    return results
