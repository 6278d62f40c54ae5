"""helpers.runfolder: a run folder is published whole, whatever moment the writing stops."""

import shutil
from pathlib import Path

import pytest

from helpers import runfolder


def folder_state(folder: Path) -> dict:
    """Every file under ``folder`` (relative name -> bytes); hidden temporaries included."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- the output folder at every moment of writing -----------------------------------------------------
OLD = {name: f"old {name}".encode() for name in runfolder.RUN_FILES}
NEW = {name: f"new {name}".encode() for name in runfolder.RUN_FILES}
HOOKS = ("_make_folder", "_write_file", "_rename", "_exchange", "_remove_tree")


def new_contents() -> dict:
    """The new run's files; the checkpoint written by a function, as the trainer's is."""
    return {**NEW, "checkpoint.msgpack": lambda path: path.write_bytes(NEW["checkpoint.msgpack"])}


def interrupt_at(point: int, monkeypatch) -> list:
    """Make every file-system step of helpers.runfolder count itself, and raise KeyboardInterrupt at the
    ``point``-th moment: before (even) or after (odd) step ``point // 2``. Returns the steps seen."""
    seen = []

    def counting(name, original):
        def hook(*args):
            seen.append(name)
            if point == 2 * (len(seen) - 1):
                raise KeyboardInterrupt
            result = original(*args)
            if point == 2 * (len(seen) - 1) + 1:
                raise KeyboardInterrupt
            return result

        return hook

    for name in HOOKS:
        monkeypatch.setattr(runfolder, name, counting(name, getattr(runfolder, name)))
    return seen


@pytest.mark.parametrize("atomic_swap", [True, False], ids=["renameat2 exchange", "two renames"])
@pytest.mark.parametrize("previous", ["a previous run", "no previous run", "no parent folders"])
def test_publish_interrupted_at_every_moment(previous, atomic_swap, tmp_path, monkeypatch):
    """Stop the writing before and after each of its steps in turn: --out then holds the previous run or
    the new one, byte for byte, never a mix, and nothing is left beside it."""
    out = tmp_path / "runs" / "out" if previous == "no parent folders" else tmp_path / "out"
    new = {f"{out.relative_to(tmp_path)}/{name}": data for name, data in NEW.items()}
    point, outcomes = 0, set()
    while True:
        for path in tmp_path.iterdir():
            shutil.rmtree(path)
        if previous == "a previous run":
            out.mkdir()
            for name, data in OLD.items():
                (out / name).write_bytes(data)
        with monkeypatch.context() as patch:
            if not atomic_swap:
                patch.setattr(runfolder, "_exchange", lambda a, b: False)
            seen = interrupt_at(point, patch)
            try:
                runfolder.publish(out, new_contents())
                finished = True
            except KeyboardInterrupt:
                finished = False
        state = folder_state(tmp_path)
        if state == new:
            outcomes.add("new")
        elif previous == "a previous run":
            assert state == {f"out/{name}": data for name, data in OLD.items()}, (point, seen)
            outcomes.add("old")
        else:
            assert list(tmp_path.iterdir()) == [], (point, seen)  # no folder left behind either
            outcomes.add("none")
        if finished:
            assert state == new
            break
        point += 1
    assert point >= 2 * len(runfolder.RUN_FILES) + 2  # every write, and the moves, were interrupted
    assert outcomes == {"new", "old" if previous == "a previous run" else "none"}
    if previous == "a previous run":
        assert ("_exchange" in seen) and (("_rename" in seen) != atomic_swap)
