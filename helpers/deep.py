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

An optional convolutional front end (``conv``, :class:`ConvLayer`) comes before the first hidden
layer, its spikes flattened into it::

    spikes_t [B, H*W*C_in] --reshape [B, H, W, C_in]--> Conv2d (mA) --> Expon --> LIF|ALIF
        (spikes [B, H, W, C]) --max pool p x p--> [B, (H/p)*(W/p)*C] --> hidden layers
                                                                  (image_shape=(H, W): per step)
    spikes_t [B, C_in] --delay line [B, K, C_in]--> Conv1d (mA) --> Expon --> LIF|ALIF
        (spikes [B, C]) --> hidden layers                        (no image_shape: over time, causal)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import brainpy
import brainstate
import braintools
import brainunit as u
import jax
import jax.numpy as jnp

from helpers.events import SpikeEvents, SpikeInput, event_input
from helpers.model import SNN, _FlatNormalDraws, _KaimingNormal, default_input_scale
from helpers.validation import (
    check_callable,
    check_one_of,
    check_positive_int,
    check_positive_number,
    check_positive_quantity,
)

__all__ = [
    "ConvLayer",
    "DeepSNN",
    "HiddenLayer",
    "NEURONS",
    "OUTPUTS",
    "conv_neurons",
    "parse_conv",
    "parse_layers",
]

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


def parse_conv(text: str) -> tuple[tuple[int, int, int], ...]:
    """Convolution layers from ``CHANNELS:KERNEL[:POOL]`` items separated by commas (``"8:3:2,16:3"`` ->
    ``((8, 3, 2), (16, 3, 1))``: 8 channels of 3x3 kernels pooled 2x2, then 16 channels of 3x3 kernels,
    no pooling); a clear error for anything else (not two or three positive integers per item)."""
    layers: list[tuple[int, int, int]] = []
    for item in str(text).split(","):
        parts = item.strip().split(":")
        try:
            numbers = tuple(int(x) for x in parts)
        except ValueError:
            numbers = ()
        if len(numbers) not in (2, 3) or any(n <= 0 for n in numbers):
            raise ValueError(
                "expected CHANNELS:KERNEL or CHANNELS:KERNEL:POOL (positive integers) separated by commas "
                f"(e.g. 8:3:2,16:3), got {text!r}"
            )
        channels, kernel, *pool = numbers
        layers.append((channels, kernel, pool[0] if pool else 1))
    return tuple(layers)


def conv_neurons(conv, image_shape: Sequence[int] | None, n_inputs: int) -> tuple[int, ...]:
    """The spiking neurons of each convolution layer of ``DeepSNN(n_inputs, ..., conv=conv,
    image_shape=image_shape)``, computed without building it: ``H * W * channels`` over an image
    (``SAME`` padding keeps ``H x W``; pooling divides them for the next layer), ``channels`` over
    time. Raises the network's ``ValueError`` for a front end it refuses."""
    layers, image = _check_conv(conv, image_shape, n_inputs)
    if image is None:
        return tuple(channels for channels, _, _ in layers)
    (height, width), sizes = image, []
    for channels, _, pool in layers:
        sizes.append(height * width * channels)
        height, width = height // pool, width // pool
    return tuple(sizes)


def _dense_step(x: SpikeInput) -> jax.Array:
    """One step's input as dense spikes ``[B, n_inputs]`` (a step of :class:`~helpers.SpikeEvents` is
    scattered into zeros; the padding slots land in a column that is dropped)."""
    if not isinstance(x, SpikeEvents):
        return jnp.asarray(x)
    dense = jnp.zeros((x.batch_size, x.n_inputs + 1), brainstate.environ.dftype())
    return dense.at[x.example, x.channel].set(1.0)[:, : x.n_inputs]


