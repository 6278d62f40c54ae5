"""Online learning with eligibility traces (``braintrace``): gradients computed forward in time, with
memory that does not grow with the number of time steps (notebook 14; notebook 16 trains with it).

BPTT keeps every step's state for the backward pass, so its memory grows with the sequence length
(notebook 8). ``braintrace`` instead carries, for every weight, an *eligibility trace*: how the hidden
states depend on that weight, updated at each step from the last one. Multiplied with the learning
signal of the step (how the loss of this step depends on the hidden states now), it gives the step's
gradient; the gradients are added up as the sequence runs, and nothing of the past is stored.

The learning signal must arrive at every step, so online learning trains on a *per-step* loss: the
cross-entropy of the readout at each step, averaged over the steps (:func:`per_step_cross_entropy`).
``OnlineTrainer(..., learning="bptt")`` trains that same loss with BPTT, the baseline an online
algorithm is compared with; accuracy reads the readout like every trainer here (``readout_method``,
default the mean over time).

The network must be built with ``SNN(..., online=True)``, so that its Linear layers route their
products through braintrace's ops (the same numbers; see :class:`helpers.SNN`).
"""

from __future__ import annotations

import math

import brainstate
import braintools
import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from helpers.diagnostics import xla_memory
from helpers.events import SpikeEvents, SpikeInput
from helpers.minibatch import MinibatchTrainer
from helpers.model import SNN
from helpers.readout import cross_entropy, per_step_cross_entropy
from helpers.training import Trainer
from helpers.validation import check_instance, check_one_of, check_positive_number, get_dt

__all__ = [
    "LEARNING_RULES",
    "OnlineTrainer",
    "OnlineMinibatchTrainer",
    "compile_learner",
    "check_online_network",
    "cosine",
]

#: The learning rules by name: BPTT, and braintrace's online algorithms this network supports.
#: ``pp_prop`` is braintrace's name of ES-D-RTRL.
LEARNING_RULES = {
    "bptt": "backpropagation through time (stores every step)",
    "d_rtrl": "diagonal RTRL: an eligibility trace per weight and hidden state",
    "es_d_rtrl": "ES-D-RTRL (pp_prop): traces factorised into an input and an output side",
    "pp_prop": "another name of es_d_rtrl",
    "eprop": "e-prop: eligibility propagation with the symmetric learning signal",
}


def check_online_network(net: SNN, learning: str) -> None:
    """Raise a clear error unless ``net`` can be trained with ``learning`` (see :data:`LEARNING_RULES`)."""
    check_instance("net", net, SNN, "a helpers.SNN")
    check_one_of("learning", learning, LEARNING_RULES)
    if learning == "bptt":
        return
    if not net.online:
        raise ValueError(
            f"learning={learning!r} needs a network whose weights pass through braintrace's ops: "
            "build it with SNN(..., online=True)"
        )
    if net.train_tau_mem:
        raise ValueError(
            f"learning={learning!r} cannot train the time constants: braintrace traces only the weights "
            "routed through its ops, so a trainable tau would silently get no gradient; use "
            "train_tau_mem=False or learning='bptt'"
        )


def compile_learner(net: SNN, learning: str, batch_size: int, *, decay: float | None = None):
    """``braintrace.compile`` of ``net`` with the algorithm ``learning`` for batches of ``batch_size``.

    ``es_d_rtrl`` (``pp_prop``) keeps a low-rank trace whose input side decays by ``decay`` per step
    (default ``exp(-dt / tau_mem)``, the membrane's own decay).
    """
    import braintrace

    check_online_network(net, learning)
    if learning == "bptt":
        raise ValueError("learning='bptt' has no online learner; use helpers.Trainer")
    options = {}
    if learning in ("es_d_rtrl", "pp_prop"):
        if decay is None:
            decay = math.exp(-float(get_dt() / net.init_kwargs["tau_mem"]))
        options["decay_or_rank"] = float(decay)
    example = jnp.zeros((batch_size, net.n_inputs), brainstate.environ.dftype())
    return braintrace.compile(net, learning, example, batch_size=batch_size, **options)


