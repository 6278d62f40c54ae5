"""helpers.nir_export: the mapping to NIR against NIR's equations by hand, the round trip, the file
format, and the clear errors for what NIR (or our importer) cannot take."""

import brainstate
import brainunit as u
import jax.numpy as jnp
import numpy as np
import pytest

import helpers
from helpers.nir_export import NODE_NAMES

nir = pytest.importorskip("nir")  # pinned in environment.yml; skipped only where it is not installed


def spikes(n_steps=30, batch=4, n_inputs=12, p=0.2, seed=0):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.random((n_steps, batch, n_inputs)) < p, dtype=brainstate.environ.dftype())


def set_linear(layer, weight, bias, unit=None):
    weight, bias = jnp.asarray(weight, jnp.float32), jnp.asarray(bias, jnp.float32)
    layer.weight.value = (
        {"weight": weight * unit, "bias": bias * unit} if unit else {"weight": weight, "bias": bias}
    )


def test_one_neuron_against_nir_equations_by_hand():
    """One input, one CubaLIF neuron, one LI readout: the exported parameters, and the network's steps,
    against NIR's equations integrated by hand (exact decay, input held over each 1 ms step)."""
    net = helpers.SNN(1, 1, 1)  # tau_syn 10 ms, tau_mem 20 ms, tau_out 10 ms, threshold 1 mV
    set_linear(net.input_layer, [[10.0]], [0.0], u.mA)
    set_linear(net.readout_layer, [[2.0]], [0.5])
    graph = helpers.to_nir(net)
    lif, li = graph.nodes["neurons"], graph.nodes["readout"]
    alpha, beta, gamma = np.exp(-1 / 10), np.exp(-1 / 20), np.exp(-1 / 10)
    assert lif.tau_syn[0] == 10.0 and lif.tau_mem[0] == 20.0 and li.tau[0] == 10.0  # ms, as NIR documents
    assert lif.v_threshold[0] == 1.0 and lif.v_reset[0] == 0.0 and lif.v_leak[0] == 0.0  # mV
    assert lif.r[0] == 1.0  # ohm: 1 mA through it gives 1 mV
    np.testing.assert_allclose(lif.w_in[0], 1 / (1 - alpha), rtol=1e-15)
    np.testing.assert_allclose(li.r[0], 1 / (1 - gamma), rtol=1e-15)
    assert graph.nodes["input_layer"].weight[0, 0] == 10.0 and graph.metadata["dt"] == 1.0

    # NIR's equations by hand: tau_syn dI/dt = -I + w_in S; tau_mem dv/dt = -v + r I; tau dy/dt = -y + r x.
    # Over one step with the input held: x <- x e^{-dt/tau} + (1 - e^{-dt/tau}) * (gain * input).
    x = np.array([1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0])  # input spikes at steps 0 and 3
    current, v, z, y, expected = 0.0, 0.0, 0.0, 0.0, []
    for s in x:
        current = alpha * current + (1 - alpha) * lif.w_in[0] * (10.0 * s)
        v = beta * (v - 1.0 * z) + (1 - beta) * 1.0 * current  # soft reset: subtract the threshold
        z = float(v >= 1.0)
        y = gamma * y + (1 - gamma) * li.r[0] * (2.0 * z + 0.5)
        expected.append((current, v, z, y))
    expected = np.array(expected)
    assert 0 < expected[:, 2].sum() < len(x)  # the hand computation spikes, and not at every step
    record = net.record(jnp.asarray(x, jnp.float32)[:, None, None])
    np.testing.assert_allclose(
        np.asarray(u.get_magnitude(record["current"]))[:, 0, 0], expected[:, 0], rtol=1e-6
    )
    np.testing.assert_allclose(
        np.asarray(u.get_magnitude(record["voltage"]))[:, 0, 0], expected[:, 1], rtol=1e-5
    )
    assert np.asarray(record["spikes"])[:, 0, 0].tolist() == expected[:, 2].tolist()
    np.testing.assert_allclose(np.asarray(record["output"])[:, 0, 0], expected[:, 3], rtol=1e-6)


