"""helpers.realdata: offline real data, fixed splits, spike encodings."""

import os
import random

import brainstate
import brainunit as u
import numpy as np
import pytest

from helpers import realdata as D


@pytest.fixture(scope="module")
def digits():
    return D.load_digits()


def test_digits_splits_are_fixed_disjoint_stratified_and_cover_the_dataset(digits):
    assert digits.sizes() == {"train": 1078, "val": 269, "test": 450}
    for x, y in digits:
        assert x.dtype == np.float32 and x.shape == (len(y), 64) and y.dtype == np.int32
        assert x.min() >= 0 and x.max() <= 1
        counts = np.bincount(y, minlength=10)
        assert counts.max() - counts.min() <= 6  # every class in every part, in proportion
    from sklearn.datasets import load_digits

    # the parts together are exactly the dataset, each image once (compared as sorted multisets)
    all_x = np.concatenate([x for x, _ in digits]).astype(np.float64)
    raw = load_digits().data / 16.0
    np.testing.assert_array_equal(np.unique(all_x, axis=0, return_counts=True)[1].sum(), len(raw))
    np.testing.assert_array_equal(all_x[np.lexsort(all_x.T)], raw[np.lexsort(raw.T)])
    again = D.load_digits()
    for a, b in zip(digits, again, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
    other = D.load_digits(seed=1)
    assert not np.array_equal(other.test[1], digits.test[1]) or not np.array_equal(
        other.test[0], digits.test[0]
    )


def test_digits_pixels_are_the_raw_intensities_over_16(digits):
    from sklearn.datasets import load_digits

    raw = load_digits()
    x, y = digits.test
    # every test image is one of the raw images, scaled
    index = {row.tobytes(): label for row, label in zip(raw.data / 16.0, raw.target, strict=True)}
    assert all(index[row.astype(np.float64).tobytes()] == label for row, label in zip(x, y, strict=True))


def test_stratified_split_takes_the_fraction_of_every_class():
    y = np.repeat(np.arange(3), [10, 20, 30])
    rest, part = D.stratified_split(y, 0.5, seed=0)
    assert np.bincount(y[part]).tolist() == [5, 10, 15]
    assert sorted(np.concatenate([rest, part]).tolist()) == list(range(60))


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, True, "0.2"])
def test_bad_fractions_are_refused(bad):
    with pytest.raises(ValueError, match="between 0 and 1"):
        D.load_digits(test_fraction=bad)


def test_fractions_must_leave_training_data():
    with pytest.raises(ValueError, match="leave examples to train on"):
        D.load_digits(val_fraction=0.5, test_fraction=0.5)


@pytest.mark.parametrize("bad", [-1, 1.0, "0", None, 2**32])
def test_bad_seeds_are_refused(bad):
    with pytest.raises(ValueError, match=r"seed must be an integer from 0 to 2\*\*32 - 1"):
        D.load_digits(seed=bad)


