"""What spikes cost: firing rates, silent and saturated neurons, synaptic operations, a rate penalty
and firing bounds that steer activity.

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

from collections.abc import Callable

import brainunit as u
import jax
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
    "firing_bounds",
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


def _check_bound(name: str, bound) -> tuple[float, float] | None:
    """``bound`` as ``(strength >= 0, spike count >= 0)``, or ``None``; a clear error otherwise."""
    if bound is None:
        return None
    if not (isinstance(bound, (tuple, list)) and len(bound) == 2) or not all(
        isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) and x >= 0
        for x in bound
    ):
        raise ValueError(f"{name} must be None or a pair (strength >= 0, spike count >= 0), got {bound!r}")
    return float(bound[0]), float(bound[1])


def firing_bounds(
    upper: tuple[float, float] | None = None,
    lower: tuple[float, float] | None = None,
    *,
    layer_sizes: tuple[int, ...] | None = None,
) -> Callable:
    """A regulariser for :class:`~helpers.MinibatchTrainer` that steers activity into a band: an
    upper bound on every neuron and a lower bound on every layer's population (issue 19).

    With ``c[b, i]`` the spike count of hidden neuron ``i`` on example ``b`` (over the ``T`` steps),
    ``upper = (lambda_u, theta_u)`` and ``lower = (lambda_l, theta_l)`` (strengths; counts in spikes
    per example), the penalty is

    - upper, per neuron: ``lambda_u * mean_i relu(mean_b c[b, i] - theta_u)^2``, which acts only on
      neurons that fire more than ``theta_u`` spikes per example on average (saturated ones);
    - lower, per population: ``lambda_l * mean_b relu(theta_l - mean_i c[b, i])^2`` for every layer
      (``layer_sizes`` splits the hidden neurons ``[..., n]`` into layers; default: one layer), which
      acts only when a layer's mean count on an example drops below ``theta_l``, and then pushes every
      neuron of that layer up, silent ones included (through the surrogate gradient, where they are
      near threshold).

    The means over examples count only those where ``mask [B]`` is true. The squared hinges follow Zenke
    and Vogels (2021, Neural Computation 33:899), who pair the bounds the other way round (a lower bound
    per neuron, an upper bound on the population's mean); this pairing, aimed at saturated neurons, is
    the one issue 19 asked for. SpyTorch's tutorials 3 and 4 use no bounds but an L1 penalty on all
    spikes and an L2 penalty on each neuron's count (:func:`rate_penalty` is the L1 one). Returns
    ``f(hidden [T, B, n], mask [B] | None) -> scalar``.
    """
    upper_bound, lower_bound = _check_bound("upper", upper), _check_bound("lower", lower)
    if upper_bound is None and lower_bound is None:
        raise ValueError("give an upper bound, a lower bound or both: (strength, spike count)")
    sizes: tuple[int, ...] | None = None
    if layer_sizes is not None:
        sizes = tuple(check_positive_int("layer size", n) for n in layer_sizes)

    def penalty(hidden, mask):
        counts = jnp.sum(u.get_magnitude(hidden), axis=0)  # [B, n]
        total = jnp.zeros((), counts.dtype)
        if upper_bound is not None:
            strength, theta = upper_bound
            per_neuron = jax.vmap(lambda c: masked_mean(c, mask), in_axes=1)(counts)  # [n]
            total = total + strength * jnp.mean(jax.nn.relu(per_neuron - theta) ** 2)
        if lower_bound is not None:
            strength, theta = lower_bound
            if sizes is not None and sum(sizes) != counts.shape[1]:
                raise ValueError(
                    f"layer_sizes {sizes} add up to {sum(sizes)}, not the {counts.shape[1]} neurons"
                )
            edges = np.cumsum((0, *(sizes or (counts.shape[1],))))
            for start, stop in zip(edges[:-1], edges[1:], strict=True):
                population = jnp.mean(counts[:, start:stop], axis=1)  # [B]
                total = total + strength * masked_mean(jax.nn.relu(theta - population) ** 2, mask)
        return total

    return penalty
