"""Many training runs side by side: one compiled program, ``vmap``-ped over runs.

A claim such as "surrogate A learns faster than B" needs several seeds per setting. Training them one
after the other costs one compilation per setting and one host round trip per run; here every run is
one lane of ``brainstate.transform.vmap2`` over the trainer's own training step: the weights, Adam's
state and any extra state (a :class:`~helpers.model.SwitchableSurrogate`'s weights) get a leading run
axis, and all runs train at once inside one ``jit`` (with ``threads``, in a few calls of it, each from
a thread of its own). :func:`fit_settings` calls the same program once per setting of states that all
runs of a call share (a surrogate, a flag), a few settings at a time from threads.

Batched matrix products sum in another order than single ones, so a run here matches the same seed
trained alone to rounding (identical at first, apart after many epochs like any rounding difference),
not bit for bit.

A strategy on :class:`~helpers.training.TrainingCore`: the runs start from the core's
``reinitialize``, train with the trainer's own traced step (``run_epochs``), stop on its divergence
rule, and the compiled program is kept with ``trainer.program``. Introduced in notebook 5.
"""

from __future__ import annotations

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

__all__ = ["fit_runs", "fit_settings", "map_in_threads"]

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


def _thread_settings() -> dict:
    """brainstate's settings (dt and the like) as ``brainstate.environ.context`` takes them, for a
    worker thread, which does not inherit them (brainstate keeps them per thread). Raises
    ``ValueError`` outside brainstate's default precision (32): a thread sets the settings again, and
    leaving a precision context there would switch JAX's 64-bit mode off for the whole process."""
    precision = brainstate.environ.get_precision()
    if precision != 32:
        raise ValueError(
            f"threads > 1 needs brainstate's default precision 32, got {precision}; use threads=1"
        )
    return {k: v for k, v in brainstate.environ.all().items() if k != "precision"}


def map_in_threads(
    function: Callable[[_Item], _Result], items: Iterable[_Item], *, threads: int = 2
) -> list[_Result]:
    """``[function(item) for item in items]``, computed by ``threads`` worker threads at once.

    Each worker runs under the caller's brainstate settings (dt and the like, which a new thread
    does not inherit). Returns the results in the order of ``items``; the first error (in that
    order) is raised here, once the calls already started have ended, and the calls that have not
    started by the time it is seen here are dropped (later items may start until then). With
    ``threads=1`` (or fewer than two items), the plain loop in the caller's thread; with more, needs
    brainstate's default precision (32). Ctrl-C waits for the calls already running to end.

    Notes
    -----
    What it gains: JAX compiles a program without holding Python's lock (the GIL) and runs a
    compiled program on threads of its own, so while one item's program compiles or runs, another
    thread can trace the next one; on the 2-core hosts of this project that overlaps the
    compilations of a short notebook (notebook 16: two tasks, three learning rules each; when it was
    still part of notebook 14, one pair of runs on an otherwise idle 2-core host took 30 s instead of
    34 s for the whole notebook, a gain not separated from run-to-run noise).
    :func:`helpers.count_compilations` counts every thread's compilations.
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

    See Also
    --------
    fit_settings : the same runs once per setting of some states shared by all runs of a call (a
        surrogate, a flag), the settings' calls made from several threads.
    """
    check_positive_int("threads", threads)
    runs = _Runs(trainer, seeds, train, epochs, evaluate, states, values, per_run_data, threads)
    groups = np.array_split(np.arange(len(runs.seeds)), threads)
    groups = [g for g in groups if g.size]  # no empty group when there are fewer runs than threads
    results = runs.train([(g, {}) for g in groups], threads)
    losses = np.concatenate([r[0] for r in results])
    accuracies = [np.concatenate([r[1][k] for r in results]) for k in range(len(runs.sets))]
    return runs.result(losses, accuracies)


def fit_settings(
    trainer: Trainer,
    seeds,
    train,
    epochs: int,
    settings,
    *,
    evaluate: dict | None = None,
    states=(),
    values=None,
    per_run_data: bool = False,
    threads: int = 2,
) -> list[dict]:
    """:func:`fit_runs` once per setting of some states, ``threads`` settings at a time.

    Parameters
    ----------
    trainer, seeds, train, epochs, evaluate, states, values, per_run_data
        As for :func:`fit_runs`: every setting trains these runs, from these seeds.
    settings
        A non-empty list of ``{state: value}`` dicts. In setting ``k`` each of its states holds its
        value for all the runs of the call, as if set (``state.value = value``) before a call of
        :func:`fit_runs`: for example a :class:`~helpers.model.SwitchableSurrogate`'s weights, or a
        :class:`~helpers.model.DetachedResetLIF`'s ``detached`` flag. A value must have its state's
        shape (it is converted to its dtype); a state may not be one of the runs' own (weights,
        Adam's state, ``states``).
    threads
        How many settings train at the same time, each setting's call from a thread of its own as
        soon as one is free (1: one after the other, from this thread). The gain needs free cores:
        on the 2-core hosts of this project one call uses about one core (see :func:`fit_runs`).
        Needs brainstate's default precision (32) when above 1.

    Returns
    -------
    list of dicts, one per setting, in the order of ``settings``, each as :func:`fit_runs` returns
    it. The states are left as they were.

    Notes
    -----
    Why not per-run ``values`` in one call? A state that is the same for all runs of a call is an
    unbatched input of the compiled program; one value per run batches it, and a switch on it (the
    surrogate switch's ``jax.lax.switch``) must then evaluate every branch for every run. Here every
    call runs the program that :func:`fit_runs` compiles for the same trainer and arguments, so a
    setting's numbers are those of a call of :func:`fit_runs` with the same states set, bit for bit.
    """
    check_positive_int("threads", threads)
    if isinstance(settings, dict) or not isinstance(settings, (list, tuple)) or not settings:
        raise ValueError("settings must be a non-empty list of {state: value} dicts")
    own = {id(s) for s in _run_states(trainer, states)}
    checked: list[dict] = []
    for k, setting in enumerate(settings):
        if not isinstance(setting, dict):
            got = type(setting).__name__
            raise TypeError(f"settings[{k}] must be a dict {{state: value}}, got {got}")
        fixed = {}
        for state, value in setting.items():
            if not isinstance(state, brainstate.State):
                got = type(state).__name__
                raise TypeError(f"settings[{k}]: the keys must be brainstate.State objects, got {got}")
            if id(state) in own:
                own_state = (
                    f"a {type(state).__name__} is one of the runs' own states (weights, optimiser, states=)"
                )
                raise ValueError(f"settings[{k}]: {own_state}; give those per run, with states= and values=")
            current = jnp.asarray(state.value)
            value = jnp.asarray(value, current.dtype)
            if value.shape != current.shape:
                shapes = f"a value of shape {value.shape} for a state of shape {current.shape}"
                raise ValueError(f"settings[{k}]: {shapes}")
            fixed[state] = value
        if checked and {id(x) for x in fixed} != {id(x) for x in checked[0]}:
            raise ValueError(
                f"settings[{k}] names other states than settings[0]: every setting must give a value "
                "to the same states"
            )
        checked.append(fixed)
    runs = _Runs(trainer, seeds, train, epochs, evaluate, states, values, per_run_data, threads)
    everyone = np.arange(len(runs.seeds))
    results = runs.train([(everyone, setting) for setting in checked], threads)
    return [runs.result(losses, accuracies, setting=k) for k, (losses, accuracies) in enumerate(results)]


