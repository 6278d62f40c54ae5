"""helpers.shd: SHD-layout files read offline, binned into the tutorial's spikes, and trained on from
the command line. Every file here is written by the tests (``helpers.shd.write_synthetic``); SHD
itself is never needed and never downloaded."""

import json

import h5py
import numpy as np
import pytest

import helpers
from helpers import cli_datasets, shd
from helpers.cli import main as cli_main


@pytest.fixture
def shd_dir(tmp_path):
    folder = tmp_path / "shd"
    folder.mkdir()
    shd.write_synthetic(folder / "shd_train.h5", 80, seed=0)
    shd.write_synthetic(folder / "shd_test.h5", 40, seed=1)
    return folder


def test_reads_the_layout(shd_dir):
    recordings = shd.read(shd_dir / "shd_train.h5")
    assert len(recordings.times) == len(recordings.units) == 80
    assert list(recordings.labels[:3]) == [0, 1, 2] and recordings.labels.dtype == np.int32
    assert recordings.keys[:2] == ["class-0", "class-1"]
    assert all(np.all(np.diff(t) >= 0) for t in recordings.times)


def test_binning_by_hand():
    recordings = shd.Recordings(
        times=[np.array([0.0, 0.0095, 0.0101, 0.5]), np.array([0.02])],
        units=[np.array([0, 1, 699, 3]), np.array([350])],
        labels=np.array([0, 1], dtype=np.int32),
        speakers=np.zeros(2, dtype=np.int32),
        keys=[],
    )
    spikes = shd.bin_spikes(recordings, dt_ms=10.0, steps=3)
    assert spikes.shape == (3, 2, 700) and spikes.dtype == bool
    assert sorted(zip(*np.nonzero(spikes), strict=True)) == [(0, 0, 0), (0, 0, 1), (1, 0, 699), (2, 1, 350)]
    merged = shd.bin_spikes(recordings, dt_ms=10.0, steps=1, channels=350)  # pairs of channels
    assert merged[0, 0].sum() == 1 and merged[0, 0, 0]
    with pytest.raises(ValueError, match="channels must divide 700"):
        shd.bin_spikes(recordings, 10.0, 3, channels=300)
    with pytest.raises(ValueError, match="dt_ms must be a positive number"):
        shd.bin_spikes(recordings, 0, 3)


def test_fixed_splits(shd_dir):
    splits = shd.load(shd_dir, steps=50, val_fraction=0.25)
    assert splits.sizes() == {"train": 60, "val": 20, "test": 40}
    assert splits.train[0].shape == (50, 60, 700)
    again = shd.load(shd_dir, steps=50, val_fraction=0.25)
    np.testing.assert_array_equal(again.val[1], splits.val[1])
    assert set(splits.val[1]) == set(range(20))  # one of each class


def test_missing_or_malformed_files_say_where_shd_comes_from(tmp_path, shd_dir):
    with pytest.raises(shd.SHDFormatError, match="no such folder.*zenkelab.org"):
        shd.load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(shd.SHDFormatError, match="shd_train.h5: no such file.*zenkelab.org"):
        shd.load(tmp_path / "empty")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(shd.SHDFormatError, match="not an HDF5 file"):
        shd.read(tmp_path / "text.h5")
    with h5py.File(tmp_path / "partial.h5", "w") as handle:
        handle.create_dataset("labels", data=np.zeros(3, dtype=np.uint16))
    with pytest.raises(shd.SHDFormatError, match="lacks spikes/times, spikes/units, extra/speaker"):
        shd.read(tmp_path / "partial.h5")
    with h5py.File(shd_dir / "shd_test.h5", "a") as handle:
        del handle["labels"]
        handle.create_dataset("labels", data=np.full(40, 25, dtype=np.uint16))
    with pytest.raises(shd.SHDFormatError, match="labels must lie in 0..19"):
        shd.read(shd_dir / "shd_test.h5")
    assert shd.read(shd_dir / "shd_test.h5", "ssc").labels[0] == 25  # SSC has 35 classes


def test_cli_needs_the_files(tmp_path, capsys):
    for argv, message in (
        (["--dataset", "shd"], "--dataset shd needs --data-dir DIR"),
        (["--dataset", "shd", "--data-dir", str(tmp_path)], "shd_train.h5: no such file"),
        (["--dataset", "digits", "--data-dir", str(tmp_path)], "--data-dir: only for --dataset shd or ssc"),
        (["--data-dir", str(tmp_path)], "--data-dir: only for --dataset shd or ssc"),
    ):
        with pytest.raises(SystemExit) as stop:
            cli_main(["train", *argv, "--out", str(tmp_path / "run")])
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_cli_trains_on_an_shd_layout_file(shd_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli_datasets, "LOGISTIC_MAX_ITER", 50)
    monkeypatch.setattr(helpers.shd, "load", _with_quarter_validation(helpers.shd.load))
    out = tmp_path / "run"
    argv = [
        "--dataset",
        "shd",
        "--data-dir",
        str(shd_dir),
        "--steps",
        "20",
        "--hidden",
        "16",
        "--epochs",
        "2",
    ]
    assert cli_main(["train", *argv, "--batch", "16", "--no-progress", "--out", str(out)]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["dataset"] == "shd" and run["split_sizes"] == {"train": 60, "val": 20, "test": 40}
    assert run["settings"]["inputs"] == 700 and run["settings"]["outputs"] == 20
    assert set(run["baselines"]) == {"logistic_regression_counts"}
    assert "wrote checkpoint.msgpack" in capsys.readouterr().out


def _with_quarter_validation(load):
    def wrapped(*args, **kwargs):  # 80 recordings of 20 classes: hold out 1 of 4 per class
        return load(*args, **kwargs, val_fraction=0.25)

    return wrapped
