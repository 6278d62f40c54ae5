"""Spiking Heidelberg Digits (SHD) and Spiking Speech Commands (SSC) from local files (notebook 13).

SHD (Cramer et al. 2020, doi:10.1109/TNNLS.2020.3044364) is spoken digits, 0 to 9 in English and
German (20 classes), passed through a model of the inner ear: each recording is a list of spikes of
700 input channels, at most about 1.4 s long. SSC is the same transform of Google's Speech Commands
(35 classes) with its own validation file. Both are plain HDF5 files, one per split, with the layout

=================  ======================================================================
``spikes/times``   one float array per recording: spike times (s)
``spikes/units``   one int array per recording: the channel (0..699) of each spike
``labels``         int ``[N]``: the class of each recording
``extra/speaker``  int ``[N]``: who spoke it
``extra/keys``     the class names (bytes)
=================  ======================================================================

They are not bundled with any package and this tutorial never downloads them: fetch them once from
the Zenke lab (https://zenkelab.org/datasets/: ``shd_train.h5.gz``, ``shd_test.h5.gz``, or the
``ssc_*`` files), unpack them with ``gunzip`` into a folder and pass that folder as ``data_dir``
(``python -m helpers train --dataset shd --data-dir DIR``).

Why h5py and not ``tonic`` (the field's loader, whose ``tonic.datasets.SHD`` reads the same files)?
Measured in this environment with ``uv pip install --dry-run tonic==1.7.0``: tonic would add 14
packages and 214 MB (librosa, numba and llvmlite alone 190 MB, for audio features these files do not
need; with h5py installed, still 13 packages: audioread, decorator, expelliarmus, importrosbag,
lazy-loader, librosa, llvmlite, numba, pooch, setuptools, soundfile, soxr and tonic), while h5py, the
one package that reading the layout needs, adds 16 MB. Reading five datasets of
an HDF5 file is a few lines; binning the spikes into the tutorial's ``[T, N, channels]`` tensor is
ours either way (tonic's ``ToFrame`` makes counts per frame, in its own axis order).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers.realdata import Splits, stratified_split
from helpers.validation import check_positive_int, check_seed

__all__ = [
    "FILES",
    "N_CHANNELS",
    "N_CLASSES",
    "Recordings",
    "SHDFormatError",
    "bin_spikes",
    "check_file",
    "check_folder",
    "count",
    "load",
    "read",
    "write_synthetic",
]

#: the file of each split, per dataset (SHD has no validation file: it is cut from training)
FILES = {
    "shd": {"train": "shd_train.h5", "test": "shd_test.h5"},
    "ssc": {"train": "ssc_train.h5", "val": "ssc_valid.h5", "test": "ssc_test.h5"},
}
N_CHANNELS = 700
N_CLASSES = {"shd": 20, "ssc": 35}
WHERE_FROM = (
    "SHD and SSC are not bundled and never downloaded here: get {files} (gzip-compressed, add .gz) from "
    "https://zenkelab.org/datasets/, gunzip them into one folder and pass it as --data-dir"
)


class SHDFormatError(ValueError):
    """A file that is missing or not in SHD's layout (the message says what and where SHD comes from)."""


@dataclass(frozen=True)
class Recordings:
    """The spikes of one split as stored: per recording, ``times`` (s) and ``units`` (channel)."""

    times: list[np.ndarray]
    units: list[np.ndarray]
    labels: np.ndarray  # int32 [N]
    speakers: np.ndarray  # int32 [N]
    keys: list[str]


def where_from(name: str) -> str:
    return WHERE_FROM.format(files=", ".join(FILES[name].values()))


