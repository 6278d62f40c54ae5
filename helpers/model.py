"""The spiking classifier: input projection -> exponential synapse -> LIF layer -> readout.

Data flow for one time step (shapes for a batch of ``B`` examples)::

    spikes_t [B, n_inputs] --Linear (mA)--> Expon synapse (mA) --> LIF (mV -> spikes [B, n_hidden])
             --Linear--> Expon readout [B, n_outputs]

All time constants are physical quantities (``brainunit``); the integration step ``dt`` is read from
``brainstate.environ`` (set it with ``brainstate.environ.set(dt=1.0 * u.ms)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import brainpy
import brainstate
import braintools
import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from helpers.events import SpikeEvents, SpikeInput, event_input
from helpers.readout import READOUTS, readout
from helpers.validation import (
    check_bool,
    check_callable,
    check_one_of,
    check_positive_int,
    check_positive_number,
    check_positive_quantity,
    check_spikes,
    get_dt,
)

__all__ = [
    "SNN",
    "TrainableTauLIF",
    "default_input_scale",
    "heaviside",
    "DetachedResetLIF",
    "detach_reset",
    "SwitchableSurrogate",
]


def default_input_scale(dt: u.Quantity | None = None) -> float:
    """The original page's input-weight scale, ``7 * (1 - exp(-dt / 1 ms))`` (dimensionless).

    At ``dt = 1 ms`` this is about 4.42. It is the ``scale`` of ``braintools.init.KaimingNormal`` for the
    input weights, which multiplies their *variance*: variance = scale / fan_in, so the standard
    deviation is ``sqrt(scale / fan_in)`` (0.21 mA for 100 inputs), above He's scale of 2. With the
    tutorial's sparse 5 Hz input it leaves most hidden neurons silent at initialisation; notebook 1
    sweeps the scale against the share of neurons that fire.
    """
    dt = get_dt() if dt is None else check_positive_quantity("dt", dt, u.ms)
    return float(7.0 * (1.0 - u.math.exp(-dt / (1.0 * u.ms))))


def heaviside(x: jax.Array) -> jax.Array:
    """The bare spike: 1 where ``x >= 0``, else 0, with the true derivative (zero everywhere).

    Pass it as ``SNN(surrogate=heaviside)`` to see what training does without a surrogate gradient.
    """
    return jnp.asarray(x >= 0, dtype=x.dtype)


class TrainableTauLIF(brainpy.state.LIF):
    """``brainpy.state.LIF`` whose membrane time constants, one per neuron, are trainable.

    The parameter is ``log_tau = log(tau / ms)`` (a ``brainstate.ParamState`` of shape ``[n]``), so any
    gradient step leaves ``tau`` positive; ``tau`` reads ``exp(log_tau) * ms``. Everything else is
    ``LIF``'s own update, which reads ``self.tau``.
    """

    @property
    def tau(self):
        return u.math.exp(self.log_tau.value) * u.ms

    @tau.setter
    def tau(self, value):  # LIF.__init__ assigns the initial time constant(s) here
        log_tau = jnp.log(jnp.broadcast_to(u.get_magnitude(value.to(u.ms)), self.varshape))
        self.log_tau = brainstate.ParamState(log_tau.astype(brainstate.environ.dftype()))


class _FlatNormalDraws:
    """A brainstate generator's ``normal`` drawn as one flat vector and reshaped: the same numbers as a
    draw of the full shape (JAX's threefry counts through the elements in order), but XLA compiles
    the 1-D draw of a weight matrix 2-3x faster, which every new network shape would otherwise pay."""

    def __init__(self, rng):
        self._rng = rng

    def normal(self, loc, scale, size):
        shape = tuple(size)
        return self._rng.normal(loc, scale, (math.prod(shape),)).reshape(shape)


class _KaimingNormal(braintools.init.KaimingNormal):
    """``braintools.init.KaimingNormal`` with its draw made by :class:`_FlatNormalDraws` (same values)."""

    def __call__(self, size, **kwargs):
        return super().__call__(size, rng=_FlatNormalDraws(kwargs.get("rng", brainstate.random)))


def _online_linear() -> type:
    """``braintrace.nn.Linear`` (imported only when a network asks for it: see ``SNN(online=True)``)."""
    import braintrace

    return braintrace.nn.Linear


class SNN(brainstate.nn.Module):
    """A one-hidden-layer spiking classifier trained with surrogate gradients.

    Parameters
    ----------
    n_inputs, n_hidden, n_outputs
        Layer sizes (positive integers). Defaults: 100 inputs, 4 LIF neurons, 2 classes.
    tau_syn
        Time constant of the exponential synapse feeding the LIF layer (time; default 10 ms).
    tau_mem
        Membrane time constant of the LIF neurons (time; default 20 ms).
    tau_out
        Time constant of the exponential readout (time; default 10 ms).
    v_threshold
        Firing threshold of the LIF neurons, above a rest and reset potential of 0 mV
        (voltage; default 1 mV).
    surrogate
        Spike function with a surrogate derivative (default ``braintools.surrogate.ReluGrad()``).
        Its forward pass is the Heaviside step; only the backward pass differs.
    input_scale
        Variance multiplier of the Kaiming-normal input weights (dimensionless): they are drawn with
        mean 0 and variance ``input_scale / n_inputs`` (mA^2), so the standard deviation grows with the
        square root of the scale. He initialisation is 2; the default is
        :func:`default_input_scale`, about 4.42 at dt = 1 ms.
    recurrent
        If true, the hidden spikes of the previous step are fed back into the hidden layer through
        trainable weights ``[n_hidden, n_hidden]`` (mA, no bias), added to the input current before
        the synapse. Default false: a feed-forward network.
    train_tau_mem
        If true, every hidden neuron's membrane time constant is a trainable parameter, starting at
        ``tau_mem`` and stored as ``log(tau / ms)`` so that it stays positive. Default false.
    online
        If true, the Linear layers are ``braintrace.nn.Linear``: the same weights and the same products,
        routed through braintrace's ``matmul`` so that ``braintrace.compile`` finds them and can train
        them online with eligibility traces (:class:`helpers.OnlineTrainer`, notebooks 14 and 16). BPTT
        gives the same losses, bit for bit. Default false.

    Notes
    -----
    The biases are created as strongly typed zeros of brainstate's default float type (``float32``,
    or ``float64`` with ``jax_enable_x64``). The original page used
    ``ZeroInit``, whose weakly typed zeros become strongly typed after the first optimiser update,
    so its jitted training step compiled twice. The numbers are identical either way.

    The constructor's arguments are kept once, in :attr:`init_kwargs`; :attr:`config` describes the
    same settings in plain numbers for checkpoints.
    """

    # compiled predictors (see predict) are a cache, not part of the network's graph of states
    graph_invisible_attrs = ("_predictors",)

    def __init__(
        self,
        n_inputs: int = 100,
        n_hidden: int = 4,
        n_outputs: int = 2,
        *,
        tau_syn: u.Quantity = 10.0 * u.ms,
        tau_mem: u.Quantity = 20.0 * u.ms,
        tau_out: u.Quantity = 10.0 * u.ms,
        v_threshold: u.Quantity = 1.0 * u.mV,
        surrogate: Callable | None = None,
        input_scale: float | None = None,
        recurrent: bool = False,
        train_tau_mem: bool = False,
        online: bool = False,
    ):
        super().__init__()
        self.online = check_bool("online", online)
        self.recurrent = check_bool("recurrent", recurrent)
        self.train_tau_mem = check_bool("train_tau_mem", train_tau_mem)
        self.n_inputs = check_positive_int("n_inputs", n_inputs)
        self.n_hidden = check_positive_int("n_hidden", n_hidden)
        self.n_outputs = check_positive_int("n_outputs", n_outputs)
        for name, value in (("tau_syn", tau_syn), ("tau_mem", tau_mem), ("tau_out", tau_out)):
            check_positive_quantity(name, value, u.ms)
        check_positive_quantity("v_threshold", v_threshold, u.mV)
        if surrogate is not None:
            check_callable("surrogate", surrogate, "a function or a braintools.surrogate.Surrogate (or None)")
        if input_scale is None:
            input_scale = default_input_scale()  # needs dt: a clear error if it is not set
        else:
            input_scale = check_positive_number("input_scale", input_scale)  # numpy scalars as floats
        self.v_threshold = v_threshold
        #: the constructor's arguments (``input_scale`` resolved), to build an identical network
        #: with ``SNN(**net.init_kwargs)`` (see :meth:`helpers.Trainer.reinitialize`)
        self.init_kwargs: dict[str, Any] = dict(
            n_inputs=self.n_inputs, n_hidden=self.n_hidden, n_outputs=self.n_outputs, tau_syn=tau_syn,
            tau_mem=tau_mem, tau_out=tau_out, v_threshold=v_threshold, surrogate=surrogate,
            input_scale=input_scale, recurrent=recurrent, train_tau_mem=train_tau_mem, online=online,
        )  # fmt: skip
        self._predictors: dict[str, Callable] = {}  # readout method -> compiled predictor (see predict)
        spike_fn = braintools.surrogate.ReluGrad() if surrogate is None else surrogate

        float_type = brainstate.environ.dftype()
        zero_bias_mA = braintools.init.Constant(jnp.zeros((), float_type) * u.mA)
        zero_bias = braintools.init.Constant(jnp.zeros((), float_type))
        linear = _online_linear() if online else brainstate.nn.Linear
        # input spikes -> synaptic current (mA)
        self.input_layer = linear(
            n_inputs,
            n_hidden,
            w_init=_KaimingNormal(scale=input_scale, unit=u.mA),
            b_init=zero_bias_mA,
        )
        self.synapse = brainpy.state.Expon(
            n_hidden, tau=tau_syn, g_initializer=braintools.init.Constant(0.0 * u.mA)
        )
        # synaptic current -> membrane potential (mV) -> spikes
        self.neurons = (TrainableTauLIF if train_tau_mem else brainpy.state.LIF)(
            n_hidden,
            tau=tau_mem,
            V_rest=0.0 * u.mV,
            V_reset=0.0 * u.mV,
            V_th=v_threshold,
            spk_fun=spike_fn,
        )
        if recurrent:  # last step's hidden spikes -> current (mA), added to the input current
            self.recurrent_layer = linear(n_hidden, n_hidden, w_init=_KaimingNormal(unit=u.mA), b_init=None)
        # spikes -> filtered readout (dimensionless)
        self.readout_layer = linear(n_hidden, n_outputs, w_init=_KaimingNormal(), b_init=zero_bias)
        self.readout = brainpy.state.Expon(
            n_outputs, tau=tau_out, g_initializer=braintools.init.Constant(0.0)
        )
        if online:
            # concrete states from the start (for one example; fresh_state resets them to a batch's
            # shape in place). A state first created inside a compiled program holds a value that dies
            # with the trace; this network resets its states in place, and one reset after such a birth
            # ran silent (no hidden spike; every prediction the same) while training went on correctly:
            # the cause of a trained network scoring at chance (tests/test_online.py).
            brainstate.nn.init_all_states(self, batch_size=1)

    @property
    def config(self) -> dict[str, int | float | str]:
        """The architecture in plain numbers (times in ms, voltages in mV), derived from
        :attr:`init_kwargs`: stored in checkpoints and compared on load."""
        kwargs = self.init_kwargs
        spike_fn = self.neurons.spk_fun
        return {
            "n_inputs": self.n_inputs,
            "n_hidden": self.n_hidden,
            "n_outputs": self.n_outputs,
            "tau_syn_ms": float(kwargs["tau_syn"].to_decimal(u.ms)),
            "tau_mem_ms": float(kwargs["tau_mem"].to_decimal(u.ms)),
            "tau_out_ms": float(kwargs["tau_out"].to_decimal(u.ms)),
            "v_threshold_mV": float(kwargs["v_threshold"].to_decimal(u.mV)),
            "input_scale": float(kwargs["input_scale"]),
            "surrogate": getattr(spike_fn, "__name__", repr(spike_fn)),
        } | {  # the options only when set, so that a plain network's configuration is what it always was
            name: True for name in ("recurrent", "train_tau_mem") if kwargs.get(name)
        }

    def update(self, spikes_t: SpikeInput) -> jax.Array:
        """Advance the network by one step ``dt``; return the readout ``[B, n_outputs]``.

        ``spikes_t`` is one step of dense spikes ``[B, n_inputs]`` or of :class:`~helpers.SpikeEvents`.
        """
        if isinstance(spikes_t, SpikeEvents):  # event-driven: add the weight rows of the inputs that fired
            params = self.input_layer.weight.value
            input_current = event_input(spikes_t, params["weight"], params["bias"])
        else:
            input_current = self.input_layer(spikes_t)
        if self.recurrent:  # the spikes of the previous step (none on a fresh state, where V = 0)
            input_current = input_current + self.recurrent_layer(self.neurons.get_spike())
        current = self.synapse(input_current)
        hidden_spikes = self.neurons(current)
        return self.readout(self.readout_layer(hidden_spikes))

    def fresh_state(self, batch_size: int) -> None:
        """Put the network in its initial state (every potential and current 0) for ``batch_size``
        examples: ``brainstate.nn.init_all_states``, which makes new state objects. An ``online``
        network resets the values of the states it has held since it was built instead
        (``reset_all_states``), because a compiled braintrace learner holds on to those objects."""
        if self.online:  # its states exist from the start (see __init__)
            brainstate.nn.reset_all_states(self, batch_size=batch_size)
        else:
            brainstate.nn.init_all_states(self, batch_size=batch_size)

    def simulate(self, spikes: SpikeInput, *, checkpoint_base: int | None = None) -> jax.Array:
        """Run the network from a fresh state over ``spikes [T, B, n_inputs]``.

        Returns the readout at every step, ``[T, B, n_outputs]``. Works inside ``jit`` and ``grad``.
        ``spikes`` may also be :class:`~helpers.SpikeEvents` (see :func:`~helpers.spike_events`): the
        same numbers, computed event by event instead of as a dense matrix product.
        With ``checkpoint_base``, the loop over time is ``brainstate.transform.checkpointed_for_loop``:
        backpropagation stores the states only at checkpoints (nested blocks of ``checkpoint_base``
        steps) and recomputes the rest, trading time for memory. The results agree to rounding.

        The input is checked where it enters (:meth:`check_input`): here when called with concrete
        arrays, as from a notebook; inside a compiled program (a trainer's step, whose
        ``prepare_batch`` has checked the batch) it is not checked again.
        """
        if _from_outside(spikes):
            self.check_input(spikes)
        self.fresh_state(spikes.shape[1])
        if checkpoint_base is None:
            return brainstate.transform.for_loop(self.update, spikes)
        return brainstate.transform.checkpointed_for_loop(self.update, spikes, base=checkpoint_base)

    #: what :meth:`record` can keep of every step
    RECORDED = ("current", "voltage", "spikes", "output")

    def record(self, spikes: SpikeInput, keep: tuple[str, ...] = RECORDED) -> dict[str, jax.Array]:
        """Run like :meth:`simulate`, recording internal variables over time.

        Returns a dict of arrays ``[T, B, ...]``, the variables named in ``keep`` of: ``current``
        (synaptic current, mA), ``voltage`` (membrane potential after the step, mV), ``spikes`` (hidden
        spikes, 0/1) and ``output`` (the readout). Like :meth:`simulate`, it checks concrete input
        only (not inside a compiled program).
        """
        if _from_outside(spikes):
            self.check_input(spikes)
        unknown = [name for name in keep if name not in self.RECORDED]
        if unknown:
            raise ValueError(f"keep must name some of {list(self.RECORDED)}, got {unknown}")
        self.fresh_state(spikes.shape[1])

        def step(spikes_t):
            values = self._recordable(self.update(spikes_t))
            return tuple(values[name]() for name in keep)

        return dict(zip(keep, brainstate.transform.for_loop(step, spikes), strict=True))

    def _recordable(self, output: jax.Array) -> dict[str, Callable[[], jax.Array]]:
        """What :meth:`record` can keep of the step just run, by name (see :attr:`RECORDED`)."""
        return {
            "current": lambda: self.synapse.g.value,
            "voltage": lambda: self.neurons.V.value,
            "spikes": self.neurons.get_spike,
            "output": lambda: output,
        }

    def predictor(self, readout_method: str = "mean") -> Callable:
        """The compiled forward pass ``spikes -> predicted class int [B]`` for ``readout_method``, made
        once per method and kept on this network (freed with it). It does not check its input: a
        trainer calls it on data its ``prepare_batch`` has checked; :meth:`predict` checks first."""
        if readout_method not in self._predictors:
            self._predictors[readout_method] = brainstate.transform.jit(
                lambda data: u.math.argmax(readout(self.simulate(data), readout_method), axis=1)
            )
        return self._predictors[readout_method]

    def predict(self, spikes: SpikeInput, readout_method: str = "mean") -> np.ndarray:
        """The predicted class of every example, ``int [B]``: the largest logit after reading the
        readout out over time with ``readout_method`` (see :data:`helpers.READOUTS`).

        Checks the input, then runs :meth:`predictor` (compiled once per readout method and input
        shape). :func:`helpers.accuracy` and the ``predict`` and ``accuracy`` of a
        :class:`helpers.Trainer` run the same compiled pass.
        """
        check_one_of("readout_method", readout_method, READOUTS)
        self.check_input(spikes)
        return np.asarray(self.predictor(readout_method)(spikes))

    def check_input(self, spikes: SpikeInput) -> None:
        """Raise a clear error unless ``spikes`` fit this network: ``[T, B, n_inputs]`` 0/1 spikes, or
        :class:`~helpers.SpikeEvents` made from such spikes; and unless the time step dt is set."""
        get_dt()  # the dynamics read dt: say how to set it rather than brainstate's KeyError
        if isinstance(spikes, SpikeEvents):
            if spikes.n_inputs != self.n_inputs:
                raise ValueError(
                    f"the events come from spikes with {spikes.n_inputs} input channels but the network "
                    f"expects n_inputs={self.n_inputs}"
                )
        else:
            check_spikes(spikes, self.n_inputs)


def _from_outside(spikes: SpikeInput) -> bool:
    """Whether ``spikes`` are concrete arrays (data entering from outside, to be checked) rather than
    values traced inside a compiled program (already checked where the program's input entered)."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(spikes))


# -- additions for notebooks 3 and 5: a reset that passes no gradient, a backward pass chosen at run time


class DetachedResetLIF(brainpy.state.LIF):
    """``brainpy.state.LIF`` whose soft reset passes no gradient (SpyTorch's ``rst = out.detach()``).

    Only the detach is SpyTorch's: its reset itself is multiplicative, to zero,
    ``(beta*mem + syn)*(1.0 - rst)``, whereas this neuron keeps brainpy's soft (subtractive) reset.

    brainpy's LIF subtracts ``(V_th - V_reset) * s`` after a spike ``s``, and ``grad`` differentiates that
    term too: through the surrogate, a spike tells the gradient that firing lowers the next potential.
    Here the reset uses ``stop_gradient(s)``: the same forward pass, bit for bit, but the gradient sees
    the reset as a constant. The update is brainpy 0.1.0's ``LIF.update`` with that one change.

    The cut is itself a switch: :attr:`detached` is a ``brainstate.State`` (1.0 cuts the reset's
    gradient, 0.0 passes it as brainpy's ``LIF`` does), read by a compiled step as an input, so one
    compiled program trains both resets (notebook 5). The reset uses ``s - detached * (s -
    stop_gradient(s))``: in the forward pass that is ``s`` exactly, in the backward pass ``1 - detached``
    times the spike's gradient.
    """

    def __init__(
        self, in_size: int, *, tau: Any, V_rest: Any, V_reset: Any, V_th: Any, spk_fun: Callable
    ) -> None:
        """The settings of ``brainpy.state.LIF`` that :func:`detach_reset` carries over (times and
        voltages with units; ``spk_fun`` the spike function with its surrogate)."""
        super().__init__(in_size, tau=tau, V_rest=V_rest, V_reset=V_reset, V_th=V_th, spk_fun=spk_fun)
        #: 1.0: the reset passes no gradient; 0.0: it passes brainpy's soft reset's gradient
        self.detached = brainstate.State(jnp.ones((), brainstate.environ.dftype()))

    def update(self, x=0.0 * u.mA):
        last_v = self.V.value
        spike = self.get_spike(last_v)
        last_spike = spike - self.detached.value * (spike - jax.lax.stop_gradient(spike))  # the only change
        v = last_v - (self.V_th - self.V_reset) * last_spike
        v = brainstate.nn.exp_euler_step(
            lambda v: (-v + self.V_rest + self.R * self.sum_current_inputs(x, v)) / self.tau, v
        )
        self.V.value = self.sum_delta_inputs(v)
        return self.get_spike(self.V.value)


def detach_reset(net: SNN) -> SNN:
    """Replace ``net``'s LIF layer by a :class:`DetachedResetLIF` with the same settings; return ``net``.

    The forward pass is unchanged; only the gradient through the reset is cut. The weights are kept
    (the LIF layer has none), so a :class:`~helpers.Trainer` made afterwards trains the detached network.
    """
    if not isinstance(net, SNN):
        raise TypeError(f"net must be a helpers.SNN, got {type(net).__name__}")
    if isinstance(net.neurons, TrainableTauLIF):
        raise ValueError("detach_reset needs a network with fixed time constants, got train_tau_mem=True")
    old = net.neurons
    net.neurons = DetachedResetLIF(
        net.n_hidden, tau=old.tau, V_rest=old.V_rest, V_reset=old.V_reset, V_th=old.V_th, spk_fun=old.spk_fun
    )
    return net


class SwitchableSurrogate:
    """A spike function whose surrogate derivative is chosen at run time, without recompiling.

    The forward pass is the Heaviside step. The backward pass is ``sum_k w[k] * surrogates[k]'(x)``
    with the weights ``w`` held in a ``brainstate.State`` (:attr:`weights`): :meth:`select` one
    surrogate by index (a one-hot ``w``), or ``None`` for the true derivative, zero. A jitted training
    step reads the state as an input, so one compiled step trains with every choice, and under
    ``vmap`` every run can have its own. With a one-hot ``w`` the gradient is that of the chosen
    surrogate (the other terms add exact zeros).

    Cost: with at most one nonzero weight, the backward pass evaluates only the chosen surrogate
    (a ``jax.lax.switch``), so a switch over many surrogates costs what one costs. Under ``vmap`` with
    weights that differ between runs, the switch becomes a select and every surrogate is evaluated at
    every neuron-step; to compare surrogates cheaply, give all runs of one call the same weights
    (:meth:`select` before :func:`helpers.fit_runs`) and make one call per surrogate: they share one
    compiled program (:func:`helpers.fit_settings` makes those calls, a few at a time from threads).
    """

    def __init__(self, surrogates):
        self.surrogates = tuple(surrogates)
        if not self.surrogates:
            raise ValueError("give at least one surrogate")
        for fn in self.surrogates:
            if not callable(getattr(fn, "surrogate_grad", None)):
                raise TypeError(f"{fn!r} has no surrogate_grad(x): use braintools.surrogate objects")
        self.__name__ = "SwitchableSurrogate"
        self.weights = brainstate.State(jnp.zeros(len(self.surrogates), brainstate.environ.dftype()))
        surrogates = self.surrogates

        @jax.custom_vjp
        def spike(x, w):
            return jnp.asarray(x >= 0, dtype=x.dtype)

        def forward(x, w):
            return spike(x, w), (x, w)

        branches = [lambda x, fn=fn: fn.surrogate_grad(x) for fn in surrogates]

        def weighted_sum(x, w):
            return sum(w[k] * fn.surrogate_grad(x) for k, fn in enumerate(surrogates))

        def chosen_only(x, w):  # at most one nonzero weight: evaluate that surrogate alone
            index = jnp.argmax(jnp.abs(w))
            return w[index] * jax.lax.switch(index, branches, x)

        def backward(residuals, g):
            x, w = residuals
            derivative = jax.lax.cond(jnp.count_nonzero(w) <= 1, chosen_only, weighted_sum, x, w)
            return g * derivative, jnp.zeros_like(w)

        spike.defvjp(forward, backward)
        self._spike = spike

    def one_hot(self, index: int | None):
        """The weights that select surrogate ``index`` (``None``: none, the true derivative)."""
        w = np.zeros(len(self.surrogates))
        if index is not None:
            w[index] = 1.0
        return jnp.asarray(w, self.weights.value.dtype)

    def select(self, index: int | None) -> None:
        """Use surrogate ``index`` in the backward pass from now on (``None``: the true derivative, 0)."""
        self.weights.value = self.one_hot(index)

    def __call__(self, x):
        return self._spike(u.maybe_decimal(x), self.weights.value)
