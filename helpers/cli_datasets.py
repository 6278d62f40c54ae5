"""``python -m helpers train --dataset digits|mnist1d``: minibatch training on real data.

The network, encoding and settings default to those of notebooks 9 (digits: 64 latency-coded pixels
over 20 steps, 256 hidden LIF neurons, 20 epochs of minibatches of 32, ``lr=1e-2``) and 10 (MNIST-1D:
32 level-crossing channels over 40 steps, 64 hidden neurons, 12 epochs of minibatches of 128,
``lr=2e-2``), on the notebooks' fixed split (its seed is 0, whatever ``--seed``; ``--seed`` draws the
weights and the shuffle). The progress bar shows the validation accuracy after every epoch; the
weights of the best epoch on validation are kept, written as the checkpoint, and scored once on the
test split. The baselines of the notebook (scikit-learn, on the identical split) are scored beside it.

Writes to ``--out``: ``checkpoint.msgpack`` (the best-on-validation weights), ``history.csv`` (epoch,
training loss, validation loss and accuracy), ``history.png`` and ``run.json``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import warnings
from pathlib import Path

import numpy as np

import helpers

#: the notebooks' settings for each real dataset; ``None`` marks a random-only option it refuses
DEFAULTS = {
    "digits": {"hidden": 256, "batch": 32, "epochs": 20, "lr": 1e-2, "steps": 20},
    "mnist1d": {"hidden": 64, "batch": 128, "epochs": 12, "lr": 2e-2},
}
#: options of the random dataset that a real dataset fixes: refused when given
FIXED = {
    "digits": ("inputs", "outputs", "rate"),
    "mnist1d": ("inputs", "outputs", "rate", "steps"),
}
#: MNIST-1D's level crossings (notebook 10): 16 levels, two channels each
MNIST1D_LEVELS = np.linspace(-2, 2, 16)
#: scikit-learn's iteration budgets of the baselines (the notebooks'; tests lower them)
MLP_MAX_ITER = {"digits": 1000, "mnist1d": 200}
LOGISTIC_MAX_ITER = 2000
EVAL_BATCH = 256


def dataset_of(args: argparse.Namespace) -> str:
    """The dataset a ``train`` command runs on: ``--dataset``, or that of a real-data checkpoint
    given to ``--resume`` (so that resuming one is refused clearly, not attempted as random data)."""
    if args.dataset == "random" and args.resume is not None:
        try:
            extra = helpers.read_checkpoint(args.resume).get("extra", {})
        except (FileNotFoundError, helpers.CheckpointError):
            return "random"  # the random path reports it
        if extra.get("dataset") in DEFAULTS:
            return extra["dataset"]
    return args.dataset


def _settle_options(args: argparse.Namespace, parser: argparse.ArgumentParser, given: dict) -> None:
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
    args.inputs, args.outputs = (64, 10) if args.dataset == "digits" else (2 * len(MNIST1D_LEVELS), 10)
    if args.dataset == "mnist1d":
        args.steps = 40
    args.rate = None


def load_splits(dataset: str):
    """The notebook's splits of ``dataset`` as values: :class:`helpers.datasets.Splits`."""
    if dataset == "digits":
        return helpers.datasets.load_digits()
    return helpers.datasets.load_mnist1d()


def encode(dataset: str, splits, steps: int):
    """The notebook's spike code of all three parts: :class:`~helpers.datasets.Splits` of spikes."""
    if dataset == "digits":
        return helpers.datasets.encode_splits(splits, lambda x: helpers.datasets.latency_code(x, steps))
    return helpers.datasets.encode_splits(
        splits, lambda x: helpers.datasets.level_crossings(x, MNIST1D_LEVELS)
    )


