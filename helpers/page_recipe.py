"""The original page's training recipe, as it wrote it, to compare ``helpers`` against on any machine.

The page this tutorial grew from builds its network from ``brainstate.nn.Sequential``, a weakly typed
zero bias, and a parameterless jitted step that closes over its data; it trains on the time-mean of
the readout and scores accuracy on its time-maximum. :func:`run_page_recipe` re-runs that recipe with
the installed versions, so that a reader can compare ``helpers`` with it *on their own machine*: the
page's printed numbers (:data:`PAGE_PRINTED`) came from other versions and another CPU.
"""

from __future__ import annotations

import brainpy
import brainstate
import braintools
import brainunit as u
import numpy as np

from helpers.diagnostics import count_compilations
from helpers.validation import check_positive_int

__all__ = ["PAGE_PRINTED", "run_page_recipe"]

#: What the original page printed (brainstate 0.4.0, its authors' machine), as text.
PAGE_PRINTED = {
    "accuracy before training (max readout)": "0.438",
    "loss at epoch 100": "0.5279",
    "loss at epoch 800": "0.0628",
    "accuracy after training (max readout)": "0.844",
}


class _PageSNN(brainstate.nn.Module):
    """The page's classifier: Linear -> Expon -> LIF -> Linear -> Expon, with the page's initialisers."""

    def __init__(self):
        super().__init__()
        scale = 7 * (1 - u.math.exp(-brainstate.environ.get_dt() / u.ms))
        self.i2r = brainstate.nn.Sequential(
            brainstate.nn.Linear(
                100,
                4,
                w_init=braintools.init.KaimingNormal(scale=scale, unit=u.mA),
                b_init=braintools.init.ZeroInit(unit=u.mA),
            ),
            brainpy.state.Expon(4, tau=10.0 * u.ms, g_initializer=braintools.init.Constant(0.0 * u.mA)),
        )
        self.r = brainpy.state.LIF(
            4,
            tau=20 * u.ms,
            V_rest=0 * u.mV,
            V_reset=0 * u.mV,
            V_th=1.0 * u.mV,
            spk_fun=braintools.surrogate.ReluGrad(),
        )
        self.r2o = brainstate.nn.Linear(4, 2, w_init=braintools.init.KaimingNormal())
        self.o = brainpy.state.Expon(2, tau=10.0 * u.ms, g_initializer=braintools.init.Constant(0.0))

    def update(self, spike):
        return self.o(self.r2o(self.r(self.i2r(spike))))


def run_page_recipe(epochs: int = 800) -> dict:
    """Run the page's code from seed 0 for ``epochs`` epochs (dt must be set, as on the page: 1 ms).

    Returns ``losses`` (``float [epochs]``, nats), ``accuracy_before`` and ``accuracy_after`` (max
    readout, as the page scores), and ``compilations`` (how often the page's step compiled: twice,
    because its weakly typed zero bias becomes strongly typed after the first update).
    """
    check_positive_int("epochs", epochs)
    brainstate.random.seed(0)
    net = _PageSNN()
    x = brainstate.random.rand(100, 128, 100) < 5 * u.Hz * brainstate.environ.get_dt()
    y = u.math.asarray(brainstate.random.rand(128) < 0.5, dtype=int)
    optimizer = braintools.optim.Adam(lr=3e-3)
    optimizer.register_trainable_weights(net.states(brainstate.ParamState))

    def accuracy() -> float:
        brainstate.nn.init_all_states(net, batch_size=128)
        outs = brainstate.transform.for_loop(net.update, x)
        return float(u.math.mean(u.math.argmax(u.math.max(outs, axis=0), axis=1) == y))

    def loss_fn():
        outs = u.math.mean(brainstate.transform.for_loop(net.update, x), axis=0)
        return braintools.metric.softmax_cross_entropy_with_integer_labels(outs, y).mean()

    @brainstate.transform.jit
    def step():
        brainstate.nn.init_all_states(net, batch_size=128)
        grads, loss = brainstate.transform.grad(
            loss_fn, net.states(brainstate.ParamState), return_value=True
        )()
        optimizer.update(grads)
        return loss

    accuracy_before = accuracy()
    with count_compilations() as compiled:
        losses = np.array([float(step()) for _ in range(epochs)])
    return {
        "losses": losses,
        "accuracy_before": accuracy_before,
        "accuracy_after": accuracy(),
        "compilations": compiled.jitted,
    }
