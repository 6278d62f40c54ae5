"""Fixtures shared by the unit tests of ``helpers``."""

import brainstate
import brainunit as u
import matplotlib
import pytest

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def one_ms_steps():
    """Every test runs with dt = 1 ms and a fixed global seed, as the notebooks do."""
    brainstate.environ.set(dt=1.0 * u.ms)
    brainstate.random.seed(0)
    yield


@pytest.fixture
def small_batch():
    """A small dataset: 20 steps, 6 examples, 100 inputs at 50 Hz."""
    import helpers

    return helpers.poisson_dataset(n_steps=20, batch_size=6, n_inputs=100, rate=50.0 * u.Hz, seed=1)


@pytest.fixture
def shrink_splits(monkeypatch):
    """A function that makes the command line load real splits cut to ``sizes`` examples per part
    (train, validation, test), and returns that loader."""
    from helpers import cli_datasets, realdata

    def shrink(sizes: tuple[int, int, int]):
        real = cli_datasets.load_splits

        def load(dataset, *where):
            splits = real(dataset, *where)
            return realdata.Splits(*((x[:n], y[:n]) for (x, y), n in zip(splits, sizes, strict=True)))

        monkeypatch.setattr(cli_datasets, "load_splits", load)
        return load

    return shrink
