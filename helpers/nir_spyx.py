"""Run an exported NIR graph in a second simulator, spyx (``spyx.nir.from_nir``), to check the export.

spyx reads a NIR graph its own way (spyx 1.0.0, ``spyx/nir.py`` and ``spyx/nn.py``):

* ``CubaLIF`` becomes ``I = alpha' I + x``, ``v = beta' (v - theta z_prev) + I`` with
  ``alpha' = 1 - dt / tau_syn`` and ``beta' = 1 - dt / tau_mem`` (forward Euler's decay), and it ignores
  ``r``, ``w_in``, ``v_leak`` and ``v_reset``; the spike is ``v > theta``, and a step emits the spike
  of the *previous* step's membrane.
* ``LI`` is read only when a ``Threshold`` follows it: a standalone ``LI`` (our readout) is refused.

The conversion (:func:`spyx_graph`) makes spyx compute our equations: time constants
``tau' = dt / (1 - exp(-dt / tau))`` give ``1 - dt / tau' = exp(-dt / tau)``, our decay; the gains that
spyx ignores, ``(1 - alpha) w_in (1 - beta) r`` per neuron, are folded into the rows of the Affine
that feeds the neurons; spyx runs the graph up to the neurons, and :func:`run_spyx` applies the readout
Affine to its spikes and integrates NIR's LI equation in numpy. Feeding one extra step of silence and dropping
spyx's first output undoes the one-step shift.

spyx and what it pulls in (flax, orbax-checkpoint, tensorstore, grain, ...: about 106 MB) serve only this
check: nothing else in ``helpers`` imports it, :func:`run_spyx` raises an ImportError saying how to
install it, and its tests skip where it is absent. Notebook 12.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import brainunit as u
import numpy as np

if TYPE_CHECKING:  # nir is imported where it is used (an optional dependency)
    import nir

from helpers.nir_export import _chain, _decay, _gain
from helpers.validation import check_positive_quantity

__all__ = ["spyx_graph", "run_spyx"]


def _spyx_nir():
    """``spyx.nir``, or an ImportError that says how to install it (an optional dependency)."""
    try:
        import spyx.nir
    except ImportError as error:
        raise ImportError(
            f"helpers.nir_spyx needs spyx ({error}); environment.yml pins it (spyx==1.0.0): run `make env`"
        ) from None
    return spyx.nir


def spyx_graph(graph: nir.NIRGraph, dt: u.Quantity, *, through: str = "readout_layer") -> nir.NIRGraph:
    """The graph spyx must be given to compute ``graph``'s (exported) network at step ``dt``.

    ``through`` is the last node kept: ``"readout_layer"`` (spyx outputs the readout Affine's value at
    each step) or ``"neurons"`` (spyx outputs the hidden spikes). See the module's docstring.
    """
    import nir

    if through not in ("neurons", "readout_layer"):
        raise ValueError(f"through must be 'neurons' or 'readout_layer', got {through!r}")
    dt_ms = float(check_positive_quantity("dt", dt, u.ms).to_decimal(u.ms))
    names = _chain(graph)
    source, affine, lif, readout_affine = (copy.deepcopy(graph.nodes[name]) for name in names[:4])
    if np.any(np.asarray(lif.v_reset) != 0) or np.any(np.asarray(lif.v_leak) != 0):
        raise ValueError(f"node {names[2]!r}: spyx ignores v_reset and v_leak; they must be 0")
    alpha, beta = _decay(lif.tau_syn, dt_ms), _decay(lif.tau_mem, dt_ms)
    gain = (1 - alpha) * lif.w_in * (1 - beta) * lif.r  # what spyx's "I = alpha I + x; v = beta v + I" lacks
    weight = (np.asarray(affine.weight, np.float64) * gain[:, None]).astype(np.float32)
    bias = (np.asarray(affine.bias, np.float64) * gain).astype(np.float32)
    hidden = nir.CubaLIF(
        tau_syn=dt_ms / _gain(lif.tau_syn, dt_ms),
        tau_mem=dt_ms / _gain(lif.tau_mem, dt_ms),
        r=np.ones_like(lif.r),
        v_leak=np.zeros_like(lif.v_leak),
        v_threshold=np.asarray(lif.v_threshold, np.float64),
        v_reset=np.zeros_like(lif.v_reset),
        w_in=np.ones_like(lif.w_in),
    )
    nodes = {"input": source, "input_layer": nir.Affine(weight=weight, bias=bias), "neurons": hidden}
    if through == "readout_layer":
        nodes["readout_layer"] = nir.Affine(
            weight=np.asarray(readout_affine.weight, np.float32),
            bias=np.asarray(readout_affine.bias, np.float32),
        )
    n_out = nodes[list(nodes)[-1]].output_type["output"]
    nodes["output"] = nir.Output(output_type={"output": np.array(n_out)})
    order = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(order[:-1], order[1:], strict=True)))


def run_spyx(graph: Any, spikes: np.ndarray, dt: u.Quantity) -> dict[str, np.ndarray]:
    """Simulate the exported ``graph`` in spyx over ``spikes [T, B, n_inputs]`` at step ``dt``.

    Returns ``spikes``: the hidden spikes ``[T, B, n_hidden]`` as spyx computed them (the input Affine
    and the CubaLIF, one spyx run), aligned with our steps; ``drive``: the readout Affine applied to
    them, and ``output``: ``drive`` integrated with the graph's LI (exponential Euler), both in float64
    numpy (spyx has no standalone LI, and the Affine after the spikes is a matrix product).
    """
    import jax.numpy as jnp

    spyx_nir = _spyx_nir()

    dt_ms = float(check_positive_quantity("dt", dt, u.ms).to_decimal(u.ms))
    x = np.asarray(spikes, np.float32)
    padded = jnp.asarray(np.concatenate([x, np.zeros_like(x[:1])]))  # one more step: spyx lags by one
    _, out = spyx_nir.from_nir(spyx_graph(graph, dt, through="neurons"), padded, dt=dt_ms)
    result = {"spikes": np.asarray(out)[1:]}
    names = _chain(graph)
    affine, li = graph.nodes[names[3]], graph.nodes[names[4]]
    weight, bias = np.asarray(affine.weight, np.float64), np.asarray(affine.bias, np.float64)
    result["drive"] = result["spikes"].astype(np.float64) @ weight.T + bias
    gamma = _decay(li.tau, dt_ms)
    y = np.zeros(result["drive"].shape[1:])
    outputs = []
    for drive in result["drive"].astype(np.float64):
        y = li.v_leak + gamma * (y - li.v_leak) + (1 - gamma) * li.r * drive
        outputs.append(y)
    result["output"] = np.stack(outputs)
    return result
