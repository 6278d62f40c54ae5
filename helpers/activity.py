"""What spikes cost: firing rates, silent and saturated neurons, synaptic operations, a rate penalty.

Counts come as spikes per example and neuron, ``[N, n]`` (``MinibatchTrainer.evaluate`` returns them
for the hidden layer as ``hidden_counts``; :func:`helpers.realdata.spike_counts` gives them for the input).

A **synaptic operation** (SynOp) is what one spike costs one synapse on event-driven hardware: the
receiving neuron adds the synapse's weight to its input. A layer's SynOps per example are therefore its
spikes times their fan-out. An equally sized conventional network (ANN) instead multiplies and adds
every weight once per example: its **dense multiply-accumulates** (MACs). SynOps are a proxy for the
energy of the synapses only; they leave out the neuron updates at every step, memory traffic (which
usually dominates), and the fact that a CPU or GPU simulating the network densely does all the MACs
anyway. See notebook 11.
"""

from __future__ import annotations

import brainunit as u
import jax.numpy as jnp
import numpy as np

from helpers.readout import masked_mean
from helpers.validation import check_positive_int

__all__ = [
    "firing_rates",
    "silent_and_saturated",
    "synaptic_operations",
    "dense_macs",
    "rate_penalty",
]


def _check_counts(counts, name: str = "counts") -> np.ndarray:
    counts = np.asarray(counts)
    if counts.ndim != 2:
        raise ValueError(f"{name} must have shape [N, n] (examples, neurons), got shape {counts.shape}")
    if not (np.issubdtype(counts.dtype, np.number) and not np.issubdtype(counts.dtype, np.complexfloating)):
        raise TypeError(f"{name} must be numbers of spikes, got dtype {counts.dtype}")
    if counts.size and (not np.all(np.isfinite(counts)) or counts.min() < 0):
        raise ValueError(f"{name} must be finite, non-negative spike counts")
    return counts


def firing_rates(counts, duration: u.Quantity) -> u.Quantity:
    """Each neuron's mean firing rate over the examples: ``counts [N, n]`` spikes per example during
    ``duration`` (time) -> rates ``[n]`` in Hz."""
    counts = _check_counts(counts)
    if not isinstance(duration, u.Quantity) or u.get_dim(duration) != u.get_dim(u.ms):
        raise TypeError(f"duration must be a time (e.g. 20 * u.ms), got {duration!r}")
    seconds = float(duration.to_decimal(u.second))
    if not (np.isfinite(seconds) and seconds > 0):
        raise ValueError(f"duration must be positive, got {duration}")
    return counts.mean(axis=0) / seconds * u.Hz


def silent_and_saturated(counts, n_steps: int, *, saturation: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks ``[n]``: neurons that never fire on any example (*silent*: they pass no
    information and get no gradient through their spikes), and neurons that fire on at least
    ``saturation`` of the ``n_steps`` steps on average (*saturated*: near the ceiling of one spike per
    step, they barely vary with the input)."""
    counts = _check_counts(counts)
    n_steps = check_positive_int("n_steps", n_steps)
    if isinstance(saturation, bool) or not isinstance(saturation, (int, float)) or not 0 < saturation <= 1:
        raise ValueError(f"saturation must be a fraction in (0, 1], got {saturation!r}")
    if counts.size and counts.max() > n_steps:
        raise ValueError(f"counts exceed n_steps={n_steps}: at most one spike per step and neuron")
    silent = counts.sum(axis=0) == 0
    saturated = counts.mean(axis=0) >= saturation * n_steps
    return silent, saturated


def synaptic_operations(layer_counts, fan_outs) -> dict[str, np.ndarray]:
    """Synaptic operations per example: every spike of a layer costs one addition per outgoing synapse.

    ``layer_counts`` maps a layer's name to its spike counts ``[N, n]``; ``fan_outs`` maps the same
    names to each neuron's number of outgoing synapses (an int). Returns each layer's SynOps per
    example, ``[N]``, and their ``"total"``.
    """
    if not isinstance(layer_counts, dict) or not isinstance(fan_outs, dict):
        raise TypeError("layer_counts and fan_outs must be dicts keyed by layer name")
    if set(layer_counts) != set(fan_outs):
        raise ValueError(f"layer_counts and fan_outs must name the same layers, got {sorted(layer_counts)} "
                         f"and {sorted(fan_outs)}")  # fmt: skip
    ops, n = {}, None
    for name, counts in layer_counts.items():
        counts = _check_counts(counts, f"layer_counts[{name!r}]")
        if n is not None and counts.shape[0] != n:
            raise ValueError("every layer's counts must hold the same examples")
        n = counts.shape[0]
        fan_out = fan_outs[name]
        if isinstance(fan_out, bool) or not isinstance(fan_out, (int, np.integer)) or fan_out < 0:
            raise ValueError(f"fan_outs[{name!r}] must be a non-negative integer, got {fan_out!r}")
        ops[name] = counts.sum(axis=1).astype(np.float64) * int(fan_out)
    ops["total"] = sum(ops.values()) if ops else np.zeros(0)
    return ops


def dense_macs(layer_sizes, n_steps: int = 1) -> int:
    """Multiply-accumulates per example of a dense feed-forward network with ``layer_sizes``
    (e.g. ``[64, 256, 10]``), evaluated ``n_steps`` times (1 for an ANN that sees the input once; the
    number of time steps for a dense simulation of an SNN of the same sizes)."""
    sizes = [check_positive_int("layer size", s) for s in layer_sizes]
    if len(sizes) < 2:
        raise ValueError(f"layer_sizes needs at least an input and an output size, got {layer_sizes!r}")
    n_steps = check_positive_int("n_steps", n_steps)
    return n_steps * sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def rate_penalty(strength: float):
    """A regulariser for :class:`~helpers.MinibatchTrainer`: ``strength`` times the mean number of
    spikes per hidden neuron and example (averaged over the real examples of the batch).

    Its gradient flows through the surrogate spike function, so it pushes membrane potentials below
    threshold where the task does not need the spikes. Returns ``f(hidden [T, B, n], mask [B]) -> scalar``.
    """
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not strength >= 0:
        raise ValueError(f"strength must be a non-negative number, got {strength!r}")
    strength = float(strength)

    def penalty(hidden, mask):
        hidden = u.get_magnitude(hidden)
        per_example = jnp.sum(hidden, axis=(0, 2)) / hidden.shape[2]  # [B] spikes per neuron
        return strength * masked_mean(per_example, mask)

    return penalty
