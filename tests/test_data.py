import brainstate
import brainunit as u
import numpy as np
import pytest

import helpers


def test_shapes_and_dtypes():
    spikes, labels = helpers.poisson_dataset()
    assert spikes.shape == (100, 128, 100) and spikes.dtype == bool
    assert labels.shape == (128,) and labels.dtype == np.int32
    assert set(np.unique(np.asarray(labels))) <= {0, 1}


def test_empirical_rate_matches_request():
    spikes = helpers.poisson_spikes(200, 64, 100, 20.0 * u.Hz, seed=3)
    p = 0.02
    n = spikes.size
    rate_hz = float(np.asarray(spikes).mean()) * 1000.0
    standard_error_hz = np.sqrt(p * (1 - p) / n) * 1000.0
    assert abs(rate_hz - 20.0) < 4 * standard_error_hz


def test_labels_are_roughly_balanced():
    labels = np.asarray(helpers.random_labels(4000, seed=5))
    assert abs(labels.mean() - 0.5) < 4 * np.sqrt(0.25 / 4000)


def test_integer_seed_is_reproducible_and_independent_of_global_state():
    a = helpers.poisson_dataset(20, 8, 10, seed=7)
    brainstate.random.seed(123)
    b = helpers.poisson_dataset(20, 8, 10, seed=7)
    c = helpers.poisson_dataset(20, 8, 10, seed=8)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_global_seed_reproduces_the_pages_draw_order():
    """seed(0), build the network, then draw: the page's own sequence of calls."""
    brainstate.random.seed(0)
    helpers.SNN()
    spikes, labels = helpers.poisson_dataset()
    brainstate.random.seed(0)
    helpers.SNN()
    p = 5 * u.Hz * brainstate.environ.get_dt()
    page_spikes = brainstate.random.rand(100, 128, 100) < p
    page_labels = u.math.asarray(brainstate.random.rand(128) < 0.5, dtype=int)
    np.testing.assert_array_equal(spikes, page_spikes)
    np.testing.assert_array_equal(labels, page_labels)


def test_explicit_dt_is_used():
    spikes = helpers.poisson_spikes(1000, 4, 50, 100 * u.Hz, dt=0.1 * u.ms, seed=0)
    assert abs(float(np.asarray(spikes).mean()) - 0.01) < 0.002


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"rate": -5 * u.Hz}, ValueError, "rate must be a positive, finite scalar"),
        ({"rate": 2000 * u.Hz}, ValueError, "rate \\* dt must be a probability <= 1"),
        ({"n_steps": 0}, ValueError, "n_steps must be a positive integer"),
        ({"batch_size": -1}, ValueError, "batch_size must be a positive integer"),
        ({"n_inputs": 3.5}, TypeError, "n_inputs must be a positive integer"),
        ({"dt": 0 * u.ms}, ValueError, "dt must be a positive, finite scalar"),
        ({"seed": -1}, ValueError, "seed must be an integer from 0 to 2.*, a RandomState or None"),
        (
            {"seed": 2**64},
            ValueError,
            r"seed must be an integer from 0 to 2\*\*32 - 1 .*\(seeds are 32-bit\)",
        ),
    ],
)
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        helpers.poisson_dataset(**kwargs)