def _run_states(trainer: Trainer, states) -> list:
    """The states with one value per run: the weights, Adam's state and step count, then ``states``."""
    opt = trainer.optimizer
    return [*trainer.params.values(), opt.opt_state, opt.step_count, *states]


class _Runs:
    """What :func:`fit_runs` and :func:`fit_settings` share: the checked arguments, each run's initial
    states, the compiled program (kept by the trainer), and the calls of it from threads."""

    def __init__(self, trainer, seeds, train, epochs, evaluate, states, values, per_run_data, threads):
        check_positive_int("epochs", epochs)
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
                        f"per_run_data: {name} must be (spikes [R, T, B, N], labels [R, B]) "
                        f"with R = {len(seeds)}"
                    )
                trainer.net.check_input(x[0])
            data = {name: (_per_run_input(trainer, x), jnp.asarray(y)) for name, (x, y) in sets.items()}
        else:  # shared: checked once, events when the trainer is event-driven
            data = {name: (trainer.prepare_batch(x, y), y) for name, (x, y) in sets.items()}

        run_states = _run_states(trainer, states)
        saved = [s.value for s in run_states]
        per_seed = []
        try:
            for seed in seeds:
                trainer.reinitialize(seed)
                per_seed.append([s.value for s in run_states[: len(run_states) - len(states)]])
        finally:
            for state, value in zip(run_states, saved, strict=True):
                state.value = value
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

        self.trainer, self.seeds, self.sets, self.per_run_data = trainer, seeds, sets, per_run_data
        self.run_states, self.initial = run_states, initial
        self.program = trainer.program(key, build)
        self.args = [a for name in sets for a in data[name]]

    def train(self, jobs, threads):
        """Call the program once per job ``(runs, shared)``: the runs (indices) it trains and the values
        of the unbatched states during the call; ``threads`` calls at a time. Returns, per job,
        ``(losses [r, epochs], [accuracy [r] per set])`` as NumPy arrays. Every state is restored."""
        lock = threading.Lock()
        everyone = len(self.seeds)
        shared_states = list({id(s): s for _, shared in jobs for s in shared}.values())
        touched = [*self.run_states, *shared_states]
        saved = [s.value for s in touched]
        threads = min(threads, len(jobs))

        def call(job):
            runs, shared = job
            if len(runs) == everyone:  # every run: the stacked values as they are
                values, args = self.initial, self.args
            else:  # this group's slice of every per-run value
                pick = lambda a: a[runs[0] : runs[-1] + 1]  # noqa: E731
                values = [jax.tree.map(pick, value) for value in self.initial]
                args = [jax.tree.map(pick, a) for a in self.args] if self.per_run_data else self.args
            with lock:  # set the states and start the program
                for state, value in zip(self.run_states, values, strict=True):
                    state.value = value
                for state, value in shared.items():
                    state.value = value
                outputs = self.program(*args)
            # the dispatch is under the lock, the computation is not: the calls compute at the same time
            losses, accuracies = jax.block_until_ready(outputs)
            return np.asarray(losses), [np.asarray(a) for a in accuracies]

        try:  # each thread under the caller's dt (map_in_threads)
            return map_in_threads(call, jobs, threads=threads)
        finally:
            for state, value in zip(touched, saved, strict=True):
                state.value = value

    def result(self, losses, accuracies, setting: int | None = None) -> dict:
        """The dict that :func:`fit_runs` returns, after the divergence check (whose error names the
        setting of :func:`fit_settings`, if given)."""
        bad = np.flatnonzero([diverged_at(run).size > 0 for run in losses])
        where = "" if setting is None else f", setting {setting}"
        if bad.size:
            raise FloatingPointError(
                f"training diverged in run {int(bad[0])} (seed {self.seeds[bad[0]]}{where}); lower the "
                f"learning rate (lr={self.trainer.lr!r}) or check the data"
            )
        result = {"losses": losses}
        for name, acc in zip(self.sets, accuracies, strict=True):
            result[f"{name}_accuracy"] = np.asarray(acc, dtype=float)
        return result