class _Online:
    """The online path on the training core (:class:`helpers.training.TrainingCore`): it overrides the
    core's two hooks and nothing else of a trainer, whose loop, history, divergence rule and checkpoints
    stay its own.

    - the loss hook, :meth:`loss_of`: the per-step cross-entropy (:func:`per_step_cross_entropy`), for
      every rule, BPTT included, so that the rules train the same loss;
    - the step hook, :meth:`batch_gradient`: for an online rule, the gradient summed forward in time by
      the braintrace learner of the batch size (compiled before the step is traced:
      :meth:`learner`); for ``"bptt"``, the core's own.
    """

    net: SNN
    params: dict

    def _setup_online(self, learning: str, decay: float | None) -> None:
        check_online_network(self.net, learning)
        if decay is not None:
            decay = check_positive_number("decay", decay)
            if decay >= 1:
                raise ValueError(f"decay must be below 1 (a decay per step), got {decay!r}")
        self.learning = learning
        self.decay = decay
        #: batch size -> compiled braintrace learner (they hold the eligibility traces of that batch size)
        self.learners: dict = {}

    def learner(self, batch_size: int):
        """The braintrace learner for batches of ``batch_size`` (compiled on first use)."""
        if batch_size not in self.learners:
            self.learners[batch_size] = compile_learner(self.net, self.learning, batch_size, decay=self.decay)
        return self.learners[batch_size]

    def loss_of(self, outputs, labels, mask=None):
        return per_step_cross_entropy(outputs, labels, mask)

    def states_for(self, batch_size: int) -> None:
        """Give the network's hidden states the shape of a batch of ``batch_size`` examples, on the
        host, before a compiled program runs on such a batch (a no-op when they have it).

        An online network keeps its state objects (:meth:`helpers.SNN.fresh_state`), and their values
        are inputs of every compiled program: built for one example, they leave a program at its
        batch's size. Without this, the first two calls of a program would compile it twice (once
        for the states as built, once for them as the first call left them); every trainer here
        calls it where the data enter. A network built without ``online=True`` (BPTT only) makes new
        state objects inside every program instead, so there is nothing to shape: a no-op. The state
        objects are looked up once per trainer (a walk through the network), not at every step."""
        if not self.net.online:
            return
        if not hasattr(self, "_hidden_states"):  # an online network keeps these objects for good
            self._hidden_states = list(self.net.states(brainstate.HiddenState).values())
        hidden = self._hidden_states
        leaves = [leaf for state in hidden for leaf in jax.tree.leaves(state.value)]
        if all(
            np.shape(leaf)[:1] == (batch_size,) and not getattr(leaf, "weak_type", False) for leaf in leaves
        ):
            return
        self.net.fresh_state(batch_size)
        for state in hidden:  # zeros as a program returns them: of a fixed dtype, not weakly typed
            state.value = jax.tree.map(lambda leaf: jnp.asarray(leaf, dtype=leaf.dtype), state.value)

    def run_epochs(self, spikes, labels, n_epochs: int):
        """The core's epochs in one traced loop, the network's states first given this batch's shape:
        an online network keeps its state objects (:meth:`helpers.SNN.fresh_state`), and the loop over
        epochs carries them."""
        self.net.fresh_state(spikes.shape[1])
        return super().run_epochs(spikes, labels, n_epochs)  # type: ignore[misc]

    def batch_gradient(self, spikes, labels, mask=None):
        """``(grads, loss)``: the gradient of the per-step loss with respect to the weights, online
        (eligibility traces) or, for ``learning='bptt'``, by BPTT (the core's). Traced under ``jit``."""
        if self.learning == "bptt":
            return super().batch_gradient(spikes, labels, mask)  # type: ignore[misc]
        batch = spikes.shape[1]
        learner = self.learners[batch]
        self.net.fresh_state(batch)  # the state objects the learner was compiled with
        learner.reset_state(batch_size=batch)
        # braintrace's own driver (learner.etrace_grad) also stacks every step's loss, 4 bytes a step;
        # this loop keeps only running sums, so that nothing in memory grows with the number of steps
        step_grad = brainstate.transform.grad(
            lambda x_t: cross_entropy(learner(x_t), labels, mask), self.params, return_value=True
        )

        def step(carry, x_t):
            grads, loss = step_grad(x_t)
            return jax.tree.map(jnp.add, carry, (grads, loss)), None

        zeros = jax.tree.map(jnp.zeros_like, {path: state.value for path, state in self.params.items()})
        (grads, loss), _ = brainstate.transform.scan(step, (zeros, jnp.zeros(())), spikes)
        n_steps = spikes.shape[0]
        return jax.tree.map(lambda g: g / n_steps, grads), loss / n_steps


