"""Deeper spiking classifiers: a list of hidden LIF or ALIF layers, each optionally recurrent, and a
membrane readout or a spiking output layer (issue 19).

Data flow for one time step (shapes for a batch of ``B`` examples, hidden sizes ``[n_1, ..., n_L]``)::

    spikes_t [B, n_inputs] --Linear (mA)--> Expon (mA) --> LIF|ALIF (spikes [B, n_1]) --> ...
        --Linear (mA)--> Expon (mA) --> LIF|ALIF (spikes [B, n_L])
        --Linear--> Expon readout [B, n_outputs]             (output="membrane", as helpers.SNN)
        --Linear (mA)--> Expon (mA) --> LIF (spikes [B, n_outputs])   (output="spikes")

Each hidden layer is :class:`helpers.SNN`'s hidden layer: a linear projection in mA, an exponential
synapse and the neurons; with ``recurrent`` its own spikes of the previous step are fed back into it.
ALIF is ``brainpy.state.ALIF`` (brainpy_state 0.1.0 ships it): a LIF neuron whose threshold rises by
``adaptation`` (mV) with every spike and relaxes back with ``tau_adapt``, so a neuron that has fired a
lot fires less (spike-frequency adaptation), and its adaptation variable is a memory that outlasts the
membrane's ``tau_mem``. Times are ``brainunit`` quantities; ``dt`` comes from ``brainstate.environ``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import brainpy
import brainstate
import braintools
import brainunit as u
import jax
import jax.numpy as jnp

from helpers.events import SpikeEvents, SpikeInput, event_input
from helpers.model import SNN, _KaimingNormal, default_input_scale
from helpers.validation import (
    check_callable,
    check_one_of,
    check_positive_int,
    check_positive_number,
    check_positive_quantity,
)

__all__ = ["DeepSNN", "HiddenLayer", "NEURONS", "OUTPUTS", "parse_layers"]

#: the neuron models of a hidden layer
NEURONS = ("lif", "alif")
#: what the last layer gives: a filtered membrane readout (read over time like helpers.SNN's), or spikes
OUTPUTS = ("membrane", "spikes")


def parse_layers(text: str) -> tuple[int, ...]:
    """Hidden sizes from a comma-separated list (``"128,128"`` -> ``(128, 128)``); a clear error for
    anything else (an empty item, a number that is not a positive integer)."""
    items = str(text).split(",")
    try:
        sizes = tuple(int(item) for item in items)
    except ValueError:
        sizes = ()
    if not sizes or any(n <= 0 for n in sizes):
        raise ValueError(f"expected positive integers separated by commas (e.g. 128,128), got {text!r}")
    return sizes


class HiddenLayer(brainstate.nn.Module):
    """One spiking layer: ``Linear`` (mA) -> ``Expon`` synapse (mA) -> ``LIF`` or ``ALIF`` -> spikes.

    ``input_scale`` is the variance multiplier of its Kaiming-normal weights (see
    :func:`helpers.default_input_scale`); with ``recurrent`` its spikes of the previous step enter
    through weights ``[n, n]`` (mA, no bias, He's scale), added to the input current as in
    :class:`helpers.SNN`. It runs inside the network's loop and does not check its input.
    """

    def __init__(
        self,
        n_in: int,
        n: int,
        *,
        neuron: str,
        recurrent: bool,
        tau_syn: u.Quantity,
        tau_mem: u.Quantity,
        tau_adapt: u.Quantity,
        adaptation: u.Quantity,
        v_threshold: u.Quantity,
        spike_fn: Callable,
        input_scale: float,
    ):
        super().__init__()
        zero_bias = braintools.init.Constant(jnp.zeros((), brainstate.environ.dftype()) * u.mA)
        self.input_layer = brainstate.nn.Linear(
            n_in, n, w_init=_KaimingNormal(scale=input_scale, unit=u.mA), b_init=zero_bias
        )
        self.synapse = brainpy.state.Expon(n, tau=tau_syn, g_initializer=braintools.init.Constant(0.0 * u.mA))
        common = dict(tau=tau_mem, V_rest=0.0 * u.mV, V_reset=0.0 * u.mV, V_th=v_threshold, spk_fun=spike_fn)
        if neuron == "alif":
            self.neurons = brainpy.state.ALIF(n, tau_a=tau_adapt, beta=adaptation, **common)
        else:
            self.neurons = brainpy.state.LIF(n, **common)
        self.recurrent = recurrent
        if recurrent:
            self.recurrent_layer = brainstate.nn.Linear(n, n, w_init=_KaimingNormal(unit=u.mA), b_init=None)

    def update(self, x: SpikeInput) -> jax.Array:
        """One step: input spikes ``[B, n_in]`` (or :class:`~helpers.SpikeEvents`) -> spikes ``[B, n]``."""
        if isinstance(x, SpikeEvents):  # event-driven: add the weight rows of the inputs that fired
            params = self.input_layer.weight.value
            current = event_input(x, params["weight"], params["bias"])
        else:
            current = self.input_layer(x)
        if self.recurrent:  # the spikes of the previous step (none on a fresh state)
            current = current + self.recurrent_layer(self.neurons.get_spike())
        return self.neurons(self.synapse(current))


class DeepSNN(SNN):
    """A spiking classifier with any number of hidden LIF or ALIF layers (introduced for issue 19).

    Parameters
    ----------
    n_inputs, n_outputs
        Input channels and classes (positive integers).
    hidden
        The hidden layers' sizes, first to last (a sequence of positive integers; default ``(128, 128)``).
    neuron
        ``"lif"`` (default) or ``"alif"`` for every hidden layer (see :data:`NEURONS`).
    recurrent
        ``False`` (default), ``True`` (every hidden layer), or one bool per hidden layer.
    output
        ``"membrane"`` (default): a filtered, non-spiking readout ``[T, B, n_outputs]`` read over time
        like :class:`helpers.SNN`'s (mean, max or last); ``"spikes"``: a LIF output layer whose spikes
        ``[T, B, n_outputs]`` are the outputs, read as their count (train it with a loss of
        :data:`helpers.readout.SPIKE_LOSSES`).
    tau_syn, tau_mem, tau_out, v_threshold, surrogate
        As in :class:`helpers.SNN` (every layer shares them; ``tau_out`` is the membrane readout's).
    tau_adapt, adaptation
        ALIF only: the adaptation's time constant (time; default 100 ms) and the threshold's rise per
        spike (voltage; default 0.1 mV, brainpy's).
    input_scale
        Variance multiplier of the first layer's Kaiming-normal weights (by default
        that of :func:`helpers.default_input_scale`, as :class:`helpers.SNN`).
    hidden_scale
        The same for every later layer's weights, spiking output included (default: ``input_scale``).

    Notes
    -----
    To the training core (:class:`helpers.TrainingCore`) a ``DeepSNN`` is an :class:`helpers.SNN`: it
    keeps SNN's running, predicting and checking (``simulate``, ``predict``, ``check_input``,
    ``fresh_state``, :meth:`record`) and replaces the layers, :meth:`update` and :attr:`config`;
    :meth:`record` keeps every hidden layer side by side along the last axis, first layer first.
    ``n_hidden`` is the number of hidden neurons over all layers. It is not an ``online`` network, and
    notebook 3's ``detach_reset`` and the NIR export (one hidden layer) do not take it.
    """

    def __init__(
        self,
        n_inputs: int = 64,
        hidden: Sequence[int] = (128, 128),
        n_outputs: int = 10,
        *,
        neuron: str = "lif",
        recurrent: bool | Sequence[bool] = False,
        output: str = "membrane",
        tau_syn: u.Quantity = 10.0 * u.ms,
        tau_mem: u.Quantity = 20.0 * u.ms,
        tau_out: u.Quantity = 10.0 * u.ms,
        tau_adapt: u.Quantity = 100.0 * u.ms,
        adaptation: u.Quantity = 0.1 * u.mV,
        v_threshold: u.Quantity = 1.0 * u.mV,
        surrogate: Callable | None = None,
        input_scale: float | None = None,
        hidden_scale: float | None = None,
    ):
        brainstate.nn.Module.__init__(self)  # SNN's layers are replaced, not built
        self.n_inputs = check_positive_int("n_inputs", n_inputs)
        self.n_outputs = check_positive_int("n_outputs", n_outputs)
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence) or not hidden:
            raise ValueError(f"hidden must be a non-empty sequence of layer sizes, got {hidden!r}")
        self.hidden = tuple(check_positive_int("hidden layer size", n) for n in hidden)
        self.n_hidden = sum(self.hidden)
        self.neuron = check_one_of("neuron", neuron, NEURONS)
        self.output = check_one_of("output", output, OUTPUTS)
        self.spiking_output = output == "spikes"
        if isinstance(recurrent, bool):
            flags = (recurrent,) * len(self.hidden)
        elif (
            isinstance(recurrent, Sequence)
            and len(recurrent) == len(self.hidden)
            and all(isinstance(r, bool) for r in recurrent)
        ):
            flags = tuple(recurrent)
        else:
            raise ValueError(
                f"recurrent must be a bool or one bool per hidden layer ({len(self.hidden)}), "
                f"got {recurrent!r}"
            )
        self.recurrent_layers = flags
        self.recurrent = any(flags)
        self.online = False
        self.train_tau_mem = False
        for name, value in (("tau_syn", tau_syn), ("tau_mem", tau_mem), ("tau_out", tau_out),
                            ("tau_adapt", tau_adapt)):  # fmt: skip
            check_positive_quantity(name, value, u.ms)
        check_positive_quantity("v_threshold", v_threshold, u.mV)
        check_positive_quantity("adaptation", adaptation, u.mV)
        if surrogate is not None:
            check_callable("surrogate", surrogate, "a function or a braintools.surrogate.Surrogate (or None)")
        input_scale = (
            default_input_scale()
            if input_scale is None
            else check_positive_number("input_scale", input_scale)
        )
        hidden_scale = (
            input_scale if hidden_scale is None else check_positive_number("hidden_scale", hidden_scale)
        )
        self.v_threshold = v_threshold
        #: the constructor's arguments (scales resolved): ``DeepSNN(**net.init_kwargs)`` is the same network
        self.init_kwargs: dict[str, Any] = dict(
            n_inputs=self.n_inputs, hidden=self.hidden, n_outputs=self.n_outputs, neuron=neuron,
            recurrent=flags, output=output, tau_syn=tau_syn, tau_mem=tau_mem, tau_out=tau_out,
            tau_adapt=tau_adapt, adaptation=adaptation, v_threshold=v_threshold, surrogate=surrogate,
            input_scale=input_scale, hidden_scale=hidden_scale,
        )  # fmt: skip
        self._predictors: dict[str, Callable] = {}
        self.spike_fn = braintools.surrogate.ReluGrad() if surrogate is None else surrogate
        layer = dict(tau_syn=tau_syn, tau_mem=tau_mem, tau_adapt=tau_adapt, adaptation=adaptation,
                     v_threshold=v_threshold, spike_fn=self.spike_fn)  # fmt: skip
        sizes = (self.n_inputs, *self.hidden)
        self.layers = [
            HiddenLayer(
                n_in,
                n,
                neuron=neuron,
                recurrent=rec,
                input_scale=input_scale if i == 0 else hidden_scale,
                **layer,
            )  # fmt: skip
            for i, (n_in, n, rec) in enumerate(zip(sizes[:-1], sizes[1:], flags, strict=True))
        ]
        if self.spiking_output:  # a LIF output layer: its spikes are the outputs
            self.output_layer = HiddenLayer(
                self.hidden[-1],
                self.n_outputs,
                neuron="lif",
                recurrent=False,
                input_scale=hidden_scale,
                **layer,
            )
        else:  # spikes -> filtered readout (dimensionless), as helpers.SNN
            zero_bias = braintools.init.Constant(jnp.zeros((), brainstate.environ.dftype()))
            self.readout_layer = brainstate.nn.Linear(
                self.hidden[-1], self.n_outputs, w_init=_KaimingNormal(), b_init=zero_bias
            )
            self.readout = brainpy.state.Expon(
                self.n_outputs, tau=tau_out, g_initializer=braintools.init.Constant(0.0)
            )

    @property
    def config(self) -> dict[str, int | float | str]:
        """The architecture in plain numbers and strings (times in ms, voltages in mV), derived from
        :attr:`init_kwargs`: stored in checkpoints and compared on load. ``architecture`` is ``deep``."""
        kwargs = self.init_kwargs
        config: dict[str, int | float | str] = {
            "architecture": "deep",
            "n_inputs": self.n_inputs,
            "n_hidden": self.n_hidden,
            "n_outputs": self.n_outputs,
            "hidden": ",".join(map(str, self.hidden)),
            "neuron": self.neuron,
            "recurrent": ",".join(str(int(r)) for r in self.recurrent_layers),
            "output": self.output,
            "tau_syn_ms": float(kwargs["tau_syn"].to_decimal(u.ms)),
            "tau_mem_ms": float(kwargs["tau_mem"].to_decimal(u.ms)),
            "tau_out_ms": float(kwargs["tau_out"].to_decimal(u.ms)),
            "v_threshold_mV": float(kwargs["v_threshold"].to_decimal(u.mV)),
            "input_scale": float(kwargs["input_scale"]),
            "hidden_scale": float(kwargs["hidden_scale"]),
            "surrogate": getattr(self.spike_fn, "__name__", repr(self.spike_fn)),
        }
        if self.neuron == "alif":
            config["tau_adapt_ms"] = float(kwargs["tau_adapt"].to_decimal(u.ms))
            config["adaptation_mV"] = float(kwargs["adaptation"].to_decimal(u.mV))
        return config

    def update(self, spikes_t: SpikeInput) -> jax.Array:
        """Advance by one step ``dt``; return the outputs ``[B, n_outputs]`` (readout or spikes)."""
        x = spikes_t
        for layer in self.layers:
            x = layer(x)
        if self.spiking_output:
            return self.output_layer(x)
        return self.readout(self.readout_layer(x))

    def _recordable(self, output: jax.Array) -> dict[str, Callable[[], jax.Array]]:
        """What :meth:`record` keeps of a step: ``current`` (mA), ``voltage`` (mV) and ``spikes`` (0/1)
        of every hidden neuron, the layers side by side along the last axis (first layer first,
        ``n_hidden`` in all), and ``output`` (readout or output spikes)."""

        def joined(values):
            return values[0] if len(values) == 1 else u.math.concatenate(values, axis=-1)

        return {
            "current": lambda: joined([layer.synapse.g.value for layer in self.layers]),
            "voltage": lambda: joined([layer.neurons.V.value for layer in self.layers]),
            "spikes": lambda: joined([layer.neurons.get_spike() for layer in self.layers]),
            "output": lambda: output,
        }
