"""Figures used across the notebooks: rasters, neuron traces, readouts and loss curves.

Every function draws on a given matplotlib ``Axes`` (or creates a figure) and returns what it drew
on, so the notebooks can compose panels freely.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import brainstate
import brainunit as u
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from helpers.arraytypes import Array

__all__ = [
    "plot_raster",
    "plot_network_activity",
    "plot_readout",
    "plot_loss",
    "plot_history",
    "plot_confusion",
]


def _time_ms(n_steps: int, dt: u.Quantity | None) -> np.ndarray:
    dt = brainstate.environ.get_dt() if dt is None else dt
    return np.arange(1, n_steps + 1) * float(dt.to_decimal(u.ms))


def _plain(x, unit=None) -> np.ndarray:
    return np.asarray(x.to_decimal(unit) if isinstance(x, u.Quantity) else x)


def plot_raster(
    spikes: Array,
    example: int = 0,
    *,
    ax: Axes | None = None,
    dt: u.Quantity | None = None,
    color: str = "k",
    ylabel: str = "input channel",
) -> Axes:
    """Raster of one example's spikes ``[T, B, N]`` (or ``[T, N]``): one row per channel or neuron."""
    spikes = _plain(spikes)
    if spikes.ndim == 3:
        spikes = spikes[:, example]
    if spikes.ndim != 2:
        raise ValueError(f"spikes must have shape [T, B, N] or [T, N], got {spikes.shape}")
    ax = ax or plt.figure(figsize=(7, 2.5)).gca()
    steps, channels = np.nonzero(spikes)
    t = _time_ms(spikes.shape[0], dt)
    ax.scatter(t[steps], channels, s=25, marker="|", linewidths=1.2, color=color)
    ax.set_xlim(0, t[-1])
    ax.set_ylim(-0.5, spikes.shape[1] - 0.5)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("time (ms)")
    return ax


def plot_readout(
    output: Array,
    example: int = 0,
    *,
    ax: Axes | None = None,
    dt: u.Quantity | None = None,
    labels: Sequence[str] | None = None,
) -> Axes:
    """Readout traces ``[T, B, C]`` of one example, one line per class."""
    output = _plain(output)[:, example]
    ax = ax or plt.figure(figsize=(7, 2.5)).gca()
    t = _time_ms(output.shape[0], dt)
    for c in range(output.shape[1]):
        ax.plot(t, output[:, c], label=labels[c] if labels else f"class {c}")
    ax.set_ylabel("readout")
    ax.set_xlabel("time (ms)")
    ax.legend(loc="upper left", fontsize="small")
    return ax


def plot_network_activity(
    inputs: Array,
    traces: dict[str, Array],
    example: int = 0,
    *,
    v_threshold: u.Quantity = 1.0 * u.mV,
    dt: u.Quantity | None = None,
) -> Figure:
    """Four stacked panels for one example: input raster, synaptic current, membrane potential
    with threshold and spikes, and readout. ``traces`` is what :meth:`helpers.SNN.record` returns."""
    fig, axes = plt.subplots(4, 1, figsize=(7.5, 8), sharex=True, height_ratios=[1.4, 1, 1.3, 1])
    plot_raster(inputs, example, ax=axes[0], dt=dt)
    axes[0].set_title(f"example {example}")
    t = _time_ms(np.shape(inputs)[0], dt)
    current = _plain(traces["current"], u.mA)[:, example]
    voltage = _plain(traces["voltage"], u.mV)[:, example]
    hidden = _plain(traces["spikes"])[:, example] > 0
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for n in range(current.shape[1]):
        c = colors[n % len(colors)]
        axes[1].plot(t, current[:, n], color=c, lw=1)
        axes[2].plot(t, voltage[:, n], color=c, lw=1, label=f"neuron {n}")
        spike_t = t[hidden[:, n]]
        axes[2].plot(spike_t, np.full(spike_t.shape, _plain(v_threshold, u.mV) * 1.15), "v", color=c, ms=5)
    axes[1].set_ylabel("synaptic\ncurrent (mA)")
    axes[2].axhline(_plain(v_threshold, u.mV), color="0.3", ls="--", lw=1, label="threshold")
    axes[2].set_ylabel("membrane\npotential (mV)")
    # above the panel, in the gap between panels, so that no trace is hidden behind it
    axes[2].legend(
        loc="lower left",
        bbox_to_anchor=(0.0, 1.0),
        fontsize="small",
        ncol=5,
        frameon=False,
        borderaxespad=0.1,
        handlelength=1.5,
    )
    plot_readout(traces["output"], example, ax=axes[3], dt=dt)
    for ax in axes[:-1]:
        ax.set_xlabel("")
    fig.align_ylabels(axes)
    fig.tight_layout()
    return fig


def plot_loss(
    losses: Array | Sequence[float], *, ax: Axes | None = None, label: str | None = None, log: bool = False
) -> Axes:
    """Training loss per epoch (nats); ``log`` puts the loss axis on a log scale."""
    losses = np.asarray(losses)
    ax = ax or plt.figure(figsize=(6.5, 3.5)).gca()
    ax.plot(np.arange(1, losses.size + 1), losses, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (nats)")
    if log:
        ax.set_yscale("log")
    if label:
        ax.legend()
    return ax


def plot_history(
    history: Mapping[str, Array], *, axes: Sequence[Axes] | None = None, label: str | None = None
) -> Sequence[Axes]:
    """Loss and accuracy over epochs from :meth:`helpers.Trainer.fit_history`, training (solid) and
    validation (dashed) in two panels."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    prefix = f"{label}: " if label else ""
    for key, style in (("train", "-"), ("val", "--")):
        if f"{key}_loss" not in history:
            continue
        name = "training" if key == "train" else "validation"
        line = axes[0].plot(history["epoch"], history[f"{key}_loss"], style, label=f"{prefix}{name}")[0]
        axes[1].plot(history["epoch"], history[f"{key}_accuracy"], style, color=line.get_color())
    axes[0].set(xlabel="epoch", ylabel="loss (nats)")
    axes[1].set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))
    axes[0].legend(fontsize="small")
    return axes


def plot_confusion(matrix: Array, *, ax: Axes | None = None, title: str | None = None) -> Axes:
    """A confusion matrix (row = true class, column = predicted), with the count in each cell."""
    matrix = np.asarray(matrix)
    ax = ax or plt.figure(figsize=(3.6, 3.2)).gca()
    ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        color = "white" if count > matrix.max() / 2 else "black"
        ax.text(j, i, str(count), ha="center", va="center", color=color)
    ticks = np.arange(matrix.shape[0])
    ax.set(xticks=ticks, yticks=ticks, xlabel="predicted class", ylabel="true class")
    if title:
        ax.set_title(title)
    return ax
