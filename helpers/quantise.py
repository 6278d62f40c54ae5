"""Post-training quantisation of an :class:`~helpers.SNN`'s weights to a few bits, as chips store them.

Each layer gets one scale (per-layer, symmetric): with ``b`` bits the integers run from
``-(2**(b-1) - 1)`` to ``2**(b-1) - 1`` (8 bits: -127..127; 4 bits: -7..7), the scale is the layer's
largest absolute weight or bias divided by that bound, and every weight and bias becomes its
nearest multiple of the scale (round half to even). The quantised network computes with those
multiples in floating point: what a chip computing with the integers and one scale factor per
layer computes, up to the float rounding of the products. Time constants and thresholds are left
as they are (chips store them in their own formats).
"""

from __future__ import annotations

import brainstate
import brainunit as u
import jax.numpy as jnp
import numpy as np

from helpers.model import SNN
from helpers.validation import check_bits, check_instance

__all__ = ["quantise_array", "quantised"]

#: the layers whose weights (and biases) are quantised, in the order data flows
LAYERS = ("input_layer", "recurrent_layer", "readout_layer")


def quantise_array(values: np.ndarray, bits: int, scale: float | None = None) -> tuple[np.ndarray, float]:
    """``values`` as integers of ``bits`` bits (symmetric) and the scale: ``values ~ integers * scale``.

    ``scale`` defaults to ``max|values| / (2**(bits-1) - 1)`` (1 for an all-zero array). Returns
    ``(integers int32, scale)``; ``bits`` runs from 2 to 16.
    """
    bits = check_bits("bits", bits)
    values = np.asarray(values, np.float64)
    bound = 2 ** (bits - 1) - 1
    if scale is None:
        largest = float(np.max(np.abs(values))) if values.size else 0.0
        scale = largest / bound if largest > 0 else 1.0
    integers = np.clip(np.round(values / scale), -bound, bound).astype(np.int32)
    return integers, float(scale)


def quantised(net: SNN, bits: int) -> tuple[SNN, dict[str, float]]:
    """A copy of ``net`` whose weights and biases are quantised to ``bits`` bits, one scale per layer.

    Returns ``(network, scales)`` with ``scales[layer]`` the step between two representable values
    (the layer's unit: mA for the input and recurrent layers, none for the readout). ``net`` is left
    as it was; the copy is built with ``SNN(**net.init_kwargs)`` (the time step must be set).
    """
    check_instance("net", net, SNN, "a helpers.SNN")
    copy = SNN(**net.init_kwargs)
    for path, state in net.states(brainstate.ParamState).items():  # start from the same parameters
        copy.states(brainstate.ParamState)[path].value = state.value
    scales = {}
    for name in LAYERS:
        if not hasattr(net, name):
            continue
        params = getattr(net, name).weight.value
        unit = u.get_unit(params["weight"])
        magnitudes = {key: np.asarray(u.get_magnitude(value)) for key, value in params.items()}
        joined = np.concatenate([value.ravel() for value in magnitudes.values()])
        _, scale = quantise_array(joined, bits)
        new = {}
        for key, value in magnitudes.items():
            integers, _ = quantise_array(value, bits, scale)
            new[key] = jnp.asarray((integers * scale).astype(value.dtype))
            new[key] = new[key] * unit if not unit.is_unitless else new[key]
        getattr(copy, name).weight.value = new
        scales[name] = scale
    return copy, scales
