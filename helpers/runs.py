"""Many training runs side by side: one compiled program, ``vmap``-ped over runs.

A claim such as "surrogate A learns faster than B" needs several seeds per setting. Training them one
after the other costs one compilation per setting and one host round trip per run; here every run is
one lane of ``brainstate.transform.vmap2`` over the trainer's own training step: the weights, Adam's
state and any extra state (a :class:`~helpers.model.SwitchableSurrogate`'s weights) get a leading run
axis, and all runs train at once inside one ``jit`` (with ``threads``, in a few calls of it, each from
a thread of its own).

Batched matrix products sum in another order than single ones, so a run here matches the same seed
trained alone to rounding (identical at first, apart after many epochs like any rounding difference),
not bit for bit.

A strategy on :class:`~helpers.training.TrainingCore`: the runs start from the core's
``reinitialize``, train with the trainer's own traced step (``run_epochs``), stop on its divergence
rule, and the compiled program is kept with ``trainer.program``. Introduced in notebook 5.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import brainstate
import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from helpers.events import SpikeEvents, spike_events
from helpers.readout import readout
from helpers.training import Trainer, diverged_at
from helpers.validation import check_positive_int, check_seed

__all__ = ["fit_runs", "map_in_threads"]

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


def _thread_settings() -> dict:
    """brainstate's settings (dt and the like) as ``brainstate.environ.context`` takes them, for a
    worker thread, which does not inherit them (brainstate keeps them per thread). Raises
    ``ValueError`` outside brainstate's default precision (32): a thread sets the settings again, and
    leaving a precision context there would switch JAX's 64-bit mode off for the whole process."""
    precision = brainstate.environ.get_precision()
    if precision != 32:
        raise ValueError(f"threads > 1 needs brainstate's default precision 32, got {precision}")
    return {k: v for k, v in brainstate.environ.all().items() if k != "precision"}


def map_in_threads(
    function: Callable[[_Item], _Result], items: Iterable[_Item], *, threads: int = 2
) -> list[_Result]:
    """``[function(item) for item in items]``, computed by ``threads`` worker threads at once.

    Each worker runs under the caller's brainstate settings (dt and the like, which a new thread
    does not inherit). Returns the results in the order of ``items``; the first error (in that
    order) is raised here, once the calls already started have ended, and the calls not yet started
    are dropped. With ``threads=1`` (or fewer than two items), the plain loop in the caller's thread;
    with more, needs brainstate's default precision (32).

    Notes
    -----
    What it gains: JAX compiles a program without holding Python's lock (the GIL) and runs a
    compiled program on threads of its own, so while one item's program compiles or runs, another
    thread can trace the next one; on the 2-core hosts of this project that overlaps the
    compilations that dominate a short notebook (notebook 14: two tasks, three learning rules each;
    the whole notebook took 30 s instead of 34 s on an otherwise idle 2-core host, one run each).
    The tracing itself holds the GIL and does not overlap, and the gain needs a free core: with
    another process busy on one of the two cores, it is lost.

    What it needs: calls that share no state. Two threads must not trace or run programs on the same
    network at once (brainstate swaps a state's value for a tracer while it traces), so give each
    item its own network and trainer. brainstate's global random generator is shared:
    :meth:`helpers.TrainingCore.reinitialize` seeds and draws under :data:`helpers.training.RANDOM_LOCK`,
    and any other "seed, then draw" in ``function`` must hold that lock too. Results equal those of
    the plain loop when every call depends only on its own item and seeds.
    """
    check_positive_int("threads", threads)
    if not callable(function):
        raise TypeError(f"function must be callable, got {function!r}")
    items = list(items)
    if threads == 1 or len(items) < 2:  # nothing to overlap: the plain loop, in this thread
        return [function(item) for item in items]
    settings = _thread_settings()

    def call(item: _Item) -> _Result:
        with brainstate.environ.context(**settings):
            return function(item)

    pool = ThreadPoolExecutor(min(threads, len(items)))
    futures = [pool.submit(call, item) for item in items]
    try:
        return [future.result() for future in futures]
    finally:  # after an error, the calls not yet started are dropped
        pool.shutdown(wait=True, cancel_futures=True)


