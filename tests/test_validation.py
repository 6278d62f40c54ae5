"""helpers.validation: each rule, with every kind of bad value it refuses. The module tests check only
that each argument is checked (one bad value per argument), so each case lives in one place."""

import brainunit as u
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import validation as v


@pytest.mark.parametrize("value", [1, 7, np.int64(3)])
def test_positive_int_accepts_integers(value):
    assert v.check_positive_int("n", value) == int(value)
    assert type(v.check_positive_int("n", value)) is int


@pytest.mark.parametrize(
    "value, error",
    [
        (0, ValueError),
        (-3, ValueError),
        (2.0, TypeError),
        (True, TypeError),
        ("4", TypeError),
        (None, TypeError),
    ],
)
def test_positive_int_refuses(value, error):
    with pytest.raises(error, match="n must be a positive integer"):
        v.check_positive_int("n", value)


def test_non_negative_int():
    assert v.check_non_negative_int("seed", 0) == 0
    for bad in (-1, "zero", 1.0, False):
        with pytest.raises(ValueError, match="seed must be a non-negative integer, got"):
            v.check_non_negative_int("seed", bad)
    with pytest.raises(ValueError, match="must be a non-negative integer, a RandomState or None"):
        v.check_non_negative_int("seed", -1, alternatives="a RandomState or None")


@pytest.mark.parametrize("value", [0, 7, 2**32 - 1, np.int64(3), np.uint32(2**32 - 1)])
def test_seed_accepts_32_bit_integers(value):
    assert v.check_seed("seed", value) == int(value) and type(v.check_seed("seed", value)) is int


@pytest.mark.parametrize(
    "value", [-1, 2**32, 2**64, 99999999999999999999, np.uint64(2**63), 1.0, True, "3", None]
)
def test_seed_refuses_what_is_not_a_32_bit_integer(value):
    """2**32 would wrap around to seed 0's numbers; it is refused, with the reason."""
    with pytest.raises(
        ValueError,
        match=r"seed must be an integer from 0 to 2\*\*32 - 1 = 4294967295 \(seeds are 32-bit\), got",
    ):
        v.check_seed("seed", value)
    with pytest.raises(ValueError, match=r"4294967295, a RandomState or None \(seeds"):
        v.check_seed("seed", value, alternatives="a RandomState or None")


def test_positive_number():
    assert v.check_positive_number("lr", 3e-3) == 3e-3
    assert v.check_positive_number("lr", np.float32(0.5)) == 0.5
    for bad in (0.0, -1.0, float("inf"), float("nan"), True, "1e-3", 1e-3 * u.ms):
        with pytest.raises(ValueError, match="lr must be a positive, finite number"):
            v.check_positive_number("lr", bad)


def test_positive_quantity():
    assert v.check_positive_quantity("tau", 10 * u.ms, u.ms) == 10 * u.ms
    assert v.check_positive_quantity("tau", 0.01 * u.second, u.ms) == 0.01 * u.second  # any time unit
    for bad in (20.0, 10 * u.mV):
        with pytest.raises(TypeError, match="tau must be a quantity with units of"):
            v.check_positive_quantity("tau", bad, u.ms)
    for bad in (0 * u.ms, -1 * u.ms, float("nan") * u.ms, jnp.ones(2) * u.ms):
        with pytest.raises(ValueError, match="tau must be a positive, finite scalar"):
            v.check_positive_quantity("tau", bad, u.ms)


def test_non_negative_quantity():
    assert v.check_non_negative_quantity("jitter", 0 * u.ms, u.ms) == 0 * u.ms
    with pytest.raises(TypeError, match="jitter must be a quantity with units of"):
        v.check_non_negative_quantity("jitter", 3.0, u.ms)
    for bad in (-1 * u.ms, float("nan") * u.ms, float("inf") * u.ms, jnp.ones(2) * u.ms):
        with pytest.raises(ValueError, match="jitter must be a non-negative, finite scalar"):
            v.check_non_negative_quantity("jitter", bad, u.ms)


def test_dt_must_be_set():
    import brainstate

    assert v.get_dt() == 1.0 * u.ms
    brainstate.environ.pop("dt")  # as in a fresh process (the autouse fixture sets it again)
    with pytest.raises(RuntimeError, match=r"dt is not set: call brainstate.environ.set\(dt=1.0 \* u.ms\)"):
        v.get_dt()


