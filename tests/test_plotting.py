import brainunit as u
import matplotlib.pyplot as plt
import numpy as np
import pytest

import helpers


def test_figures_draw_what_they_are_given(small_batch):
    spikes, labels = small_batch
    net = helpers.SNN()
    traces = net.record(spikes)

    ax = helpers.plot_raster(spikes, example=1)
    assert len(ax.collections[0].get_offsets()) == int(np.asarray(spikes[:, 1]).sum())

    fig = helpers.plot_network_activity(spikes, traces, example=2, v_threshold=net.v_threshold)
    assert len(fig.axes) == 4
    threshold_line = [line for line in fig.axes[2].lines if line.get_label() == "threshold"][0]
    assert threshold_line.get_ydata()[0] == 1.0

    ax = helpers.plot_readout(traces["output"], example=0)
    assert len(ax.lines) == 2

    losses = np.linspace(0.7, 0.1, 50)
    ax = helpers.plot_loss(losses, log=True)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), losses)
    assert ax.get_yscale() == "log"
    plt.close("all")


def test_raster_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"shape \[T, B, N\] or \[T, N\]"):
        helpers.plot_raster(np.zeros(5))


def test_time_axis_uses_dt():
    ax = helpers.plot_readout(np.zeros((10, 1, 2)), dt=0.5 * u.ms)
    assert ax.lines[0].get_xdata()[-1] == pytest.approx(5.0)
    plt.close("all")


def test_history_and_confusion_plots():
    history = {
        "epoch": np.array([0, 10]),
        "train_loss": np.array([1.0, 0.5]),
        "train_accuracy": np.array([0.3, 0.8]),
        "val_loss": np.array([1.0, 0.7]),
        "val_accuracy": np.array([0.3, 0.6]),
    }
    axes = helpers.plot_history(history)
    assert len(axes[0].lines) == 2 and len(axes[1].lines) == 2
    np.testing.assert_allclose(axes[1].lines[1].get_ydata(), [0.3, 0.6])
    ax = helpers.plot_confusion(np.array([[3, 1], [0, 4]]))
    assert [t.get_text() for t in ax.texts] == ["3", "1", "0", "4"]
    plt.close("all")