@pytest.mark.parametrize("train_tau_mem", [False, True])
@pytest.mark.slow
def test_round_trip_gives_identical_outputs(train_tau_mem, tmp_path):
    net = helpers.SNN(12, 16, 3, input_scale=20.0, train_tau_mem=train_tau_mem)
    if train_tau_mem:  # every neuron its own time constant
        net.neurons.log_tau.value = jnp.log(jnp.linspace(5.0, 40.0, 16, dtype=jnp.float32))
    data = spikes()
    path = helpers.write_nir(tmp_path / "net.nir", net)
    back = helpers.from_nir(helpers.read_nir(path))
    same = (
        "n_inputs",
        "n_hidden",
        "n_outputs",
        "tau_syn_ms",
        "tau_out_ms",
        "v_threshold_mV",
        "train_tau_mem",
    )
    assert all(back.config.get(key) == net.config.get(key) for key in same)
    ours, theirs = net.record(data), back.record(data)
    assert np.asarray(ours["spikes"]).sum() > 10  # the comparison sees spikes
    for key in ("spikes", "output"):
        assert np.array_equal(np.asarray(ours[key]), np.asarray(theirs[key])), key


def test_file_format(tmp_path):
    net = helpers.SNN(12, 5, 3)
    path = helpers.write_nir(tmp_path / "net.nir", net, metadata={"note": "test"})
    assert path.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"  # HDF5, as NIR stores graphs
    graph = nir.read(path)
    assert list(graph.nodes) == list(NODE_NAMES) or set(graph.nodes) == set(NODE_NAMES)
    assert [type(graph.nodes[name]).__name__ for name in NODE_NAMES] == list(helpers.nir_export.NODE_TYPES)
    assert sorted(graph.edges) == sorted(zip(NODE_NAMES[:-1], NODE_NAMES[1:], strict=True))
    assert graph.nodes["input_layer"].weight.shape == (5, 12)  # NIR's [out, in]
    assert graph.nodes["readout_layer"].weight.shape == (3, 5)
    params = net.input_layer.weight.value
    np.testing.assert_array_equal(graph.nodes["input_layer"].weight, np.asarray(params["weight"].mantissa).T)
    assert graph.metadata["dt"] == 1.0 and graph.metadata["note"] == "test"
    assert "subtract" in graph.metadata["reset"] and "ms" in graph.metadata["units"]


def test_simulate_nir_reads_the_graph_as_the_network_runs():
    net = helpers.SNN(12, 16, 3, input_scale=20.0)
    data = spikes()
    record = net.record(data)
    reference = helpers.simulate_nir(helpers.to_nir(net), np.asarray(data), 1.0 * u.ms, record=True)
    ours = np.asarray(record["spikes"])
    # float64 numpy against our float32: equal up to decisions that float32 rounding can flip
    agreement = helpers.spike_agreement(ours, reference["spikes"], record["voltage"], 1.0, margin=1e-4)
    assert agreement["unexplained"] == 0, agreement
    same = ~(reference["spikes"] != ours).any(axis=(0, 2))
    assert same.sum() >= len(same) - agreement["traces"]
    np.testing.assert_allclose(reference["output"][:, same], np.asarray(record["output"])[:, same], atol=1e-5)
    hard = helpers.simulate_nir(
        helpers.to_nir(net), np.asarray(data), 1.0 * u.ms, reset="to_v_reset", record=True
    )
    assert hard["output"].shape == reference["output"].shape
    differs = helpers.spike_agreement(ours, hard["spikes"], record["voltage"], 1.0, margin=1e-4)
    assert differs["unexplained"] > 0  # NIR's reset to v_reset, read to the letter, is another network


def test_spike_agreement_counts_and_explains():
    ours = np.zeros((4, 1, 2))
    ours[1, 0, 0] = ours[3, 0, 1] = 1
    voltage = np.full((4, 1, 2), 0.5)
    voltage[1, 0, 0] = 1.00001  # a call within the margin
    theirs = ours.copy()
    theirs[1, 0, 0] = 0  # flipped where rounding could flip it: explained
    theirs[2, 0, 0] = 1  # (the same trace: counted once)
    theirs[0, 0, 1] = 1  # flipped far from the threshold: unexplained
    got = helpers.spike_agreement(ours, theirs, voltage, 1.0, margin=1e-4)
    assert got == {"entries": 3, "traces": 2, "unexplained": 1, "near": 1, "total": 8}
    with pytest.raises(ValueError, match="one shape"):
        helpers.spike_agreement(ours, theirs[:2], voltage, 1.0, margin=1e-4)
    with pytest.raises(ValueError, match="margin"):
        helpers.spike_agreement(ours, theirs, voltage, 1.0, margin=0.0)


def test_recurrent_network_is_refused():
    with pytest.raises(helpers.NIRError, match="node 'recurrent_layer'"):
        helpers.to_nir(helpers.SNN(4, 3, 2, recurrent=True))
    with pytest.raises(TypeError, match="helpers.SNN"):
        helpers.to_nir("a network")