@pytest.mark.slow
def test_mnist1d_is_generated_offline_without_side_effects(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    D._mnist1d_raw.cache_clear()
    np.random.seed(123)
    random.seed(123)
    np_before, py_before = np.random.get_state()[1].copy(), random.getstate()
    splits = D.load_mnist1d()
    assert os.listdir(tmp_path) == [], "generating MNIST-1D wrote a file"
    np.testing.assert_array_equal(np.random.get_state()[1], np_before)
    assert random.getstate() == py_before
    assert splits.sizes() == {"train": 3200, "val": 800, "test": 1000}
    for x, y in splits:
        assert x.dtype == np.float32 and x.shape == (len(y), 40) and y.dtype == np.int32
        assert set(np.unique(y)) == set(range(10))
    all_x = np.concatenate([x for x, _ in splits])
    assert abs(all_x.mean()) < 0.05 and abs(all_x.std() - 1) < 0.05  # standardised by the package


@pytest.mark.slow
def test_rate_code_fires_at_the_poisson_probability():
    x = np.tile(np.array([[0.0, 0.5, 1.0]], np.float32), (2000, 1))
    spikes = D.rate_code(x, 50, max_rate=200 * u.Hz, seed=1)
    assert spikes.shape == (50, 2000, 3) and spikes.dtype == bool
    expected = 1 - np.exp(-np.array([0.0, 0.1, 0.2]))  # P(Poisson(rate * dt) > 0)
    np.testing.assert_allclose(spikes.mean(axis=(0, 1)), expected, atol=0.005)
    np.testing.assert_array_equal(spikes, D.rate_code(x, 50, max_rate=200 * u.Hz, seed=1))
    assert not np.array_equal(spikes, D.rate_code(x, 50, max_rate=200 * u.Hz, seed=2))


def test_latency_code_fires_once_earlier_for_brighter_values():
    x = np.array([[0.0, 0.005, 0.25, 0.5, 1.0]], np.float32)
    spikes = D.latency_code(x, 10)
    assert spikes.shape == (10, 1, 5) and spikes.dtype == bool
    counts = spikes.sum(axis=0)[0]
    assert counts.tolist() == [0, 0, 1, 1, 1]  # values below the threshold never fire
    times = spikes[:, 0].argmax(axis=0)[2:]
    assert times.tolist() == [7, 4, 0]  # round(9 * (1 - v)), half to even: 6.75 -> 7, 4.5 -> 4, 0


def test_encoders_refuse_bad_input():
    good = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"lie in \[0.0, 1.0\]"):
        D.rate_code(good + 2, 5)
    with pytest.raises(ValueError, match=r"shape \[N, F\]"):
        D.latency_code(np.zeros((2, 3, 4), np.float32), 5)
    with pytest.raises(ValueError, match="float array"):
        D.latency_code(np.zeros((2, 3), int), 5)
    with pytest.raises(ValueError, match="NaN"):
        D.latency_code(good + np.nan, 5)
    with pytest.raises(TypeError, match="frequency"):
        D.rate_code(good, 5, max_rate=100.0)
    with pytest.raises(TypeError, match="positive integer"):
        D.rate_code(good, 5.0)
    with pytest.raises(TypeError, match="Quantity"):
        D.latency_code(good * u.mV, 5)


def test_encoders_need_dt_in_milliseconds():
    brainstate.environ.set(dt=0.001 * u.second)
    with pytest.raises(ValueError, match="milliseconds"):
        D.latency_code(np.zeros((2, 3), np.float32), 5)


def test_level_crossings_mark_up_and_down_crossings():
    x = np.array([[0.0, 1.5, 0.5, 2.5, 2.5, -1.0]], np.float32)
    spikes = D.level_crossings(x, [1.0, 2.0])  # channels: up 1, down 1, up 2, down 2
    assert spikes.shape == (6, 1, 4) and spikes.dtype == bool
    expected = np.array(
        [[0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 1]], bool
    )
    np.testing.assert_array_equal(spikes[:, 0], expected)
    with pytest.raises(ValueError, match="strictly increasing"):
        D.level_crossings(x, [2.0, 1.0])
    with pytest.raises(ValueError, match="non-empty"):
        D.level_crossings(x, [])


def test_spike_counts_sum_over_time():
    spikes = np.zeros((4, 2, 3), bool)
    spikes[:, 1, 2] = True
    counts = D.spike_counts(spikes)
    assert counts.dtype == np.float32 and counts.tolist() == [[0, 0, 0], [0, 0, 4]]
    with pytest.raises(ValueError, match=r"\[T, N, F\]"):
        D.spike_counts(np.zeros((4, 2)))


@pytest.mark.slow
def test_encode_splits_encodes_every_part_once(digits):
    calls = []

    def encode(x):
        calls.append(x.shape)
        return D.latency_code(x, 5)

    encoded = D.encode_splits(digits, encode)
    assert calls == [(1797, 64)]
    for (spikes, labels), (x, y) in zip(encoded, digits, strict=True):
        np.testing.assert_array_equal(spikes, D.latency_code(x, 5))
        np.testing.assert_array_equal(labels, y)
    with pytest.raises(ValueError, match=r"spikes \[T, 1797, channels\]"):
        D.encode_splits(digits, lambda x: x)
    with pytest.raises(TypeError, match="Splits"):
        D.encode_splits(digits.train, encode)


@pytest.mark.slow
def test_the_command_lines_sizes_are_the_datasets():
    """helpers.cli estimates memory from these counts before loading anything."""
    from helpers.cli_datasets import N_EXAMPLES

    assert sum(D.load_digits().sizes().values()) == N_EXAMPLES["digits"]
    assert sum(D.load_mnist1d().sizes().values()) == N_EXAMPLES["mnist1d"]
