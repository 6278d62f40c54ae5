"""``python -m helpers export``: a checkpoint or run folder to a NIR file, and the one-line errors."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import helpers
from helpers.cli import main as cli_main

pytest.importorskip("nir")  # pinned in environment.yml; skipped only where it is not installed


@pytest.fixture
def run_folder(tmp_path) -> Path:
    folder = tmp_path / "run"
    folder.mkdir()
    trainer = helpers.Trainer(helpers.SNN(12, 6, 3, input_scale=20.0))
    helpers.save_checkpoint(folder / "checkpoint.msgpack", trainer.net, trainer.optimizer, epoch=0)
    return folder


def usage_error(args, capsys) -> str:
    with pytest.raises(SystemExit) as stop:
        cli_main(["export", *args])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m helpers export") and "Traceback" not in err
    return err.splitlines()[-1]


@pytest.mark.slow
def test_export_a_run_folder_and_a_checkpoint(run_folder, tmp_path, capsys):
    data = np.random.default_rng(0).random((20, 3, 12)) < 0.3
    data = data.astype(np.float32)
    net, _ = helpers.load_network(run_folder)
    for source, bits in ((run_folder, None), (run_folder / "checkpoint.msgpack", 8)):
        out = tmp_path / f"model-{bits}.nir"
        args = [str(source), "--out", str(out)] + (["--bits", str(bits)] if bits else [])
        assert cli_main(["export", *args]) == 0
        assert f"wrote {out}" in capsys.readouterr().out
        assert oct(out.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
        back = helpers.from_nir(helpers.read_nir(out))
        expected = net if bits is None else helpers.quantised(net, bits)[0]
        assert np.array_equal(np.asarray(back.simulate(data)), np.asarray(expected.simulate(data)))
        if bits:
            assert helpers.read_nir(out).metadata["bits"] == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model-8.nir",
        "model-None.nir",
        "run",
    ]  # no leftovers


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def test_export_errors(run_folder, tmp_path, capsys):
    out = str(tmp_path / "m.nir")
    assert "no such run folder or checkpoint" in usage_error([str(tmp_path / "nope"), "--out", out], capsys)
    (tmp_path / "empty").mkdir()
    assert "without checkpoint.msgpack" in usage_error([str(tmp_path / "empty"), "--out", out], capsys)
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    assert "not a readable checkpoint" in usage_error([str(notes), "--out", out], capsys)
    assert "no folder" in usage_error([str(run_folder), "--out", str(tmp_path / "no" / "m.nir")], capsys)
    assert "got a folder" in usage_error([str(run_folder), "--out", str(tmp_path)], capsys)
    for bad in ("1", "x", "17"):
        assert "expected an integer from 2 to 16" in usage_error(
            [str(run_folder), "--out", out, "--bits", bad], capsys
        )
    assert "expected a positive, finite number" in usage_error(
        [str(run_folder), "--out", out, "--dt", "0"], capsys
    )
    assert "could not write it" in usage_error([str(run_folder), "--out", "/proc/model.nir"], capsys)
    recurrent = tmp_path / "recurrent.msgpack"
    trainer = helpers.Trainer(helpers.SNN(4, 3, 2, recurrent=True))
    helpers.save_checkpoint(recurrent, trainer.net, trainer.optimizer, epoch=0)
    message = usage_error([str(recurrent), "--out", out], capsys)
    assert "cannot be exported" in message and "node 'recurrent_layer'" in message
    assert not Path(out).exists()


def test_export_without_nir_installed(run_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "nir", None)  # as if nir were not installed
    message = usage_error([str(run_folder), "--out", str(tmp_path / "m.nir")], capsys)
    assert "NIR export needs nir" in message and "make env" in message


@pytest.mark.slow
def test_export_from_the_command_line(run_folder, tmp_path):
    out = tmp_path / "m.nir"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    good = subprocess.run([sys.executable, "-m", "helpers", "export", str(run_folder), "--out", str(out)],
                          capture_output=True, text=True, env=env)  # fmt: skip
    assert good.returncode == 0 and out.is_file(), good.stderr
    bad = subprocess.run([sys.executable, "-m", "helpers", "export", str(tmp_path / "x"), "--out", str(out)],
                         capture_output=True, text=True, env=env)  # fmt: skip
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.splitlines()[-1].endswith("no such run folder or checkpoint")