def test_numpy_integer_seeds_are_plain_seeds():
    for make in (
        helpers.poisson_dataset,
        lambda seed: helpers.pattern_dataset(8, seed=seed),
        lambda seed: helpers.timing_dataset(8, seed=seed),
    ):
        a, b = make(seed=np.int64(3)), make(seed=3)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_pattern_dataset_is_balanced_reproducible_and_structured():
    spikes, labels = helpers.pattern_dataset(200, n_classes=4, seed=3)
    assert spikes.shape == (100, 200, 100) and spikes.dtype == bool and labels.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(np.asarray(labels)), [50, 50, 50, 50])
    again = helpers.pattern_dataset(200, n_classes=4, seed=3)
    np.testing.assert_array_equal(spikes, again[0])
    np.testing.assert_array_equal(labels, again[1])
    # the templates make examples of one class more alike than examples of different classes
    x = np.asarray(spikes, dtype=float).reshape(100, 200, 100).transpose(1, 0, 2).reshape(200, -1)
    y = np.asarray(labels)
    same = np.mean([x[i] @ x[j] for i in range(40) for j in range(40) if i != j and y[i] == y[j]])
    other = np.mean([x[i] @ x[j] for i in range(40) for j in range(40) if y[i] != y[j]])
    assert same > 2 * other
    noise_only = helpers.pattern_dataset(200, pattern_fraction=1e-9, seed=3)[0]
    assert abs(float(np.asarray(noise_only).mean()) - 0.01) < 0.001  # 10 Hz background at 1 ms


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_classes": 1}, "n_classes must be at least 2"),
        ({"pattern_fraction": 0.0}, r"pattern_fraction must be in \(0, 1\]"),
        ({"drop_probability": 1.0}, r"drop_probability must be in \[0, 1\)"),
        ({"jitter": 3.0}, "jitter must be a quantity with units of"),
        ({"jitter": float("nan") * u.ms}, "jitter must be a non-negative, finite scalar, got nan"),
        ({"background_rate": 5 * u.ms}, "background_rate must be a quantity with units of"),
        ({"seed": 2**64}, r"seed must be an integer from 0 to 2\*\*32 - 1"),
        ({"background_rate": 2000 * u.Hz}, r"background_rate \* dt must be a probability <= 1"),
        ({"n_inputs": 0}, "n_inputs must be a positive integer"),
    ],
)
def test_pattern_dataset_bad_arguments(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        helpers.pattern_dataset(10, **kwargs)


def test_split_batch():
    spikes, labels = helpers.poisson_dataset(10, 10, 5, seed=0)
    (a, ya), (b, yb) = helpers.split_batch(spikes, labels, 6, 4)
    assert a.shape == (10, 6, 5) and b.shape == (10, 4, 5)
    np.testing.assert_array_equal(np.concatenate([a, b], axis=1), spikes)
    np.testing.assert_array_equal(np.concatenate([ya, yb]), labels)
    with pytest.raises(ValueError, match="add up to 9, but the batch holds 10"):
        helpers.split_batch(spikes, labels, 5, 4)
    with pytest.raises(ValueError, match="give the size of every part"):
        helpers.split_batch(spikes, labels)
    with pytest.raises(ValueError, match="labels must have shape"):
        helpers.split_batch(spikes, labels[:3], 5, 5)


def test_timing_dataset_classes_differ_only_in_timing():
    spikes, labels = helpers.timing_dataset(400, n_classes=4, n_inputs=30, seed=2)
    assert spikes.shape == (100, 400, 30) and spikes.dtype == bool and labels.dtype == np.int32
    assert np.bincount(np.asarray(labels)).tolist() == [100] * 4
    again = helpers.timing_dataset(400, n_classes=4, n_inputs=30, seed=2)
    np.testing.assert_array_equal(again[0], spikes)
    assert not np.array_equal(helpers.timing_dataset(400, n_inputs=30, seed=3)[0], spikes)
    x, y = np.asarray(spikes), np.asarray(labels)
    counts = x.sum(axis=0)  # [B, N]
    assert counts.min() >= 1  # every input fires its template spike in every example
    per_class = np.stack([counts[y == c].mean(axis=0) for c in range(4)])  # [C, N]
    # the same expected count on every input in every class: one template spike plus the same noise
    assert np.abs(per_class - per_class.mean(axis=0)).max() < 0.6
    np.testing.assert_allclose(per_class.mean(), 1 + 0.01 * 100, atol=0.15)
    # without noise or jitter, each class is one permutation of the same set of spike times
    clean, clean_labels = helpers.timing_dataset(
        8, n_inputs=30, background_rate=1e-9 * u.Hz, jitter=0 * u.ms, seed=2
    )
    clean, clean_labels = np.asarray(clean), np.asarray(clean_labels)
    assert np.all(clean.sum(axis=0) == 1)
    first_time = clean.argmax(axis=0)  # [B, N]
    times = [sorted(first_time[b]) for b in range(8)]
    assert all(t == times[0] for t in times)  # the same set of times in every class
    templates = {int(c): tuple(first_time[clean_labels == c][0]) for c in clean_labels}
    assert len(set(templates.values())) == 4  # but in another order per class
    for b in range(8):
        assert tuple(first_time[b]) == templates[int(clean_labels[b])]


def test_timing_dataset_keeps_jittered_spikes_inside():
    spikes, _ = helpers.timing_dataset(
        50, n_steps=12, n_inputs=20, background_rate=1e-9 * u.Hz, jitter=5 * u.ms
    )
    assert np.all(np.asarray(spikes).sum(axis=0) == 1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_classes": 1}, "n_classes must be at least 2"),
        ({"jitter": 3.0}, "jitter must be a quantity with units of"),
        ({"jitter": float("nan") * u.ms}, "jitter must be a non-negative, finite scalar, got nan"),
        ({"background_rate": 5 * u.ms}, "background_rate must be a quantity with units of"),
        ({"background_rate": 2000 * u.Hz}, r"background_rate \* dt must be a probability <= 1"),
        ({"seed": 2**64}, r"seed must be an integer from 0 to 2\*\*32 - 1"),
        ({"n_steps": 8}, "leaves no room"),
    ],
)
def test_timing_dataset_bad_arguments(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        helpers.timing_dataset(10, **kwargs)