def baselines(dataset: str, splits, encoded) -> dict[str, float]:
    """The notebook's baselines, fitted on the training part, as test accuracies (deterministic)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    (x_train, y_train), _, (x_test, y_test) = splits
    mlp_iter = MLP_MAX_ITER[dataset]
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if dataset == "digits":
            counts_train, counts_test = (helpers.datasets.spike_counts(encoded[i][0]) for i in (0, 2))
            models = {
                "logistic_regression_pixels": (
                    LogisticRegression(max_iter=LOGISTIC_MAX_ITER),
                    x_train,
                    x_test,
                ),
                "logistic_regression_latency_counts": (
                    LogisticRegression(max_iter=LOGISTIC_MAX_ITER),
                    counts_train,
                    counts_test,
                ),
                "mlp_128_pixels": (
                    MLPClassifier((128,), max_iter=mlp_iter, random_state=0),
                    x_train,
                    x_test,
                ),
            }
        else:
            models = {
                "logistic_regression_sequence": (
                    LogisticRegression(max_iter=LOGISTIC_MAX_ITER),
                    x_train,
                    x_test,
                ),
                "mlp_100_100_sequence": (
                    MLPClassifier((100, 100), max_iter=mlp_iter, random_state=0),
                    x_train,
                    x_test,
                ),
            }
        return {
            name: float(model.fit(xa, y_train).score(xb, y_test)) for name, (model, xa, xb) in models.items()
        }


def _train(trainer, train, val, args) -> tuple[dict, dict, object]:
    """:meth:`helpers.MinibatchTrainer.fit` with a progress bar that shows each epoch's validation
    accuracy, keeping the weights and optimiser state of the best epoch on validation.

    Returns the history (arrays ``[epochs]``), the best epoch's record and its weights and optimiser
    state. Raises :class:`FloatingPointError` if the loss becomes NaN or infinite."""
    from tqdm.auto import tqdm

    best = {"epoch": 0, "val_accuracy": -1.0}
    best_state = None
    with tqdm(
        total=args.epochs, desc="training", unit="epoch", disable=args.no_progress, file=sys.stderr
    ) as progress:

        def on_epoch(row: dict) -> None:
            nonlocal best, best_state
            if row["val_accuracy"] > best["val_accuracy"]:  # the first of equally good epochs
                best = {
                    "epoch": row["epoch"],
                    "val_accuracy": row["val_accuracy"],
                    "val_loss": row["val_loss"],
                }
                best_state = (trainer.weights(), trainer.optimizer.opt_state.value)
            progress.update(1)
            progress.set_postfix(
                {
                    "loss": f"{row['train_loss']:.4f}",
                    "val_acc": f"{row['val_accuracy']:.4f}",
                    "best": f"{best['val_accuracy']:.4f}",
                },
                refresh=False,
            )

        history = trainer.fit(
            train, args.epochs, args.batch, seed=args.seed, validation=val, eval_batch_size=EVAL_BATCH,
            on_epoch=on_epoch,
        )  # fmt: skip
    return history, best, best_state


def _write(args, checkpoint_trainer, history: dict, best: dict, summary: dict) -> None:
    """Write checkpoint.msgpack, history.csv, history.png and run.json to ``args.out`` as a whole
    folder, with :func:`helpers.cli.publish` (the old run or the new one, never a mix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from helpers.cli import publish

    extra = {k: summary["settings"][k] for k in ("dataset", "steps", "batch", "seed", "lr", "learning")}
    extra |= {"epochs": args.epochs, "best_epoch": best["epoch"]}

    def checkpoint(path: Path) -> None:
        losses = history["train_loss"][: best["epoch"]]
        helpers.save_checkpoint(path, checkpoint_trainer, epoch=best["epoch"], losses=losses, extra=extra)

    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["epoch", "train_loss", "val_loss", "val_accuracy"])
    for row in zip(*(history[k] for k in ("epoch", "train_loss", "val_loss", "val_accuracy")), strict=True):
        writer.writerow([int(row[0]), *(f"{v:.8g}" for v in row[1:])])

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    hist = dict(history)
    hist["train_accuracy"] = np.full_like(history["val_accuracy"], np.nan)  # not measured per epoch
    helpers.plot_history(hist, axes=axes)
    axes[1].axvline(best["epoch"], color="0.5", ls=":", lw=1)
    fig.suptitle(f"{args.dataset}: {args.hidden} hidden LIF neurons, lr {args.lr:g}, seed {args.seed}")
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, format="png", dpi=100)
    plt.close(fig)

    publish(
        args.out,
        {
            "checkpoint.msgpack": checkpoint,
            "history.csv": table.getvalue().encode(),
            "history.png": image.getvalue(),
            "run.json": (json.dumps(summary, indent=2) + "\n").encode(),
        },
    )


def train(args: argparse.Namespace, parser: argparse.ArgumentParser, given: dict) -> int:
    """``train --dataset digits|mnist1d``; ``given`` holds the options named on the command line (see
    :func:`helpers.cli.main`). Returns 0, or 1 if training diverged (nothing written)."""
    _settle_options(args, parser, given)
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out}: exists and is not a folder")
    import brainstate
    import brainunit as u

    brainstate.environ.set(dt=1.0 * u.ms)
    splits = load_splits(args.dataset)
    encoded = encode(args.dataset, splits, args.steps)
    train_split, val_split, test_split = encoded
    brainstate.random.seed(args.seed)
    online = args.learning != "bptt"  # online learning with eligibility traces (helpers.online)
    net = helpers.SNN(args.inputs, args.hidden, args.outputs, online=online)
    if online:
        trainer = helpers.OnlineMinibatchTrainer(net, args.learning, lr=args.lr, readout_method=args.readout)
    else:
        trainer = helpers.MinibatchTrainer(net, lr=args.lr, readout_method=args.readout)
    try:
        history, best, (weights, opt_state) = _train(trainer, train_split, val_split, args)
    except FloatingPointError as error:
        print(f"error: {error}; nothing was written", file=sys.stderr)
        return 1
    trainer.load_weights(weights)
    test = trainer.evaluate(test_split, EVAL_BATCH)  # once, with the best-on-validation weights
    scores = baselines(args.dataset, splits, encoded)

    settings = {
        k: (str(v) if isinstance(v, Path) else v)
        for k, v in vars(args).items()
        if k not in ("command", "command_parser", "rate", "resume")
    }
    summary = {
        "settings": settings,
        "dataset": args.dataset,
        "split_sizes": splits.sizes(),
        "epochs": args.epochs,
        "best_epoch": best["epoch"],
        "validation_accuracy": best["val_accuracy"],
        "validation_loss": best["val_loss"],
        "final_validation_accuracy": float(history["val_accuracy"][-1]),
        "final_train_loss": float(history["train_loss"][-1]),
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "baselines": scores,
        "readout": args.readout,
        "versions": helpers.stack_versions(),
    }
    # the checkpoint format stores a helpers.Trainer: one around the same network and optimiser
    checkpoint_trainer = helpers.Trainer(net, optimizer=trainer.optimizer, readout_method=args.readout)
    trainer.optimizer.opt_state.value = opt_state  # (registering the weights again may reset it)
    _write(args, checkpoint_trainer, history, best, summary)
    print(
        f"best validation accuracy {best['val_accuracy']:.4f} (epoch {best['epoch']} of {args.epochs}); "
        f"test accuracy {test['accuracy']:.4f} with its weights"
    )
    for name, acc in scores.items():
        print(f"baseline {name}: test accuracy {acc:.4f}")
    print(f"wrote history.csv, history.png, checkpoint.msgpack and run.json to {args.out}")
    return 0
