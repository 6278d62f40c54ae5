"""Benchmark: ``helpers`` against the pure-JAX reference, side by side, on a grid of sizes.

    make bench                     # the full grid (about 20 minutes on 2 CPU cores)
    python -m benchmarks.bench --quick

For every grid point (hidden neurons x time steps x batch size; 100 inputs, 2 outputs, 5 Hz input)
the implementations train the same network from the same weights on the same data, with the epochs
of a call inside one compiled program: ``helpers`` as a user runs it (``Trainer`` defaults: event-driven
input), the reference, and ``helpers`` with ``event_driven=False`` (the dense input product, as the
reference computes it; shown for comparison). Calls alternate between them (interleaved repeats) so that
drifts of the machine hit all alike. Reported per point: the median steady time per epoch, the ratio
helpers / reference, the compile time of the first call, the number of compilations of the helpers
training step over all calls, and XLA's memory estimate of each compiled program (arguments + outputs
+ temporaries). Writes ``benchmarks/results/bench.{md,json,png}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import brainstate  # noqa: E402
import brainunit as u  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402

import helpers  # noqa: E402
from benchmarks import reference  # noqa: E402
from helpers.diagnostics import xla_memory  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
GRID = {"hidden": [4, 64, 256, 1024], "steps": [100, 500], "batch": [128, 1024]}
QUICK = {"hidden": [4, 64], "steps": [100], "batch": [128]}


def epochs_per_call(steps: int, batch: int, hidden: int) -> int:
    """Enough epochs per call for a measurable call (a few hundred ms), at most 50."""
    work = steps * batch * (100 * hidden + 2 * hidden)
    return int(np.clip(round(4e8 / work), 1, 50))


def bench_point(hidden: int, steps: int, batch: int, repeats: int) -> dict:
    brainstate.random.seed(0)
    net = helpers.SNN(100, hidden, 2)
    spikes, labels = helpers.poisson_dataset(steps, batch, 100, 5.0 * u.Hz)
    n = epochs_per_call(steps, batch, hidden)
    params = reference.params_from(net)  # before any training: all three start from these weights
    opt = reference.adam_init(params)
    trainer = helpers.Trainer(net)
    events = trainer.prepare_input(spikes)  # converted once, outside the timing
    brainstate.random.seed(0)
    dense_trainer = helpers.Trainer(helpers.SNN(100, hidden, 2), event_driven=False)

    def run_helpers():
        return trainer.fit(events, labels, n, epochs_per_call=n)

    def run_dense():
        return dense_trainer.fit(spikes, labels, n, epochs_per_call=n)

    def run_reference():
        nonlocal params, opt
        params, opt, losses = reference.train_epochs(params, opt, spikes, labels, n_epochs=n)
        return np.asarray(losses)

    with helpers.count_compilations() as compiled:
        start = time.perf_counter()
        run_helpers()
        first_helpers = time.perf_counter() - start
        start = time.perf_counter()
        run_reference()
        first_reference = time.perf_counter() - start
        run_dense()
        times = {"helpers": [], "reference": [], "helpers_dense": []}
        for _ in range(repeats):
            runs = (("helpers", run_helpers), ("reference", run_reference), ("helpers_dense", run_dense))
            for name, run in runs:
                start = time.perf_counter()
                run()
                times[name].append((time.perf_counter() - start) / n)
    step_compilations = compiled.jitted // 2  # two trainers
    ms = {name: 1e3 * statistics.median(values) for name, values in times.items()}
    memory = {
        "helpers": trainer.memory_estimate(events, labels, epochs_per_call=n)["total"],
        "reference": xla_memory(
            reference.train_epochs.lower(params, opt, spikes, labels, n_epochs=n).compile()
        )["total"],
    }
    return {
        "hidden": hidden,
        "steps": steps,
        "batch": batch,
        "epochs_per_call": n,
        "repeats": repeats,
        "ms_per_epoch": ms,
        "ratio": ms["helpers"] / ms["reference"],
        "ratio_dense": ms["helpers_dense"] / ms["reference"],
        "compile_s": {  # clipped at 0: for the largest points it is within the timing noise
            "helpers": max(0.0, first_helpers - ms["helpers"] * n / 1e3),
            "reference": max(0.0, first_reference - ms["reference"] * n / 1e3),
        },
        "helpers_step_compilations": step_compilations,
        "memory_mb": memory,
    }


def machine() -> str:
    device = jax.devices()[0]
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = ", ".join(f"{k} {v}" for k, v in helpers.stack_versions().items())
    return f"{os.cpu_count()} x {cpu}; JAX device: {device.platform} ({device.device_kind}); {versions}"


def write_report(rows: list[dict], description: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench.json").write_text(json.dumps({"machine": description, "points": rows}, indent=2) + "\n")
    ratios = np.array([r["ratio"] for r in rows])
    lines = [
        "# helpers vs the pure-JAX reference",
        "",
        f"Machine: {description}.",
        "",
        "Training with Adam, 100 inputs, 2 outputs, 5 Hz Poisson input; epochs inside one compiled program.",
        "`helpers` runs as `Trainer` does by default, with event-driven input (the weight rows of the",
        "inputs that fired are added up; see notebook 8); the reference transcribes the equations with a",
        "dense input product. `dense` is `helpers` with `event_driven=False`: the reference's arithmetic,",
        "through brainpy.",
        "Times are medians over interleaved repeats; compile = first call minus its steady run time;",
        "memory = XLA's estimate for the compiled training program (arguments + outputs + temporaries).",
        "",
        "| hidden | steps | batch | helpers ms/epoch | reference ms/epoch | ratio | dense ms/epoch "
        "| dense ratio | compile helpers / ref (s) | step compilations | memory helpers / ref (MB) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['hidden']} | {r['steps']} | {r['batch']} | {r['ms_per_epoch']['helpers']:.2f} "
            f"| {r['ms_per_epoch']['reference']:.2f} | {r['ratio']:.3f} "
            f"| {r['ms_per_epoch']['helpers_dense']:.2f} | {r['ratio_dense']:.3f} "
            f"| {r['compile_s']['helpers']:.2f} / {r['compile_s']['reference']:.2f} "
            f"| {r['helpers_step_compilations']} "
            f"| {r['memory_mb']['helpers']:.1f} / {r['memory_mb']['reference']:.1f} |"
        )
    dense = np.array([r["ratio_dense"] for r in rows])
    lines += [
        "",
        f"Ratio helpers / reference: median {np.median(ratios):.3f}, worst {ratios.max():.3f}, "
        f"best {ratios.min():.3f} over {len(rows)} points.",
        f"Ratio dense helpers / reference: median {np.median(dense):.3f}, worst {dense.max():.3f}, "
        f"best {dense.min():.3f}.",
        "",
    ]
    (RESULTS / "bench.md").write_text("\n".join(lines))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    combos = sorted({(r["steps"], r["batch"]) for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, (steps, batch) in enumerate(combos):
        sel = [r for r in rows if (r["steps"], r["batch"]) == (steps, batch)]
        hidden = [r["hidden"] for r in sel]
        color = f"C{i}"
        axes[0].plot(
            hidden,
            [r["ms_per_epoch"]["helpers"] for r in sel],
            "o-",
            color=color,
            label=f"T={steps}, B={batch}",
        )
        axes[0].plot(hidden, [r["ms_per_epoch"]["reference"] for r in sel], "x--", color=color)
        axes[1].plot(hidden, [r["ratio"] for r in sel], "o-", color=color, label=f"T={steps}, B={batch}")
        axes[1].plot(hidden, [r["ratio_dense"] for r in sel], ".:", color=color)
    axes[0].set(xscale="log", yscale="log", xlabel="hidden neurons", ylabel="ms per epoch",
                title="helpers (o, solid) and reference (x, dashed)")  # fmt: skip
    axes[1].axhline(1.0, color="0.4", lw=1)
    axes[1].set(xscale="log", xlabel="hidden neurons", ylabel="helpers / reference",
                title="time ratio (o: helpers, .: dense helpers)", ylim=(0, None))  # fmt: skip
    axes[0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(RESULTS / "bench.png", dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 2-point grid, for a smoke test")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    brainstate.environ.set(dt=1.0 * u.ms)
    grid = QUICK if args.quick else GRID
    rows = []
    for steps in grid["steps"]:
        for batch in grid["batch"]:
            for hidden in grid["hidden"]:
                big = steps * batch * hidden >= 500 * 1024 * 256
                row = bench_point(hidden, steps, batch, repeats=3 if big else args.repeats)
                rows.append(row)
                times = row["ms_per_epoch"]
                print(
                    f"hidden {hidden:4d} steps {steps:3d} batch {batch:4d}: "
                    f"helpers {times['helpers']:9.2f} ms, reference {times['reference']:9.2f} ms, "
                    f"ratio {row['ratio']:.3f} (dense {row['ratio_dense']:.3f})",
                    flush=True,
                )
                write_report(rows, machine())


if __name__ == "__main__":
    main()