def _stack(values):
    return jax.tree.map(lambda *xs: jnp.stack(xs), *values)


def _per_run_input(trainer: Trainer, spikes):
    """One dataset per run ``[R, T, B, N]``: dense, or, for an event-driven trainer, each run's
    :class:`~helpers.SpikeEvents` padded to one length and stacked along the run axis."""
    if not trainer.event_driven:
        return jnp.asarray(spikes)
    events = [spike_events(np.asarray(x)) for x in spikes]
    length = max(e.example.shape[1] for e in events)

    def pad(table, fill):
        table = np.asarray(table)
        return np.pad(table, ((0, 0), (0, length - table.shape[1])), constant_values=fill)

    first = events[0]  # padding: the last example and the zero row n_inputs, as spike_events pads
    example = np.stack([pad(e.example, first.batch_size - 1) for e in events])
    channel = np.stack([pad(e.channel, first.n_inputs) for e in events])
    return SpikeEvents(jnp.asarray(example), jnp.asarray(channel), first.batch_size, first.n_inputs)


def fit_runs(
    trainer: Trainer,
    seeds,
    train,
    epochs: int,
    *,
    evaluate: dict | None = None,
    states=(),
    values=None,
    per_run_data: bool = False,
    threads: int = 1,
) -> dict:
    """Train one run per seed at once; return their loss histories and accuracies.

    Parameters
    ----------
    trainer
        Its network, optimiser and readout define every run; run ``i`` starts from the weights of
        ``trainer.reinitialize(seeds[i])``. The trainer's own weights are left as they were.
    seeds
        One non-negative integer per run (repeats allowed, e.g. the same weights with other states).
    train
        ``(spikes [T, B, N], labels [B])`` shared by all runs, or with ``per_run_data=True``
        ``(spikes [R, T, B, N], labels [R, B])``, one dataset per run.
    epochs
        Full-batch epochs per run.
    evaluate
        ``{name: (spikes, labels)}``: after training, each run's accuracy on these sets (shared by all
        runs, or one per run with ``per_run_data``), without training on them.
    states, values
        Extra ``brainstate.State`` objects with one value per run: ``values[j][i]`` is the value of
        ``states[j]`` in run ``i`` (for example ``SwitchableSurrogate.weights``).
    threads
        Split the runs into this many groups of consecutive runs (as equal as they go; more threads
        than runs give one run each), each trained by a call of the compiled program from a thread of
        its own. On the 2-core hosts of this project one call used about one core however many runs
        it held, and two calls from two threads ran at the same time (notebook 7: about 28 s of wall
        time with two calls made one after the other from one thread on an idle host, or with one
        call of 30 runs at load 1.2-1.5; 20 s with two threads on both): the gain needs a free core.
        Groups of unequal sizes cost a second compilation, so choose a number of threads that
        divides the number of runs. Default 1: one call with every run. A run's numbers depend on
        how many runs share its call only through rounding (the batched sums round otherwise). With
        ``threads > 1``, needs brainstate's default precision (32).

    Returns
    -------
    dict of NumPy arrays: ``losses [R, epochs]`` (the loss before each update), ``train_accuracy [R]``
    and ``<name>_accuracy [R]`` for every evaluated set.
    """
    check_positive_int("epochs", epochs)
    check_positive_int("threads", threads)
    if threads > 1:
        _thread_settings()  # refuses a precision that a thread could not take along
    seeds = [check_seed("every seed", s) for s in seeds]
    if not seeds:
        raise ValueError("give at least one seed")
    states, values = list(states), list(values or [])
    if len(values) != len(states) or any(len(v) != len(seeds) for v in values):
        raise ValueError("values must hold, for every state, one value per run")
    evaluate = dict(evaluate or {})
    sets = {"train": train} | evaluate
    if per_run_data:
        for name, (x, y) in sets.items():
            if x.ndim != 4 or x.shape[0] != len(seeds) or y.shape[:1] != (len(seeds),):
                raise ValueError(
                    f"per_run_data: {name} must be (spikes [R, T, B, N], labels [R, B]) with R = {len(seeds)}"
                )
            trainer.net.check_input(x[0])
        data = {name: (_per_run_input(trainer, x), jnp.asarray(y)) for name, (x, y) in sets.items()}
    else:  # shared: checked once, events when the trainer is event-driven
        data = {name: (trainer.prepare_batch(x, y), y) for name, (x, y) in sets.items()}

    opt = trainer.optimizer
    run_states = [*trainer.params.values(), opt.opt_state, opt.step_count, *states]
    saved = [s.value for s in run_states]
    per_seed = []
    for seed in seeds:
        trainer.reinitialize(seed)
        per_seed.append([s.value for s in run_states[: len(run_states) - len(states)]])
    initial = [_stack(column) for column in zip(*per_seed, strict=True)]
    initial += [_stack([jnp.asarray(v) for v in column]) for column in values]

    key = ("fit_runs", epochs, tuple(sets), per_run_data, tuple(id(s) for s in run_states))

    def build():  # one compiled program per trainer and kind of call: a second call reuses it
        net, method = trainer.net, trainer.readout_method

        def run(train_x, train_y, *eval_sets):
            losses = trainer.run_epochs(train_x, train_y, epochs)
            accuracies = []
            for x, y in ((train_x, train_y), *zip(eval_sets[::2], eval_sets[1::2], strict=True)):
                logits = readout(net.simulate(x), method)
                accuracies.append(u.math.mean(u.math.argmax(logits, axis=1) == y))
            return losses, accuracies

        axis = 0 if per_run_data else None
        mapped = brainstate.transform.vmap2(
            run, in_axes=axis, state_in_axes={0: run_states}, state_out_axes={0: run_states}
        )
        return brainstate.transform.jit(mapped)

    program = trainer.program(key, build)
    args = [a for name in sets for a in data[name]]
    groups = np.array_split(np.arange(len(seeds)), threads)
    groups = [g for g in groups if g.size]  # no empty group when there are fewer runs than threads
    lock = threading.Lock()
    settings = _thread_settings()

    def train_group(runs):
        if len(groups) == 1:  # one call, from this thread, with every run
            values, group_args, environment = initial, args, contextlib.nullcontext()
        else:  # this group's slice of every per-run value, in a thread that needs dt set again
            pick = lambda a: a[runs[0] : runs[-1] + 1]  # noqa: E731
            values = [jax.tree.map(pick, value) for value in initial]
            group_args = [jax.tree.map(pick, a) for a in args] if per_run_data else args
            environment = brainstate.environ.context(**settings)
        with lock, environment:  # set the states and start the program
            for state, value in zip(run_states, values, strict=True):
                state.value = value
            outputs = program(*group_args)
        # the dispatch is under the lock, the computation is not: the groups compute at the same time
        return jax.block_until_ready(outputs)

    try:
        if len(groups) == 1:
            results = [train_group(groups[0])]
        else:
            with ThreadPoolExecutor(len(groups)) as pool:
                results = list(pool.map(train_group, groups))
    finally:
        for state, value in zip(run_states, saved, strict=True):
            state.value = value
    losses = np.concatenate([np.asarray(r[0]) for r in results])
    accuracies = [np.concatenate([np.asarray(r[1][k]) for r in results]) for k in range(len(sets))]
    bad = np.flatnonzero([diverged_at(run).size > 0 for run in losses])
    if bad.size:
        raise FloatingPointError(
            f"training diverged in run {int(bad[0])} (seed {seeds[bad[0]]}); lower the learning rate "
            f"(lr={trainer.lr!r}) or check the data"
        )
    result = {"losses": losses}
    for name, acc in zip(sets, accuracies, strict=True):
        result[f"{name}_accuracy"] = np.asarray(acc, dtype=float)
    return result