def read(path: str | Path, name: str = "shd") -> Recordings:
    """Read one split file of SHD's layout (see the module's docstring), checking it as it goes.

    Raises :class:`SHDFormatError` naming the file and what is wrong (missing, not HDF5, a dataset
    missing, lengths that disagree, a channel outside 0..699, a negative time)."""
    import h5py

    path = check_file(path, name)
    with h5py.File(path, "r") as handle:
        try:
            times = [np.asarray(t, dtype=np.float64) for t in handle["spikes/times"][()]]
            units = [np.asarray(c, dtype=np.int64) for c in handle["spikes/units"][()]]
            labels = np.asarray(handle["labels"][()], dtype=np.int64)
            speakers = np.asarray(handle["extra/speaker"][()], dtype=np.int64)
            keys = (
                [k.decode() if isinstance(k, bytes) else str(k) for k in handle["extra/keys"][()]]
                if ("extra/keys" in handle)
                else []
            )
        except (TypeError, ValueError) as error:
            raise SHDFormatError(
                f"{path}: a dataset has the wrong type ({error}). {where_from(name)}"
            ) from None
    n = len(labels)
    if labels.ndim != 1 or not (len(times) == len(units) == len(speakers) == n):
        raise SHDFormatError(
            f"{path}: {len(times)} time arrays, {len(units)} unit arrays, {len(speakers)} speakers and "
            f"{n} labels; SHD's layout has one of each per recording"
        )
    for i, (t, c) in enumerate(zip(times, units, strict=True)):
        if t.shape != c.shape or t.ndim != 1:
            raise SHDFormatError(f"{path}: recording {i} has {t.shape} times but {c.shape} units")
        if c.size and (c.min() < 0 or c.max() >= N_CHANNELS):
            raise SHDFormatError(f"{path}: recording {i} has a channel outside 0..{N_CHANNELS - 1}")
        if t.size and not (np.all(np.isfinite(t)) and t.min() >= 0):
            raise SHDFormatError(f"{path}: recording {i} has a negative or non-finite spike time")
    if n and (labels.min() < 0 or labels.max() >= N_CLASSES[name]):
        raise SHDFormatError(f"{path}: labels must lie in 0..{N_CLASSES[name] - 1} for {name.upper()}")
    return Recordings(times, units, labels.astype(np.int32), speakers.astype(np.int32), keys)


def check_file(path: str | Path, name: str = "shd") -> Path:
    """``path`` if it is an HDF5 file with SHD's datasets (without reading them); else
    :class:`SHDFormatError` naming the file, what is wrong and where SHD comes from."""
    import h5py

    _check_name(name)
    path = Path(path)
    if not path.is_file():
        raise SHDFormatError(f"{path}: no such file. {where_from(name)}")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise SHDFormatError(f"{path}: not an HDF5 file ({error}). {where_from(name)}") from None
    with handle:
        missing = [k for k in ("spikes/times", "spikes/units", "labels", "extra/speaker") if k not in handle]
    if missing:
        raise SHDFormatError(
            f"{path}: not in SHD's layout, it lacks {', '.join(missing)}. {where_from(name)}"
        )
    return path


def check_folder(data_dir: str | Path, name: str = "shd") -> Path:
    """``data_dir`` if it holds every split file of ``name`` in SHD's layout (:func:`check_file`)."""
    _check_name(name)
    folder = Path(data_dir)
    if not folder.is_dir():
        raise SHDFormatError(f"{folder}: no such folder. {where_from(name)}")
    for file in FILES[name].values():
        check_file(folder / file, name)
    return folder


def count(data_dir: str | Path, name: str = "shd") -> int:
    """Recordings in all of ``name``'s files in ``data_dir`` (their labels' length; nothing else is
    read), after :func:`check_folder`."""
    import h5py

    folder = check_folder(data_dir, name)
    total = 0
    for file in FILES[name].values():
        with h5py.File(folder / file, "r") as handle:
            total += len(handle["labels"])
    return total


def _check_name(name: str) -> None:
    if name not in FILES:
        raise ValueError(f"name must be one of {sorted(FILES)}, got {name!r}")