class ConvLayer(brainstate.nn.Module):
    """One spiking convolutional layer: ``Conv`` (mA) -> ``Expon`` synapse (mA) -> ``LIF`` or ``ALIF``
    -> optional max pooling -> spikes, flattened to ``[B, n_out]`` for the next layer.

    Parameters
    ----------
    in_shape
        The layout of one step's input without the batch axis: ``(H, W, C_in)`` for a convolution over
        an image (``over="image"``), ``(C_in,)`` for one over time (``over="time"``). The input itself
        arrives flat, ``[B, prod(in_shape)]`` (row-major, channels last), as spikes or currents of the
        layer before.
    channels
        Output channels ``C`` (feature maps), each with its own kernel and bias.
    kernel
        The kernel's width: ``kernel x kernel`` pixels over an image, ``kernel`` steps over time.
    pool
        Images only: the side of the max-pooling blocks of the spikes (1: none). ``H`` and ``W`` must be
        multiples of it.
    over
        ``"image"``: a 2-D convolution (``brainstate.nn.Conv2d``, stride 1, zero padding ``SAME``: the
        output keeps ``H x W``) applied at every step to that step's input reshaped to the image;
        ``H * W * C`` neurons, one per position and channel. ``"time"``: a causal 1-D convolution over
        the steps (``brainstate.nn.Conv1d``); ``C`` neurons.
    neuron, tau_syn, tau_mem, tau_adapt, adaptation, v_threshold, spike_fn
        As in :class:`HiddenLayer`.
    input_scale
        Variance multiplier of the kernel's normal weights (mA): variance ``input_scale / fan_in`` with
        ``fan_in = kernel * kernel * C_in`` (image) or ``kernel * C_in`` (time), as Kaiming's.

    Notes
    -----
    Over time, the layer holds a delay line ``window [B, kernel, C_in]``, the last ``kernel`` steps of
    its input (zeros before the first step); at every step the newest step enters it, and ``Conv1d``
    with ``VALID`` padding meets it with the kernel, giving one output position. Over a run, the
    currents are the causal convolution ``I_t = b + sum_j w[j] x[t - (kernel - 1) + j]`` of the input
    sequence: a step sees only the present and the past, as a network running step by step must.

    This is the convolution for sequences fed one position per step (MNIST-1D's level crossings: step
    ``t`` holds the 32 channels of position ``t``). There, position *is* time, and it is along
    position that MNIST-1D's digits shift and that a CNN on MNIST-1D convolves; a convolution over a
    step's 32 channels would run along the crossing levels (the amplitude), along which nothing is
    shifted. A kernel over time also gives a neuron an ordered window (which crossing came first),
    which a LIF neuron's leaky sum of its input does not keep.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        channels: int,
        kernel: int,
        pool: int = 1,
        *,
        over: str,
        neuron: str,
        tau_syn: u.Quantity,
        tau_mem: u.Quantity,
        tau_adapt: u.Quantity,
        adaptation: u.Quantity,
        v_threshold: u.Quantity,
        spike_fn: Callable,
        input_scale: float,
    ):
        super().__init__()
        self.over = check_one_of("over", over, ("image", "time"))
        self.in_shape: tuple[int, ...] = tuple(int(n) for n in in_shape)
        self.channels = check_positive_int("channels", channels)
        self.kernel = check_positive_int("kernel", kernel)
        self.pool = check_positive_int("pool", pool)
        if over == "image":
            if len(self.in_shape) != 3:
                raise ValueError(f"a convolution over an image needs in_shape (H, W, C_in), got {in_shape!r}")
            height, width, c_in = self.in_shape
            if self.kernel > min(height, width):
                raise ValueError(
                    f"kernel {self.kernel} is larger than the {height}x{width} image it convolves"
                )
            if height % self.pool or width % self.pool:
                raise ValueError(f"pool {self.pool} does not divide the {height}x{width} feature maps")
            self.shape: tuple[int, ...] = (height, width, self.channels)  # the neurons
            self.out_shape: tuple[int, ...] = (height // self.pool, width // self.pool, self.channels)
            conv: type = brainstate.nn.Conv2d
            conv_in, padding = self.in_shape, "SAME"
            kernel_shape: tuple[int, ...] = (self.kernel, self.kernel, c_in, self.channels)
        else:
            if len(self.in_shape) != 1:
                raise ValueError(f"a convolution over time needs in_shape (C_in,), got {in_shape!r}")
            if self.pool != 1:
                raise ValueError(
                    f"pool {self.pool}: a convolution over time has no pooling (each step gives one position)"
                )
            c_in = self.in_shape[0]
            self.shape = self.out_shape = (self.channels,)
            conv, conv_in, padding = brainstate.nn.Conv1d, (self.kernel, c_in), "VALID"  # type: ignore[assignment]
            kernel_shape = (self.kernel, c_in, self.channels)
        self.n_neurons = math.prod(self.shape)
        self.n_out = math.prod(self.out_shape)
        std = math.sqrt(check_positive_number("input_scale", input_scale) / math.prod(kernel_shape[:-1]))
        dtype = brainstate.environ.dftype()
        self.conv = conv(
            conv_in,
            self.channels,
            self.kernel,
            padding=padding,
            w_init=lambda shape: _FlatNormalDraws(brainstate.random).normal(0.0, std, shape).astype(dtype),
            b_init=braintools.init.Constant(jnp.zeros((), dtype)),
        )
        self.synapse = brainpy.state.Expon(
            self.shape, tau=tau_syn, g_initializer=braintools.init.Constant(0.0 * u.mA)
        )
        common = dict(tau=tau_mem, V_rest=0.0 * u.mV, V_reset=0.0 * u.mV, V_th=v_threshold, spk_fun=spike_fn)
        if neuron == "alif":
            self.neurons = brainpy.state.ALIF(self.shape, tau_a=tau_adapt, beta=adaptation, **common)
        else:
            self.neurons = brainpy.state.LIF(self.shape, **common)

    def init_state(self, batch_size: int | None = None, **kwargs) -> None:
        """Over time: an empty delay line ``window [B, kernel, C_in]`` (no input yet)."""
        if self.over == "time":
            shape = (
                (self.kernel, *self.in_shape)
                if batch_size is None
                else (batch_size, self.kernel, *self.in_shape)
            )
            self.window = brainstate.ShortTermState(jnp.zeros(shape, brainstate.environ.dftype()))

    def reset_state(self, batch_size: int | None = None, **kwargs) -> None:
        """Empty the delay line (see :meth:`init_state`)."""
        self.init_state(batch_size, **kwargs)

    def current(self, x: SpikeInput) -> u.Quantity:
        """The convolution's output for one step's input ``[B, prod(in_shape)]``: currents (mA) of shape
        ``[B, *shape]`` (the neurons' layout); over time it also advances the delay line."""
        x = _dense_step(x)
        if self.over == "image":
            return self.conv(x.reshape(x.shape[0], *self.in_shape)) * u.mA
        window = jnp.concatenate([self.window.value[:, 1:], x[:, None, :]], axis=1)
        self.window.value = window
        return self.conv(window)[:, 0, :] * u.mA

    def update(self, x: SpikeInput) -> jax.Array:
        """One step: input ``[B, prod(in_shape)]`` (or :class:`~helpers.SpikeEvents`) -> spikes
        ``[B, n_out]`` (pooled over images, flattened)."""
        spikes = self.neurons(self.synapse(self.current(x)))
        if self.pool > 1:  # a block's output spikes if any of its neurons fired
            batch, (height, width, channels), p = spikes.shape[0], self.shape, self.pool
            spikes = spikes.reshape(batch, height // p, p, width // p, p, channels).max(axis=(2, 4))
        return spikes.reshape(spikes.shape[0], self.n_out)


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
    conv
        An optional convolutional front end before the hidden layers: one ``(channels, kernel)`` or
        ``(channels, kernel, pool)`` per :class:`ConvLayer`, first to last (or their text for
        :func:`parse_conv`, ``"8:3:2"``); default none. Its spikes, flattened, feed the first hidden
        layer. The first convolution's kernels are drawn with ``input_scale``, every later layer's
        weights with ``hidden_scale``.
    image_shape
        ``(H, W)``: every step's ``n_inputs`` are an image of ``H x W`` pixels with
        ``n_inputs / (H * W)`` channels (row-major, channels last), and the convolutions are 2-D, over
        the image, at every step; ``None`` (default): they are causal 1-D convolutions over time, the
        ``n_inputs`` being their input channels (see :class:`ConvLayer` for why that suits sequences
        fed one position per step). Only with ``conv``.

    Notes
    -----
    To the training core (:class:`helpers.TrainingCore`) a ``DeepSNN`` is an :class:`helpers.SNN`: it
    keeps SNN's running, predicting and checking (``simulate``, ``predict``, ``check_input``,
    ``fresh_state``, :meth:`record`) and replaces the layers, :meth:`update` and :attr:`config`;
    :meth:`record` keeps every hidden layer side by side along the last axis, first layer first.
    ``n_hidden`` is the number of hidden neurons over all layers, the convolutional ones first
    (:attr:`layer_sizes` lists them per layer). It is not an ``online`` network, and
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
        conv: Sequence[Sequence[int]] | str | None = None,
        image_shape: Sequence[int] | None = None,
    ):
        brainstate.nn.Module.__init__(self)  # SNN's layers are replaced, not built
        self.n_inputs = check_positive_int("n_inputs", n_inputs)
        self.n_outputs = check_positive_int("n_outputs", n_outputs)
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence) or not hidden:
            raise ValueError(f"hidden must be a non-empty sequence of layer sizes, got {hidden!r}")
        self.hidden = tuple(check_positive_int("hidden layer size", n) for n in hidden)
        self.conv, self.image_shape = _check_conv(conv, image_shape, self.n_inputs)
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
            input_scale=input_scale, hidden_scale=hidden_scale, conv=self.conv, image_shape=self.image_shape,
        )  # fmt: skip
        self._predictors: dict[str, Callable] = {}
        self.spike_fn = braintools.surrogate.ReluGrad() if surrogate is None else surrogate
        layer = dict(tau_syn=tau_syn, tau_mem=tau_mem, tau_adapt=tau_adapt, adaptation=adaptation,
                     v_threshold=v_threshold, spike_fn=self.spike_fn)  # fmt: skip
        self.conv_layers = []
        if self.image_shape is not None:
            shape, over = (*self.image_shape, self.n_inputs // math.prod(self.image_shape)), "image"
        else:
            shape, over = (self.n_inputs,), "time"
        for i, (channels, kernel, pool) in enumerate(self.conv):
            scale = input_scale if i == 0 else hidden_scale
            conv_layer = ConvLayer(
                shape, channels, kernel, pool, over=over, neuron=neuron, input_scale=scale, **layer
            )
            self.conv_layers.append(conv_layer)
            shape = conv_layer.out_shape
        #: the spiking neurons of every hidden layer, the convolutional ones first
        self.layer_sizes = (*(c.n_neurons for c in self.conv_layers), *self.hidden)
        self.n_hidden = sum(self.layer_sizes)
        sizes = (math.prod(shape) if self.conv else self.n_inputs, *self.hidden)
        self.layers = [
            HiddenLayer(
                n_in,
                n,
                neuron=neuron,
                recurrent=rec,
                input_scale=input_scale if i == 0 and not self.conv else hidden_scale,
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
        if self.conv:  # only then, so that the configs of networks without it are as before
            config["conv"] = ",".join(":".join(map(str, layer)) for layer in self.conv)
            config["image_shape"] = "" if self.image_shape is None else ",".join(map(str, self.image_shape))
        if self.neuron == "alif":
            config["tau_adapt_ms"] = float(kwargs["tau_adapt"].to_decimal(u.ms))
            config["adaptation_mV"] = float(kwargs["adaptation"].to_decimal(u.mV))
        return config

    def update(self, spikes_t: SpikeInput) -> jax.Array:
        """Advance by one step ``dt``; return the outputs ``[B, n_outputs]`` (readout or spikes)."""
        x = spikes_t
        layers: tuple[Any, ...] = (*self.conv_layers, *self.layers)
        for layer in layers:
            x = layer(x)
        if self.spiking_output:
            return self.output_layer(x)
        return self.readout(self.readout_layer(x))

    def _recordable(self, output: jax.Array) -> dict[str, Callable[[], jax.Array]]:
        """What :meth:`record` keeps of a step: ``current`` (mA), ``voltage`` (mV) and ``spikes`` (0/1)
        of every hidden neuron, the layers side by side along the last axis (first layer first, the
        convolutional ones flattened, ``n_hidden`` in all), and ``output`` (readout or output spikes)."""

        layers: tuple[Any, ...] = (*self.conv_layers, *self.layers)

        def joined(values):  # each layer's neurons flattened (a convolution's are [B, *shape])
            values = [v.reshape((v.shape[0], -1)) for v in values]
            return values[0] if len(values) == 1 else u.math.concatenate(values, axis=-1)

        return {
            "current": lambda: joined([layer.synapse.g.value for layer in layers]),
            "voltage": lambda: joined([layer.neurons.V.value for layer in layers]),
            "spikes": lambda: joined([layer.neurons.get_spike() for layer in layers]),
            "output": lambda: output,
        }


def _check_conv(conv, image_shape, n_inputs: int) -> tuple[tuple[tuple[int, int, int], ...], tuple | None]:
    """:class:`DeepSNN`'s ``conv`` as ``((channels, kernel, pool), ...)`` and its ``image_shape`` as
    ``(H, W)`` or ``None``, checked against ``n_inputs`` (clear errors for what cannot be built)."""
    if conv is None or (not isinstance(conv, str) and isinstance(conv, Sequence) and len(conv) == 0):
        if image_shape is not None:
            raise ValueError("image_shape is only for a convolutional front end (give conv too)")
        return (), None
    layers: tuple[tuple[int, int, int], ...]
    if isinstance(conv, str):
        layers = parse_conv(conv)
    else:
        checked: list[tuple[int, int, int]] = []
        for item in conv if isinstance(conv, Sequence) else [conv]:
            if (
                not isinstance(item, Sequence)
                or len(item) not in (2, 3)
                or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in item)
            ):
                raise ValueError(
                    "conv must be a sequence of (channels, kernel) or (channels, kernel, pool) of positive "
                    f"integers (or text such as '8:3:2'), got {conv!r}"
                )
            checked.append((item[0], item[1], item[2] if len(item) == 3 else 1))
        layers = tuple(checked)
    if image_shape is None:
        pooled = [layer for layer in layers if layer[2] != 1]
        if pooled:
            raise ValueError(f"pool {pooled[0][2]}: a convolution over time (no image_shape) has no pooling")
        return layers, None
    if (
        isinstance(image_shape, (str, bytes))
        or not isinstance(image_shape, Sequence)
        or len(image_shape) != 2
        or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in image_shape)
    ):
        raise ValueError(
            f"image_shape must be (height, width) in pixels (positive integers), got {image_shape!r}"
        )
    height, width = image_shape
    if n_inputs % (height * width):
        raise ValueError(
            f"n_inputs={n_inputs} is not a whole number of {height}x{width} images (channels x pixels)"
        )
    for _, kernel, pool in layers:  # the sizes every layer meets (SAME padding keeps them)
        if kernel > min(height, width):
            raise ValueError(f"kernel {kernel} is larger than the {height}x{width} image it convolves")
        if height % pool or width % pool:
            raise ValueError(f"pool {pool} does not divide the {height}x{width} feature maps")
        height, width = height // pool, width // pool
    return layers, (int(image_shape[0]), int(image_shape[1]))
