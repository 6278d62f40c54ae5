"""Online learning against BPTT, trained longer than notebook 16's 60 s allow: ``python -m
benchmarks.online`` writes ``benchmarks/results/online.json``, which notebook 16 reads
and labels as a stored result (the pattern of issue 19: the command, the machine and the result).

Two tasks, the rules ``bptt`` (of the per-step loss), ``d_rtrl`` and ``es_d_rtrl``, seeds 0, 1, 2:

- the timing task of notebook 6 (4 classes told apart by *when* 50 inputs fire, 100 steps; 200
  training, 100 validation and 200 test examples; 16 hidden neurons, Adam ``lr=1e-2``, full batch).
  Validation accuracy is read every 20 epochs up to 60; the number of epochs is chosen per rule on the
  mean validation accuracy of the seeds, and only that choice is scored on test;
- digits through the command line (``python -m helpers train --dataset digits --learning RULE``,
  notebook 9's split and latency code, 64 hidden neurons, 10 epochs): each run keeps its best epoch on
  validation and scores it once on test.

Each run's CPU seconds per epoch are recorded too (process time, all cores).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.bench import machine

RESULTS = Path(__file__).parent / "results"
RULES = ("bptt", "d_rtrl", "es_d_rtrl")
SEEDS = (0, 1, 2)
TIMING_BLOCKS = (20, 40, 60)
DIGITS_OPTIONS = ("--hidden", "64", "--epochs", "10")


def timing_task() -> dict:
    import brainstate
    import brainunit as u

    import helpers

    brainstate.environ.set(dt=1.0 * u.ms)
    data = helpers.timing_dataset(500, n_classes=4, n_inputs=50, seed=1)
    train, validation, test = helpers.split_batch(*data, 200, 100, 200)
    out: dict = {}
    for rule in RULES:
        brainstate.random.seed(0)
        trainer = helpers.OnlineTrainer(helpers.SNN(50, 16, 4, online=True), rule, lr=1e-2)
        scores: dict = {}  # epochs -> [(validation, test) per seed]
        seconds = []
        for seed in SEEDS:
            trainer.reinitialize(seed)
            done = 0
            for epochs in TIMING_BLOCKS:
                start = time.process_time()
                trainer.fit(*train, epochs - done)
                seconds.append((time.process_time() - start) / (epochs - done))
                done = epochs
                pair = (trainer.accuracy(*validation), trainer.accuracy(*test))
                scores.setdefault(epochs, []).append(pair)
        mean_val = {e: float(np.mean([v for v, _ in scores[e]])) for e in TIMING_BLOCKS}
        chosen = max(TIMING_BLOCKS, key=lambda e: mean_val[e])  # the first of equals
        out[rule] = {
            "validation_by_epochs": mean_val,
            "chosen_epochs": chosen,
            "test_accuracy": [t for _, t in scores[chosen]],  # read only for the choice
            "cpu_seconds_per_epoch": float(np.median(seconds)),
        }
        print(f"timing {rule}: {out[rule]}", file=sys.stderr)
    return out


def digits() -> dict:
    from helpers import cli_datasets
    from helpers.cli import main

    cli_datasets.baselines = lambda *args: {}  # notebook 9 reports the baselines; they cost minutes here
    out: dict = {}
    with tempfile.TemporaryDirectory() as folder:
        for rule in RULES:
            runs = []
            for seed in SEEDS:
                target = Path(folder) / f"{rule}-{seed}"
                argv = ["train", "--dataset", "digits", "--learning", rule, "--seed", str(seed),
                        *DIGITS_OPTIONS, "--no-progress", "--out", str(target)]  # fmt: skip
                start = time.process_time()
                with contextlib.redirect_stdout(io.StringIO()):
                    status = main(argv)
                seconds = time.process_time() - start
                if status != 0:
                    raise RuntimeError(f"python -m helpers {' '.join(argv)} ended with {status}")
                run = json.loads((target / "run.json").read_text())
                runs.append({
                    "seed": seed, "best_epoch": run["best_epoch"],
                    "validation_accuracy": run["validation_accuracy"], "test_accuracy": run["test_accuracy"],
                    "cpu_seconds": seconds,
                })  # fmt: skip
            out[rule] = runs
            print(f"digits {rule}: {runs}", file=sys.stderr)
    return out


def main() -> None:
    RESULTS.mkdir(exist_ok=True)
    started = time.time()
    report = {
        "command": "python -m benchmarks.online",
        "machine": machine(),
        "timing_task": {"settings": "notebook 6's timing task, 16 hidden, lr 1e-2, full batch, "
                        f"epochs chosen from {list(TIMING_BLOCKS)} on validation", "rules": timing_task()},
        "digits": {"command": "python -m helpers train --dataset digits --learning RULE --seed SEED "
                   + " ".join(DIGITS_OPTIONS) + " (in-process, the baselines skipped)", "rules": digits()},
    }  # fmt: skip
    report["wall_seconds"] = time.time() - started
    (RESULTS / "online.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS / 'online.json'}")


if __name__ == "__main__":
    main()