def _edit(graph, name, **fields):
    node = graph.nodes[name]
    for key, value in fields.items():
        setattr(node, key, value)
    return graph


CASES = {
    "a LIF for the CubaLIF": (
        lambda g: g.nodes.__setitem__(
            "neurons", nir.LIF(tau=np.ones(5), r=np.ones(5), v_leak=np.zeros(5), v_threshold=np.ones(5))
        ),
        "node 'neurons' (LIF)",
    ),
    "v_leak": (lambda g: _edit(g, "neurons", v_leak=np.full(5, 0.5)), "node 'neurons': v_leak must be 0"),
    "v_reset": (lambda g: _edit(g, "neurons", v_reset=np.full(5, 0.5)), "node 'neurons': v_reset must be 0"),
    "tau_syn per neuron": (
        lambda g: _edit(g, "neurons", tau_syn=np.arange(1.0, 6.0)),
        "node 'neurons': tau_syn must be the same for every neuron",
    ),
    "negative tau": (
        lambda g: _edit(g, "readout", tau=np.full(3, -1.0)),
        "node 'readout': tau must be positive",
    ),
    "no LI": (
        lambda g: (
            g.nodes.pop("readout"),
            g.edges.remove(("readout_layer", "readout")),
            g.edges.remove(("readout", "output")),
            g.edges.append(("readout_layer", "output")),
        ),
        "node 'output' (Output)",
    ),  # fmt: skip
    "an extra node": (
        lambda g: g.nodes.__setitem__("stray", nir.Scale(np.ones(3))),
        "node 'stray': not on the chain",
    ),
    "a wrong Affine": (
        lambda g: _edit(g, "readout_layer", weight=np.ones((3, 4)), bias=np.zeros(3)),
        "node 'readout_layer' (Affine): expected weight (3, 5)",
    ),
    "a recurrent edge": (lambda g: g.edges.append(("neurons", "input_layer")), "node 'neurons'"),
}


@pytest.mark.parametrize("case", CASES)
def test_import_errors_name_the_node_and_the_reason(case):
    graph = helpers.to_nir(helpers.SNN(12, 5, 3))
    change, message = CASES[case]
    change(graph)
    with pytest.raises(helpers.NIRError) as error:
        helpers.from_nir(graph)
    assert message in str(error.value)


def test_read_nir_refuses_other_files(tmp_path):
    other = tmp_path / "notes.nir"
    other.write_text("not a graph")
    with pytest.raises(helpers.NIRError, match="not a readable NIR file"):
        helpers.read_nir(other)
    with pytest.raises(FileNotFoundError):
        helpers.read_nir(tmp_path / "missing.nir")


@pytest.mark.slow
def test_load_network_from_a_checkpoint(tmp_path):
    net = helpers.SNN(12, 6, 3, input_scale=20.0, train_tau_mem=True)
    net.neurons.log_tau.value = jnp.log(jnp.linspace(5.0, 40.0, 6, dtype=jnp.float32))
    trainer = helpers.Trainer(net, readout_method="max")
    path = helpers.save_checkpoint(
        tmp_path / "checkpoint.msgpack", net, trainer.optimizer, epoch=3, losses=[1.0, 0.5, 0.25],
        readout_method="max", extra={"dataset": "random"},
    )  # fmt: skip
    data = spikes()
    for source in (path, tmp_path):  # the file, or its run folder
        loaded, info = helpers.load_network(source)
        assert loaded.config == net.config
        assert (
            info["epoch"] == 3 and info["readout_method"] == "max" and info["extra"] == {"dataset": "random"}
        )
        assert np.array_equal(np.asarray(loaded.simulate(data)), np.asarray(net.simulate(data)))


def test_load_network_refuses_what_it_cannot_build(tmp_path):
    import braintools

    net = helpers.SNN(12, 6, 3)
    trainer = helpers.Trainer(net)
    path = helpers.save_checkpoint(tmp_path / "c.msgpack", net, trainer.optimizer, epoch=0)
    raw = helpers.read_checkpoint(path)
    raw["config"]["n_layers"] = 2  # a network of a later version of this code
    braintools.file.msgpack_save(str(tmp_path / "later.msgpack"), raw, overwrite=True)
    with pytest.raises(helpers.CheckpointError, match=r"cannot build .*unknown \['n_layers'\]"):
        helpers.load_network(tmp_path / "later.msgpack")
    with pytest.raises(FileNotFoundError):
        helpers.load_network(tmp_path / "nothing.msgpack")
