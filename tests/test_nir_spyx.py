"""helpers.nir_spyx: the exported graph run by a second simulator, spyx, agrees spike for spike up to
rounding: every trace whose spikes differ starts to differ where our membrane was within float32
rounding of the threshold (helpers.spike_agreement), on any CPU."""

import brainstate
import brainunit as u
import jax.numpy as jnp
import numpy as np
import pytest

import helpers
from helpers import nir_spyx

pytest.importorskip("spyx")  # pinned in environment.yml; skipped only where it is not installed

#: mV: spyx and brainpy compute the membrane (about 1 mV) in float32 in another order; they differ by a
#: few units of float32's last place (1.2e-7 at 1 mV) per step, so 1e-4 mV is hundreds of times that
MARGIN = 1e-4


@pytest.mark.slow
def test_spyx_agrees_spike_for_spike():
    net = helpers.SNN(12, 32, 3, input_scale=20.0)
    data = jnp.asarray(np.random.default_rng(0).random((40, 6, 12)) < 0.2, brainstate.environ.dftype())
    record = net.record(data)
    ours = np.asarray(record["spikes"])
    assert 50 < ours.sum() < ours.size / 2  # many spikes, many silences
    theirs = nir_spyx.run_spyx(helpers.to_nir(net), np.asarray(data), 1.0 * u.ms)
    agreement = helpers.spike_agreement(ours, theirs["spikes"], record["voltage"], 1.0, margin=MARGIN)
    assert agreement["unexplained"] == 0, agreement  # every difference starts at a rounding-close call
    assert agreement["traces"] <= agreement["near"]
    same = ~(theirs["spikes"] != ours).any(axis=(0, 2))  # the examples whose spikes all agree
    assert same.sum() >= len(same) - agreement["traces"]
    np.testing.assert_allclose(theirs["output"][:, same], np.asarray(record["output"])[:, same], atol=1e-4)


@pytest.mark.slow
def test_without_the_conversion_spyx_differs_or_refuses():
    import spyx.nir

    net = helpers.SNN(12, 32, 3, input_scale=20.0)
    graph = helpers.to_nir(net)
    data = jnp.asarray(np.random.default_rng(0).random((40, 6, 12)) < 0.2, jnp.float32)
    with pytest.raises(ValueError, match="LI"):  # our readout, a standalone LI, is refused
        spyx.nir.from_nir(graph, data, dt=1.0)
    # the hidden layer as exported (no conversion): Euler's decay, gains ignored: other spikes
    graph.nodes.pop("readout_layer"), graph.nodes.pop("readout")
    graph.edges = [("input", "input_layer"), ("input_layer", "neurons"), ("neurons", "output")]
    graph.nodes["output"] = type(graph.nodes["output"])(output_type={"output": np.array([32])})
    _, raw = spyx.nir.from_nir(graph, jnp.concatenate([data, jnp.zeros_like(data[:1])]), dt=1.0)
    assert not np.array_equal(np.asarray(raw)[1:], np.asarray(net.record(data)["spikes"]))


def test_spyx_graph_conversion():
    net = helpers.SNN(12, 4, 3)
    converted = nir_spyx.spyx_graph(helpers.to_nir(net), 1.0 * u.ms)
    lif = converted.nodes["neurons"]
    np.testing.assert_allclose(1 - 1.0 / lif.tau_syn, np.exp(-1 / 10), rtol=1e-12)  # Euler's alpha = ours
    np.testing.assert_allclose(1 - 1.0 / lif.tau_mem, np.exp(-1 / 20), rtol=1e-12)
    assert "readout" not in converted.nodes  # spyx has no standalone LI
    with pytest.raises(ValueError, match="through"):
        nir_spyx.spyx_graph(helpers.to_nir(net), 1.0 * u.ms, through="readout")