class OnlineTrainer(_Online, Trainer):
    """A :class:`~helpers.Trainer` whose gradient comes from an online learning rule.

    ``learning`` is one of :data:`LEARNING_RULES`: ``"d_rtrl"``, ``"es_d_rtrl"`` (also ``"pp_prop"``),
    ``"eprop"``, or ``"bptt"`` (BPTT of the same per-step loss, the baseline). The loss is
    :func:`per_step_cross_entropy`. Everything else is the Trainer's: the compiled step, ``fit`` with its
    divergence rule and blow-up warning, ``fit_history``, ``accuracy`` (with ``readout_method``),
    ``reinitialize``, ``memory_estimate`` and checkpoints (:func:`helpers.save_checkpoint`).
    ``decay`` sets ES-D-RTRL's trace decay per step (see :func:`compile_learner`).

    The network must be an ``SNN(..., online=True)`` with fixed time constants; input is dense spikes
    (the event-driven path adds weight rows outside braintrace's ops, which it cannot trace).
    """

    def __init__(
        self,
        net: SNN,
        learning: str = "d_rtrl",
        *,
        lr: float = 3e-3,
        optimizer: braintools.optim.Optimizer | None = None,
        readout_method: str = "mean",
        decay: float | None = None,
        event_driven: bool = False,
    ):
        if event_driven:
            raise ValueError(
                "online learning needs dense input (event_driven=False): the event-driven input adds "
                "weight rows outside braintrace's ops, so the input weights would get no eligibility trace"
            )
        super().__init__(net, lr=lr, optimizer=optimizer, readout_method=readout_method, event_driven=False)
        self._setup_online(learning, decay)

    def prepare_input(self, spikes: SpikeInput) -> SpikeInput:
        if isinstance(spikes, SpikeEvents):
            raise ValueError("online learning takes dense spikes [T, B, n_inputs], not SpikeEvents")
        data = super().prepare_input(spikes)
        if self.learning != "bptt":
            self.learner(data.shape[1])  # compile the learner of this batch size before tracing a step
        self.states_for(data.shape[1])
        return data

    def gradient_memory(self, spikes, labels) -> dict[str, float]:
        """XLA's memory estimate (MiB) of the program :meth:`gradient` runs on this batch shape
        (``arguments``, ``outputs``, ``temporaries``, ``total``: :func:`helpers.diagnostics.xla_memory`).
        Compiles it without running it; a :meth:`gradient` of the same shape afterwards reuses the
        compilation."""
        data = self.prepare_batch(spikes, labels)
        return xla_memory(self._gradient_program().lower(data, labels).compile())

    def _gradient_program(self):
        return self.program(
            "gradient", lambda: brainstate.transform.jit(lambda x, y: self.batch_gradient(x, y)[0])
        )

    def gradient(self, spikes, labels) -> dict:
        """The weights' gradient of the per-step loss on this batch by this trainer's rule, without
        updating anything: ``{path: {"weight": ..., "bias": ...}}`` as brainstate returns it."""
        return self._gradient_program()(self.prepare_batch(spikes, labels), labels)


class OnlineMinibatchTrainer(_Online, MinibatchTrainer):
    """A :class:`~helpers.MinibatchTrainer` whose gradient comes from an online learning rule
    (``learning`` and ``decay`` as in :class:`OnlineTrainer`; the loss is the per-step cross-entropy,
    the padded examples of the last batch masked out). The same minibatches, history, ``evaluate``
    and divergence rule; no ``regularizer`` and no ``data_parallel``."""

    def __init__(
        self,
        net: SNN,
        learning: str = "d_rtrl",
        *,
        lr: float = 3e-3,
        optimizer: braintools.optim.Optimizer | None = None,
        readout_method: str = "mean",
        encoder=None,
        decay: float | None = None,
    ):
        super().__init__(net, lr=lr, optimizer=optimizer, readout_method=readout_method, encoder=encoder)
        self._setup_online(learning, decay)

    def fit(self, train, epochs: int, batch_size: int = 64, **kwargs) -> dict:
        if self.learning != "bptt":
            self.learner(self._check_batch_size(batch_size))  # compiled before the epoch is traced
        return super().fit(train, epochs, batch_size, **kwargs)

    def _program_arguments(self, split, indices, mask) -> tuple:
        self.states_for(np.shape(indices)[1])  # the batch size of the epoch or evaluation about to run
        return super()._program_arguments(split, indices, mask)


def cosine(a, b) -> float:
    """The cosine of the angle between two gradients (pytrees of arrays, units ignored): 1 when they
    point the same way. Computed in float64 with NumPy (no XLA program to compile per gradient shape)."""

    def flat(tree):
        leaves = jax.tree.leaves(tree)
        return np.concatenate([np.ravel(np.asarray(u.get_magnitude(x), np.float64)) for x in leaves])

    flat_a, flat_b = flat(a), flat(b)
    return float(flat_a @ flat_b / (np.linalg.norm(flat_a) * np.linalg.norm(flat_b)))