def test_rate_per_step():
    assert v.check_rate_per_step("rate", 5 * u.Hz, 1 * u.ms) == pytest.approx(0.005)
    with pytest.raises(ValueError, match=r"rate \* dt must be a probability <= 1"):
        v.check_rate_per_step("rate", 2000 * u.Hz, 1 * u.ms)


def test_one_of_instance_and_bool():
    assert v.check_one_of("readout_method", "max", ("mean", "max")) == "max"
    with pytest.raises(ValueError, match=r"readout_method must be one of \['max', 'mean'\], got 'sum'"):
        v.check_one_of("readout_method", "sum", ("mean", "max"))
    with pytest.raises(TypeError, match="net must be a helpers.SNN, got object"):
        v.check_instance("net", object(), int, "a helpers.SNN")
    assert v.check_callable("f", abs, "a function") is abs
    for bad in ("relu", None, 3):
        with pytest.raises(TypeError, match="surrogate must be a function or a Surrogate, got"):
            v.check_callable("surrogate", bad, "a function or a Surrogate")
    assert v.check_bool("flag", False) is False
    with pytest.raises(TypeError, match="flag must be True or False"):
        v.check_bool("flag", "yes")


@pytest.mark.parametrize(
    "spikes, error, message",
    [
        (jnp.zeros((10, 2, 50), bool), ValueError, "50 input channels but the network expects n_inputs=100"),
        (jnp.zeros((10, 100), bool), ValueError, r"shape \[T, B, 100\] \(time, batch, inputs\)"),
        (jnp.zeros((10, 2, 100), jnp.int32), TypeError, "bool or floating point"),
        (jnp.zeros((0, 2, 100), bool), ValueError, "at least one time step"),
        (jnp.full((10, 2, 100), jnp.nan), ValueError, "NaN or infinite"),
        (jnp.full((10, 2, 100), 2.0), ValueError, r"must lie in \[0, 1\] .*got values from 2 to 2"),
        (jnp.full((10, 2, 100), -1.0), ValueError, r"must lie in \[0, 1\] .*got values from -1 to -1"),
        (jnp.zeros((10, 2, 100)) * u.mA, TypeError, "unitless"),
        ([[0, 1]], TypeError, "must be an array"),
    ],
)
def test_spikes_refused(spikes, error, message):
    with pytest.raises(error, match=message):
        v.check_spikes(spikes, 100)


def test_graded_spikes_in_0_1_pass():
    """Values between 0 and 1 are graded input for the dense product (events refuse them)."""
    v.check_spikes(np.full((3, 2, 100), 0.5, np.float32), 100)


def test_spikes_of_any_width():
    v.check_spikes(np.zeros((3, 2, 7), bool))
    with pytest.raises(ValueError, match=r"shape \[T, B, N\]"):
        v.check_spikes(np.zeros((3, 7), bool))


@pytest.mark.parametrize(
    "labels, error, message",
    [
        (jnp.array([0, 1, 2, 0, 1, 0]), ValueError, r"labels must lie in \[0, 1\] for 2 classes"),
        (jnp.array([0, 1, -1, 0, 1, 0]), ValueError, r"labels must lie in \[0, 1\]"),
        (jnp.zeros((6, 1), jnp.int32), ValueError, r"labels must have shape \[B\]"),
        (jnp.zeros(5, jnp.int32), ValueError, "batch mismatch: spikes hold 6 examples but labels hold 5"),
        (jnp.zeros(6), TypeError, "labels must be integers"),
        ([0, 1, 0, 1, 0, 1], TypeError, "labels must be an integer array"),
    ],
)
def test_labels_refused(labels, error, message):
    with pytest.raises(error, match=message):
        v.check_labels(labels, 6, 2)


@pytest.mark.parametrize("value", [2, 8, 16, np.int64(4)])
def test_check_bits_accepts_widths_from_2_to_16(value):
    assert v.check_bits("bits", value) == int(value) and type(v.check_bits("bits", value)) is int


@pytest.mark.parametrize("value", [1, 17, 0, -8, 8.0, True, "8", None])
def test_check_bits_refuses_anything_else(value):
    with pytest.raises(ValueError, match="bits must be an integer from 2 to 16"):
        v.check_bits("bits", value)