def bin_spikes(recordings: Recordings, dt_ms: float, steps: int, channels: int = N_CHANNELS) -> np.ndarray:
    """The spikes of every recording as the tutorial's input, ``bool [steps, N, channels]``.

    Time bin ``k`` holds the spikes with ``k * dt_ms <= t * 1000 < (k + 1) * dt_ms``; spikes after
    ``steps * dt_ms`` are dropped. ``channels`` (a divisor of 700) merges neighbouring channels:
    channel ``c`` goes to ``c // (700 // channels)``. A bin is ``True`` if it holds one spike or more
    (the tutorial's input is 0/1; several spikes in a bin count once)."""
    if isinstance(dt_ms, bool) or not isinstance(dt_ms, (int, float)) or not dt_ms > 0:
        raise ValueError(f"dt_ms must be a positive number of milliseconds, got {dt_ms!r}")
    steps = check_positive_int("steps", steps)
    channels = check_positive_int("channels", channels)
    if N_CHANNELS % channels:
        raise ValueError(f"channels must divide {N_CHANNELS} (e.g. 700, 350, 140, 70), got {channels}")
    group = N_CHANNELS // channels
    spikes = np.zeros((steps, len(recordings.labels), channels), dtype=bool)
    for i, (t, c) in enumerate(zip(recordings.times, recordings.units, strict=True)):
        k = np.floor(t * 1000.0 / dt_ms).astype(np.int64)
        keep = k < steps
        spikes[k[keep], i, c[keep] // group] = True
    return spikes


def load(
    data_dir: str | Path,
    name: str = "shd",
    *,
    dt_ms: float = 10.0,
    steps: int = 100,
    channels: int = N_CHANNELS,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> Splits:
    """SHD (or SSC) from the files in ``data_dir`` as :class:`helpers.realdata.Splits` of spikes
    ``(bool [steps, N, channels], labels int32 [N])`` binned by :func:`bin_spikes` (defaults: 10 ms
    bins over the first second, all 700 channels).

    The test part is the test file, scored once. SSC's validation part is its validation file; SHD has
    none, so ``val_fraction`` of every class of its training file is held out with ``seed`` (fixed:
    the same recordings whatever the run's seed). That validation set shares speakers with training,
    unlike SHD's test set, which has speakers of its own: expect validation to be the easier of the two.
    Nothing is downloaded: a missing or malformed file raises :class:`SHDFormatError`."""
    check_seed("seed", seed)
    folder = check_folder(data_dir, name)
    parts = {part: read(folder / file, name) for part, file in FILES[name].items()}
    binned = {part: (bin_spikes(r, dt_ms, steps, channels), r.labels) for part, r in parts.items()}
    if "val" not in binned:
        spikes, labels = binned["train"]
        rest, held_out = stratified_split(labels, val_fraction, seed)
        binned["train"] = (spikes[:, rest], labels[rest])
        binned["val"] = (spikes[:, held_out], labels[held_out])
        if held_out.size == 0:
            raise SHDFormatError(
                f"{folder / FILES[name]['train']}: {labels.size} recordings are too few to hold out "
                f"val_fraction={val_fraction} of each class for validation"
            )
    return Splits(binned["train"], binned["val"], binned["test"])


def write_synthetic(path: str | Path, n: int, *, n_classes: int = 20, seed: int = 0, duration_s: float = 0.5):
    """Write a small file in SHD's layout with made-up spikes (for tests and notebook 13; not SHD).

    Each class ``k`` fires a band of channels around ``35 * k`` at times spread over ``duration_s``
    (a learnable, synthetic pattern), with a few random spikes elsewhere; ``n`` recordings, classes in
    turn, speakers ``i % 3``."""
    import h5py

    rng = np.random.default_rng(seed)
    times, units, labels = [], [], []
    for i in range(n):
        k = i % n_classes
        count = int(rng.integers(40, 80))
        band = (35 * k + rng.integers(0, 35, count)) % N_CHANNELS
        noise = rng.integers(0, N_CHANNELS, count // 4)
        channel = np.concatenate([band, noise])
        time = np.sort(rng.uniform(0, duration_s, channel.size))
        times.append(time.astype(np.float32))
        units.append(channel.astype(np.uint16))
        labels.append(k)
    with h5py.File(path, "w") as handle:
        handle.create_dataset(
            "spikes/times", data=np.array(times, dtype=object), dtype=h5py.vlen_dtype(np.float32)
        )
        handle.create_dataset(
            "spikes/units", data=np.array(units, dtype=object), dtype=h5py.vlen_dtype(np.uint16)
        )
        handle.create_dataset("labels", data=np.asarray(labels, dtype=np.uint16))
        handle.create_dataset("extra/speaker", data=np.arange(n, dtype=np.uint16) % 3)
        handle.create_dataset("extra/keys", data=np.array([f"class-{k}".encode() for k in range(n_classes)]))
