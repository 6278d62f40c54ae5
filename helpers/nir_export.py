"""Export a trained :class:`~helpers.SNN` to NIR, import it back, and simulate NIR's equations.

NIR (the Neuromorphic Intermediate Representation, ``nir`` on PyPI) states each node as a
continuous-time equation; every simulator or chip chooses its own discretisation. Notebook 12
derives the mapping; in short, with :math:`\\Delta` the time step ``dt`` and
:math:`\\alpha = e^{-\\Delta/\\tau_{syn}}`, :math:`\\beta = e^{-\\Delta/\\tau_{mem}}`,
:math:`\\gamma = e^{-\\Delta/\\tau_{out}}`, our network computes at every step ``n``::

    I[n] = alpha * I[n-1] + W_in s[n] + b_in                  (Expon synapse, mA)
    v'   = v[n-1] - v_th * z[n-1]                             (soft reset, mV)
    v[n] = beta * v' + (1 - beta) * R * I[n]                  (LIF, R = 1 ohm, mV)
    z[n] = 1 if v[n] >= v_th else 0                           (spike)
    y[n] = gamma * y[n-1] + W_out z[n] + b_out                (Expon readout)

which is the exponential-Euler step (exact decay, input held over the step) of NIR's
``CubaLIF`` (``tau_syn dI/dt = -I + w_in S``, ``tau_mem dv/dt = (v_leak - v) + R I``) and
``LI`` (``tau dy/dt = (v_leak - y) + R x``) with the *same* time constants and
``w_in = 1 / (1 - alpha)``, ``R = 1``, ``R_out = 1 / (1 - gamma)``, ``v_leak = v_reset = 0``.
Units are those NIR's documentation gives: time constants in ms, voltages in mV, R in ohm
(so currents in mA). The graph is
``input -> input_layer (Affine) -> neurons (CubaLIF) -> readout_layer (Affine) -> readout (LI) -> output``.

What NIR cannot say is written in the graph's metadata (which NIR tells backends not to rely on):
the step ``dt`` the network was trained with, the integration scheme, the soft reset (NIR's
``CubaLIF`` resets to ``v_reset``; ours subtracts the threshold) and the spike condition
(``v >= v_threshold``; NIR writes ``v > v_threshold``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import brainpy
import brainstate
import brainunit as u
import jax.numpy as jnp
import numpy as np

if TYPE_CHECKING:  # nir is imported where it is used (an optional dependency)
    import nir

from helpers.model import SNN, TrainableTauLIF
from helpers.validation import check_instance, check_positive_quantity, get_dt

__all__ = [
    "NIRError",
    "NODE_NAMES",
    "to_nir",
    "check_exportable",
    "from_nir",
    "write_nir",
    "read_nir",
    "simulate_nir",
    "spike_agreement",
]

#: the node names of an exported network, in the order data flows
NODE_NAMES = ("input", "input_layer", "neurons", "readout_layer", "readout", "output")
#: the NIR node type of each (what :func:`from_nir` reads)
NODE_TYPES = ("Input", "Affine", "CubaLIF", "Affine", "LI", "Output")


class NIRError(ValueError):
    """A network NIR cannot express, or a NIR graph our importer cannot read (the node and the reason)."""


def _nir():
    try:
        import nir  # imported here: h5py and nir load only when export is used
    except ImportError as error:
        raise ImportError(
            f"NIR export needs nir ({error}); environment.yml pins it: run `make env`"
        ) from None
    return nir


def _ms(value: u.Quantity, shape: tuple[int, ...]) -> np.ndarray:
    """A time constant (or an array of them) in ms, as a float64 array of ``shape``."""
    return np.broadcast_to(np.asarray(u.get_magnitude(value.to(u.ms)), dtype=np.float64), shape).copy()


def _decay(tau_ms: np.ndarray | float, dt_ms: float) -> np.ndarray:
    """``exp(-dt / tau)``: the decay of ``tau dx/dt = -x`` over one step (float64)."""
    return np.exp(-dt_ms / tau_ms)


def _gain(tau_ms: np.ndarray | float, dt_ms: float) -> np.ndarray:
    """``1 - exp(-dt / tau)``: what an input held over one step adds, per unit, to ``tau dx/dt = -x + in``."""
    return -np.expm1(-dt_ms / tau_ms)


def _linear_params(layer) -> tuple[np.ndarray, np.ndarray]:
    """A ``brainstate.nn.Linear``'s weight ``[out, in]`` (NIR's layout) and bias ``[out]``, as numbers."""
    params = layer.weight.value
    weight = np.asarray(u.get_magnitude(params["weight"])).T
    bias = params.get("bias")
    bias = np.zeros(weight.shape[0], weight.dtype) if bias is None else np.asarray(u.get_magnitude(bias))
    return weight.copy(), bias.copy()


def check_exportable(net: SNN) -> None:
    """Raise :class:`NIRError` for a network this export cannot map: a :class:`helpers.deep.DeepSNN`
    (its graph of several layers, ALIF neurons or a spiking output is not the one-hidden-layer graph
    written here)."""
    if net.config.get("architecture") == "deep":
        raise NIRError(
            "a helpers.deep.DeepSNN (several hidden layers, ALIF neurons or a spiking output): this export "
            "maps one hidden LIF layer and a readout only"
        )


def to_nir(net: SNN, *, metadata: dict[str, Any] | None = None) -> nir.NIRGraph:
    """The NIR graph (``nir.NIRGraph``) of ``net`` at the time step ``dt`` of ``brainstate.environ``.

    The time constants are the network's own (in ms): exponential Euler decays by exactly
    ``exp(-dt / tau)``, which is the decay of NIR's equations over ``dt``. The input gains ``w_in`` and
    the readout's ``r`` depend on ``dt`` (see the module's docstring). Weights keep their dtype;
    ``metadata`` (plain values) is added to the graph's. Raises :class:`NIRError` for a network NIR
    cannot express (a recurrent one) and :class:`TypeError` for anything but a :class:`~helpers.SNN`.
    """
    check_instance("net", net, SNN, "a helpers.SNN")
    check_exportable(net)
    nir = _nir()
    dt_ms = float(get_dt().to_decimal(u.ms))
    if net.recurrent:
        raise NIRError(
            "node 'recurrent_layer' (the hidden layer's feedback weights): NIR defines no delay on a "
            "recurrent edge, while ours feeds back the previous step's spikes; export a feed-forward network"
        )
    neurons = net.neurons
    if not isinstance(neurons, brainpy.state.LIF) or neurons.spk_reset != "soft":
        raise NIRError(f"node 'neurons': expected brainpy.state.LIF with a soft reset, got {neurons!r}")
    n_hidden, n_out = net.n_hidden, net.n_outputs
    hidden = (n_hidden,)
    tau_syn = _ms(net.synapse.tau, hidden)
    tau_mem = _ms(neurons.tau, hidden)
    tau_out = _ms(net.readout.tau, (n_out,))
    v_th = np.broadcast_to(np.asarray(neurons.V_th.to_decimal(u.mV), np.float64), hidden).copy()
    v_rest = np.broadcast_to(np.asarray(neurons.V_rest.to_decimal(u.mV), np.float64), hidden).copy()
    v_reset = np.broadcast_to(np.asarray(neurons.V_reset.to_decimal(u.mV), np.float64), hidden).copy()
    r = np.broadcast_to(np.asarray(neurons.R.to_decimal(u.ohm), np.float64), hidden).copy()
    w_in, b_in = _linear_params(net.input_layer)
    w_out, b_out = _linear_params(net.readout_layer)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([net.n_inputs])}),
        "input_layer": nir.Affine(weight=w_in, bias=b_in),
        "neurons": nir.CubaLIF(
            tau_syn=tau_syn,
            tau_mem=tau_mem,
            r=r,
            v_leak=v_rest,
            v_threshold=v_th,
            v_reset=v_reset,
            w_in=1.0 / _gain(tau_syn, dt_ms),
            metadata={"reset": "subtract", "spike_condition": "v >= v_threshold"},
        ),
        "readout_layer": nir.Affine(weight=w_out, bias=b_out),
        "readout": nir.LI(tau=tau_out, r=1.0 / _gain(tau_out, dt_ms), v_leak=np.zeros(n_out)),
        "output": nir.Output(output_type={"output": np.array([n_out])}),
    }
    info = {
        "exported_by": "snn-tutorial helpers.to_nir",
        "dt": dt_ms,
        "units": "time ms, voltage mV, current mA, resistance ohm",
        "integration": "exponential Euler: exact decay exp(-dt/tau), input held over the step, "
        "synapse updated before the membrane",
        "reset": "subtract (v -> v - (v_threshold - v_reset) after a spike), not NIR's v -> v_reset",
        "spikes": "0/1 per step of dt; the Affine output is held over the step",
    }
    return nir.NIRGraph(
        nodes=nodes,
        edges=list(zip(NODE_NAMES[:-1], NODE_NAMES[1:], strict=True)),
        metadata=info | dict(metadata or {}),
    )


def write_nir(path: str | os.PathLike, net_or_graph: Any, *, metadata: dict[str, Any] | None = None) -> Path:
    """Write a network (via :func:`to_nir`) or a NIR graph to ``path`` (NIR's HDF5 format); return it."""
    nir = _nir()
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: no folder {path.parent}")
    graph = to_nir(net_or_graph, metadata=metadata) if isinstance(net_or_graph, SNN) else net_or_graph
    check_instance("net_or_graph", graph, nir.NIRGraph, "a helpers.SNN or a nir.NIRGraph")
    nir.write(path, graph)
    return path


def read_nir(path: str | os.PathLike) -> nir.NIRGraph:
    """The NIR graph stored at ``path``; :class:`NIRError` if it is not a readable NIR file."""
    nir = _nir()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no NIR file at {path}")
    try:
        return nir.read(path)
    except Exception as error:  # h5py and nir raise many types for foreign or truncated files
        raise NIRError(f"{path} is not a readable NIR file: {type(error).__name__}: {error}") from None


# -- import -----------------------------------------------------------------------------------------
def _chain(graph) -> list[str]:
    """The node names of ``graph`` from its Input to its Output, checking that they form one chain."""
    nir = _nir()
    check_instance("graph", graph, nir.NIRGraph, "a nir.NIRGraph")
    inputs = [name for name, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if len(inputs) != 1:
        raise NIRError(f"the graph must have one Input node, got {len(inputs)} ({inputs})")
    successors: dict[str, list[str]] = {}
    for source, target in graph.edges:
        for end in (source, target):
            if end not in graph.nodes:
                raise NIRError(f"edge ({source!r}, {target!r}) names node {end!r}, which the graph lacks")
        successors.setdefault(source, []).append(target)
    chain = [inputs[0]]
    while len(chain) < len(graph.nodes):
        following = successors.get(chain[-1], [])
        if len(following) != 1:
            break
        if following[0] in chain:
            raise NIRError(
                f"node {following[0]!r}: a recurrent edge from {chain[-1]!r}; our network is feed-forward"
            )
        chain.append(following[0])
    expected = " -> ".join(NODE_TYPES)
    for position, name in enumerate(chain):
        node = graph.nodes[name]
        kind = type(node).__name__
        if position >= len(NODE_TYPES) or kind != NODE_TYPES[position]:
            raise NIRError(
                f"node {name!r} ({kind}): our importer reads the chain {expected}, and this node stands "
                f"where {NODE_TYPES[position] if position < len(NODE_TYPES) else 'nothing'} should"
            )
        if len(successors.get(name, [])) > 1:
            raise NIRError(f"node {name!r} ({kind}) feeds {successors[name]}; our importer reads one chain")
    if len(chain) != len(NODE_TYPES):
        raise NIRError(f"node {chain[-1]!r}: the chain {expected} stops here after {len(chain)} nodes")
    extra = sorted(set(graph.nodes) - set(chain))
    if extra:
        raise NIRError(f"node {extra[0]!r}: not on the chain {expected}; our importer reads nothing else")
    return chain


def _uniform(name: str, field: str, values: np.ndarray) -> float:
    flat = np.ravel(values)
    if flat.size and not np.all(flat == flat[0]):
        raise NIRError(
            f"node {name!r}: {field} must be the same for every neuron (ours is one number per layer), "
            f"got values from {flat.min():g} to {flat.max():g}"
        )
    return float(flat[0])


def _zero(name: str, field: str, values: np.ndarray, why: str) -> None:
    if np.any(np.asarray(values) != 0):
        raise NIRError(f"node {name!r}: {field} must be 0 ({why}), got {np.ravel(values)[:3]}...")


def _positive(name: str, field: str, values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, np.float64)
    if not np.all(np.isfinite(values) & (values > 0)):
        raise NIRError(f"node {name!r}: {field} must be positive and finite, got {np.ravel(values)[:3]}...")
    return values


def from_nir(graph: Any) -> SNN:
    """An :class:`~helpers.SNN` that runs ``graph`` with exponential Euler at the ``dt`` of
    ``brainstate.environ``.

    ``graph`` must be the chain ``Input -> Affine -> CubaLIF -> Affine -> LI -> Output`` (as
    :func:`to_nir` writes it) with ``v_leak = v_reset = 0``, one ``tau_syn``, one ``v_threshold`` and
    one readout ``tau`` per layer (``tau_mem`` may differ per neuron: the network then has
    ``train_tau_mem=True``). The gains ``w_in``, ``r`` of each neuron are folded into the weights of the
    layer that feeds it, so any positive gains are read. At the ``dt`` the graph was exported with, the
    network computes what the exported one did, bit for bit. Anything else raises :class:`NIRError`
    naming the node and the reason.
    """
    names = _chain(graph)
    dt_ms = float(get_dt().to_decimal(u.ms))
    node = dict(zip(NODE_NAMES, (graph.nodes[name] for name in names), strict=True))
    name = dict(zip(NODE_NAMES, names, strict=True))
    w_in, b_in = np.asarray(node["input_layer"].weight), np.asarray(node["input_layer"].bias)
    w_out, b_out = np.asarray(node["readout_layer"].weight), np.asarray(node["readout_layer"].bias)
    n_inputs = int(np.prod(np.asarray(node["input"].input_type["input"])))
    lif, li = node["neurons"], node["readout"]
    n_hidden = int(np.asarray(lif.v_threshold).size)
    n_outputs = int(np.asarray(li.tau).size)
    for key, weight, bias, shape in (
        ("input_layer", w_in, b_in, (n_hidden, n_inputs)),
        ("readout_layer", w_out, b_out, (n_outputs, n_hidden)),
    ):
        if weight.shape != shape or np.shape(bias) != shape[:1]:
            raise NIRError(
                f"node {name[key]!r} (Affine): expected weight {shape} and bias {shape[:1]} between its "
                f"neighbours, got {weight.shape} and {np.shape(bias)}"
            )
    if n_outputs != int(np.prod(np.asarray(node["output"].output_type["output"]))):
        raise NIRError(f"node {name['output']!r}: its shape differs from the LI's {n_outputs}")
    _zero(name["neurons"], "v_leak", lif.v_leak, "our neurons rest at 0 mV")
    _zero(name["neurons"], "v_reset", lif.v_reset, "our neurons reset by subtracting v_threshold")
    _zero(name["readout"], "v_leak", li.v_leak, "our readout decays to 0")
    tau_syn = _uniform(name["neurons"], "tau_syn", _positive(name["neurons"], "tau_syn", lif.tau_syn))
    tau_mem = _positive(name["neurons"], "tau_mem", lif.tau_mem)
    tau_out = _uniform(name["readout"], "tau", _positive(name["readout"], "tau", li.tau))
    v_th = _uniform(
        name["neurons"], "v_threshold", _positive(name["neurons"], "v_threshold", lif.v_threshold)
    )
    # what one unit of Affine output, held over a step, adds to v (mV per mA, over (1 - beta)) and to y
    hidden_gain = _gain(tau_syn, dt_ms) * _positive(name["neurons"], "w_in", lif.w_in)
    hidden_gain = hidden_gain * _positive(name["neurons"], "r", lif.r)
    out_gain = _gain(tau_out, dt_ms) * _positive(name["readout"], "r", li.r)
    per_neuron = not np.all(tau_mem == tau_mem.flat[0])
    net = SNN(
        n_inputs, n_hidden, n_outputs,
        tau_syn=tau_syn * u.ms, tau_mem=float(tau_mem.flat[0]) * u.ms,  # per neuron: set below
        tau_out=tau_out * u.ms, v_threshold=v_th * u.mV, input_scale=1.0, train_tau_mem=per_neuron,
    )  # fmt: skip
    dtype = brainstate.environ.dftype()

    def cast(values: np.ndarray):
        return jnp.asarray(np.asarray(values, np.float64).astype(dtype))

    # gains of 1 (an exported network) leave float32 weights exactly as they were: |g - 1| ~ 1e-16
    net.input_layer.weight.value = {
        "weight": cast((w_in * hidden_gain[:, None]).T) * u.mA,
        "bias": cast(b_in * hidden_gain) * u.mA,
    }
    net.readout_layer.weight.value = {
        "weight": cast((w_out * out_gain[:, None]).T),
        "bias": cast(b_out * out_gain),
    }
    if per_neuron:
        assert isinstance(net.neurons, TrainableTauLIF)
        net.neurons.log_tau.value = cast(np.log(tau_mem))
    return net


# -- NIR's equations, integrated in numpy (the reference reading of a graph) -------------------------
def simulate_nir(
    graph: Any,
    spikes: np.ndarray,
    dt: u.Quantity,
    *,
    reset: str = "subtract",
    record: bool = False,
) -> np.ndarray | dict[str, np.ndarray]:
    """Integrate an exported graph's equations in float64 numpy over ``spikes [T, B, n_inputs]``.

    Exponential Euler at step ``dt`` (time): each node's state decays by ``exp(-dt / tau)`` and its
    input, held over the step, adds ``(1 - exp(-dt / tau))`` times the input (times ``w_in`` or ``r``);
    the synapse is updated before the membrane. ``reset="subtract"`` subtracts the threshold after a
    spike (ours); ``reset="to_v_reset"`` sets ``v = v_reset``, as NIR's equations read. Returns the
    readout ``[T, B, n_outputs]``, or with ``record`` a dict with ``current``, ``voltage``, ``spikes``
    and ``output``. Written from NIR's equations only, as an independent check of :func:`to_nir`.
    """
    if reset not in ("subtract", "to_v_reset"):
        raise ValueError(f"reset must be 'subtract' or 'to_v_reset', got {reset!r}")
    dt_ms = float(check_positive_quantity("dt", dt, u.ms).to_decimal(u.ms))
    names = _chain(graph)
    a1, lif, a2, li = (graph.nodes[name] for name in names[1:5])
    x = np.asarray(spikes, np.float64)
    if x.ndim != 3 or x.shape[2] != np.asarray(a1.weight).shape[1]:
        raise ValueError(f"spikes must be [T, B, {np.asarray(a1.weight).shape[1]}], got {x.shape}")
    alpha, beta = _decay(lif.tau_syn, dt_ms), _decay(lif.tau_mem, dt_ms)
    gamma = _decay(li.tau, dt_ms)
    batch, hidden, out = x.shape[1], np.asarray(lif.v_threshold).size, np.asarray(li.tau).size
    current, v, z = np.zeros((batch, hidden)), np.zeros((batch, hidden)), np.zeros((batch, hidden))
    y = np.zeros((batch, out))
    rows: dict[str, list] = {"current": [], "voltage": [], "spikes": [], "output": []}
    w1, b1 = np.asarray(a1.weight, np.float64), np.asarray(a1.bias, np.float64)
    w2, b2 = np.asarray(a2.weight, np.float64), np.asarray(a2.bias, np.float64)
    for x_t in x:
        drive = x_t @ w1.T + b1
        current = alpha * current + (1 - alpha) * lif.w_in * drive
        if reset == "subtract":
            v = v - (lif.v_threshold - lif.v_reset) * z
        else:
            v = np.where(z > 0, lif.v_reset, v)
        v = lif.v_leak + beta * (v - lif.v_leak) + (1 - beta) * lif.r * current
        z = (v >= lif.v_threshold).astype(np.float64)
        y = li.v_leak + gamma * (y - li.v_leak) + (1 - gamma) * li.r * (z @ w2.T + b2)
        for key, value in (("current", current), ("voltage", v), ("spikes", z), ("output", y)):
            rows[key].append(value)
    result = {key: np.stack(value) for key, value in rows.items()}
    return result if record else result["output"]


def spike_agreement(ours, theirs, voltage, v_threshold: float, *, margin: float) -> dict[str, int]:
    """Compare two simulations' spikes ``[T, B, N]`` of the same network and say where they part.

    Two simulators that compute the same equations in another order (or precision) round differently:
    their membranes differ by a few units in the last place, and a membrane that lands that close to
    the threshold may spike in one and not the other; from then on that neuron's trace differs (the
    reset has happened in one only). So the count of differing entries is a measured number, not a
    property of the export. What the export must satisfy is that every trace (an example and a neuron)
    whose spikes differ *begins* to differ at a step where our membrane ``voltage`` (mV, ``[T, B, N]``)
    lay within ``margin`` (mV) of ``v_threshold`` (mV). Returns ``entries`` (differing spike entries),
    ``traces`` (differing traces), ``unexplained`` (differing traces whose first difference is not so
    close: 0 when the simulators agree up to rounding), ``near`` (entries of ours within ``margin`` of
    the threshold: how many decisions rounding could flip) and ``total`` (entries).
    """
    ours, theirs = np.asarray(ours) > 0, np.asarray(theirs) > 0
    voltage = np.asarray(u.get_magnitude(voltage), np.float64)
    if not ours.shape == theirs.shape == voltage.shape or ours.ndim != 3:
        raise ValueError(
            f"ours, theirs and voltage must be [T, B, N] of one shape, got {ours.shape}, {theirs.shape}, "
            f"{voltage.shape}"
        )
    if not (np.isfinite(margin) and margin > 0):
        raise ValueError(f"margin must be a positive number of mV, got {margin!r}")
    differ = ours != theirs
    traces = differ.any(axis=0)
    first = differ.argmax(axis=0)  # the first differing step of each trace (0 where none differs)
    close = np.abs(voltage - v_threshold) <= margin
    explained = np.take_along_axis(close, first[None], axis=0)[0]
    return {
        "entries": int(differ.sum()),
        "traces": int(traces.sum()),
        "unexplained": int((traces & ~explained).sum()),
        "near": int(close.sum()),
        "total": int(differ.size),
    }
