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


@pytest.fixture
def train_usage_error(capsys):
    """A function that runs ``python -m helpers train ARGS --out OUT`` in-process, expects a one-line
    usage error (exit status 2, no traceback, nothing written) and returns its message."""
    from helpers.cli import main

    prefix = "python -m helpers train: error: "

    def run(args, out) -> str:
        with pytest.raises(SystemExit) as stop:
            main(["train", *args, "--out", str(out)])
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("usage: python -m helpers") and "Traceback" not in err
        assert not out.exists()
        assert err.splitlines()[-1].startswith(prefix)
        return err.splitlines()[-1].removeprefix(prefix)

    return run
