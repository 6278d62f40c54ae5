"""helpers.quantise: integers of the right range, one scale per layer, the original left alone."""

import brainstate
import brainunit as u
import numpy as np
import pytest

import helpers


def test_quantise_array_range_and_error():
    values = np.random.default_rng(0).normal(size=1000)
    for bits in (2, 4, 8, 16):
        integers, scale = helpers.quantise_array(values, bits)
        bound = 2 ** (bits - 1) - 1
        assert integers.dtype == np.int32 and np.abs(integers).max() == bound  # the largest value is used
        assert scale == pytest.approx(np.abs(values).max() / bound)
        assert np.abs(integers * scale - values).max() <= scale / 2 * (1 + 1e-12)  # nearest multiple
    assert helpers.quantise_array(np.zeros(3), 8)[1] == 1.0
    for bad in (1, 17, 0):
        with pytest.raises(ValueError, match="bits"):
            helpers.quantise_array(values, bad)


def test_quantised_network():
    net = helpers.SNN(20, 16, 3)
    before = {path: np.asarray(u.get_magnitude(s.value["weight"])) for path, s in net.states().items()
              if path[-1] == "weight"}  # fmt: skip
    for bits in (4, 8):
        copy, scales = helpers.quantised(net, bits)
        assert set(scales) == {"input_layer", "readout_layer"}
        for name, scale in scales.items():
            params = getattr(copy, name).weight.value
            for key in ("weight", "bias"):
                steps = np.asarray(u.get_magnitude(params[key])) / scale
                np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)  # multiples of the scale
                assert np.abs(np.round(steps)).max() <= 2 ** (bits - 1) - 1
        assert u.get_unit(copy.input_layer.weight.value["weight"]) == u.mA
    after = {path: np.asarray(u.get_magnitude(s.value["weight"])) for path, s in net.states().items()
             if path[-1] == "weight"}  # fmt: skip
    assert all(np.array_equal(before[key], after[key]) for key in before)  # the original is untouched


@pytest.mark.slow
def test_sixteen_bits_barely_change_the_output():
    net = helpers.SNN(20, 16, 3, input_scale=20.0)
    data = brainstate.random.rand(30, 4, 20) < 0.2
    data = data.astype(brainstate.environ.dftype())
    copy, _ = helpers.quantised(net, 16)
    np.testing.assert_allclose(np.asarray(copy.simulate(data)), np.asarray(net.simulate(data)), atol=1e-3)
