"""helpers.checkpoint: save and restore a training run exactly; refuse what is not ours."""

import brainstate
import braintools
import brainunit as u
import jax
import numpy as np
import pytest

import helpers


@pytest.fixture
def trained(small_batch):
    spikes, labels = small_batch
    brainstate.random.seed(0)
    trainer = helpers.Trainer(helpers.SNN(), lr=1e-2)
    losses = trainer.fit(spikes, labels, 15)
    return trainer, losses, spikes, labels


def leaves(tree):
    """Plain arrays of every leaf, looking inside brainstate States."""
    unwrap = lambda x: x.value if isinstance(x, brainstate.State) else x  # noqa: E731
    tree = jax.tree.map(unwrap, tree, is_leaf=lambda x: isinstance(x, brainstate.State))
    return [np.asarray(u.get_mantissa(x)) for x in jax.tree.leaves(tree)]


@pytest.mark.slow
def test_checkpoint_round_trip_is_exact(trained, tmp_path):
    trainer, losses, *_ = trained
    path = helpers.save_checkpoint(
        tmp_path / "run.msgpack", trainer.net, trainer.optimizer, epoch=15, losses=losses, extra={"seed": 0}
    )
    brainstate.random.seed(99)
    fresh = helpers.Trainer(helpers.SNN(), lr=1e-2)
    info = helpers.load_checkpoint(path, fresh.net, fresh.optimizer)
    assert info["epoch"] == 15 and info["extra"] == {"seed": 0}
    np.testing.assert_array_equal(info["losses"], losses)
    saved = leaves(trainer.net.states(brainstate.ParamState)) + leaves(trainer.optimizer.opt_state.value)
    restored = leaves(fresh.net.states(brainstate.ParamState)) + leaves(fresh.optimizer.opt_state.value)
    assert len(saved) == len(restored) == 4 + 8 + 2  # 4 parameters, Adam's mu and nu, 2 step counts
    assert int(fresh.optimizer.step_count.value) == int(trainer.optimizer.step_count.value) == 15
    for a, b in zip(saved, restored, strict=True):
        np.testing.assert_array_equal(a, b)
    assert [p.name for p in tmp_path.iterdir()] == ["run.msgpack"]  # no temporary files left


@pytest.mark.slow
def test_resumed_training_continues_the_same_history(small_batch, tmp_path):
    spikes, labels = small_batch
    brainstate.random.seed(0)
    uninterrupted = helpers.Trainer(helpers.SNN(), lr=1e-2).fit(spikes, labels, 30)

    brainstate.random.seed(0)
    first = helpers.Trainer(helpers.SNN(), lr=1e-2)
    head = first.fit(spikes, labels, 12)
    helpers.save_checkpoint(tmp_path / "c.msgpack", first.net, first.optimizer, epoch=12, losses=head)
    second = helpers.Trainer(helpers.SNN(), lr=1e-2)  # other initial weights, overwritten by the load
    helpers.load_checkpoint(tmp_path / "c.msgpack", second.net, second.optimizer)
    tail = second.fit(spikes, labels, 18)
    np.testing.assert_array_equal(np.concatenate([head, tail]), uninterrupted)


@pytest.mark.slow
def test_checkpoint_of_another_network_is_refused(trained, tmp_path):
    trainer, losses, *_ = trained
    helpers.save_checkpoint(tmp_path / "c.msgpack", trainer.net, trainer.optimizer, epoch=15, losses=losses)
    with pytest.raises(
        helpers.CheckpointError, match="saved from another network .*n_hidden: checkpoint 4, network 8"
    ):
        other = helpers.Trainer(helpers.SNN(n_hidden=8))
        helpers.load_checkpoint(tmp_path / "c.msgpack", other.net, other.optimizer)
    with pytest.raises(helpers.CheckpointError, match="trained with the 'mean' readout"):
        helpers.load_checkpoint(tmp_path / "c.msgpack", trainer.net, trainer.optimizer, readout_method="max")


def test_truncated_foreign_and_incomplete_files_are_refused(trained, tmp_path):
    trainer, losses, *_ = trained
    good = helpers.save_checkpoint(
        tmp_path / "good.msgpack", trainer.net, trainer.optimizer, epoch=15, losses=losses
    )
    truncated = tmp_path / "truncated.msgpack"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(helpers.CheckpointError, match="not a readable checkpoint"):
        helpers.load_checkpoint(truncated, trainer.net, trainer.optimizer)
    text = tmp_path / "notes.txt"
    text.write_text("these are not weights\n")
    with pytest.raises(helpers.CheckpointError, match="not a readable checkpoint"):
        helpers.load_checkpoint(text, trainer.net, trainer.optimizer)
    foreign = tmp_path / "foreign.msgpack"
    braintools.file.msgpack_save(str(foreign), {"weights": np.zeros(3)})
    with pytest.raises(helpers.CheckpointError, match="not an snn-tutorial checkpoint"):
        helpers.load_checkpoint(foreign, trainer.net, trainer.optimizer)
    incomplete = tmp_path / "incomplete.msgpack"
    braintools.file.msgpack_save(
        str(incomplete), {"format": "snn-tutorial-checkpoint", "version": 2, "config": {}, "epoch": 3}
    )
    with pytest.raises(helpers.CheckpointError, match="lacks losses, params, optimizer"):
        helpers.load_checkpoint(incomplete, trainer.net, trainer.optimizer)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        helpers.load_checkpoint(tmp_path / "missing.msgpack", trainer.net, trainer.optimizer)


def test_checkpoint_into_a_missing_folder_writes_nothing(tmp_path):
    trainer = helpers.Trainer(helpers.SNN())
    with pytest.raises(FileNotFoundError, match="no such folder"):
        helpers.save_checkpoint(tmp_path / "missing" / "c.msgpack", trainer.net, trainer.optimizer, epoch=0)
    with pytest.raises(ValueError, match="epoch must be a non-negative integer"):
        helpers.save_checkpoint(tmp_path / "c.msgpack", trainer.net, trainer.optimizer, epoch=-1)
    with pytest.raises(TypeError, match="net must be a helpers.SNN"):
        helpers.save_checkpoint(tmp_path / "c.msgpack", trainer, trainer.optimizer, epoch=0)
    assert list(tmp_path.iterdir()) == []


def crafted(path, tmp_path, change) -> str:
    """A copy of the checkpoint at ``path`` with ``change(raw)`` applied to its contents."""
    raw = braintools.file.msgpack_load(str(path), target=None)
    change(raw)
    copy = tmp_path / "crafted.msgpack"
    braintools.file.msgpack_save(str(copy), raw, overwrite=True)
    return copy


def _set(key, value):
    def change(raw):
        *parents, last = key.split("/")
        node = raw
        for parent in parents:
            node = node[parent]
        node[last] = value

    return change


INPUT_WEIGHT = "params/input_layer/weight/weight/mantissa"
CRAFTED = [
    ("input weight of shape (3, 3)", _set(INPUT_WEIGHT, np.zeros((3, 3), np.float32)),
     rf"{INPUT_WEIGHT} must have shape \(100, 4\) and dtype float32, got shape \(3, 3\)"),
    ("input weight in float64", _set(INPUT_WEIGHT, np.zeros((100, 4))),
     "got shape .100, 4. and dtype float64"),
    ("input weight as a number", _set(INPUT_WEIGHT, 1.0), f"{INPUT_WEIGHT} must be an array, got float 1.0"),
    ("another unit", _set("params/input_layer/weight/weight/dim", np.ones(7, np.int64)),
     r"dim \(the physical unit\) must be"),
    ("Adam's count in float", _set("optimizer/opt_state/0/count", np.zeros((), np.float32)),
     "optimizer/opt_state/0/count must have shape .. and dtype int32"),
    ("a missing moment", lambda raw: raw["optimizer"]["opt_state"]["0"].pop("nu"),
     "optimizer/opt_state/0 must hold the keys"),
    ("the step count as text", _set("optimizer/step_count", "15"), "optimizer/step_count must be an array"),
    ("config of the wrong type", _set("config", "n_hidden=4"), "config must be a dict, got str"),
    ("a size as text", _set("config/n_hidden", "4"), "saved from another network .n_hidden: checkpoint '4'"),
    ("a missing config key", lambda raw: raw["config"].pop("tau_mem_ms"),
     "saved from another network .tau_mem_ms: checkpoint None"),
    ("a config value not plain", _set("config/n_hidden", [4]), r"config\['n_hidden'\] must be a plain value"),
    ("epoch as text", _set("epoch", "3"), "epoch must be a non-negative integer, got str '3'"),
    ("negative epoch", _set("epoch", -1), "epoch must be a non-negative integer, got int -1"),
    ("losses as text", _set("losses", "0.5"), "losses must be a 1-D float64 array, got str"),
    ("unknown readout", _set("readout_method", "median"), "readout_method must be one of"),
    ("extra not plain", _set("extra", {"a": {"b": 1}}), "extra must be a dict of plain values"),
    ("params not a dict", _set("params", 3), "params must be a dict of arrays, got int 3"),
]  # fmt: skip


@pytest.mark.parametrize("case, change, message", CRAFTED, ids=[c[0] for c in CRAFTED])
def test_crafted_checkpoints_are_refused_field_by_field(case, change, message, trained, tmp_path):
    """Every field is checked against the network (arrays: shape and dtype; others: type) before
    anything is loaded: a CheckpointError, never a crash later or a raw TypeError, and the trainer's
    state is untouched."""
    trainer, losses, *_ = trained
    good = helpers.save_checkpoint(
        tmp_path / "good.msgpack", trainer.net, trainer.optimizer, epoch=15, losses=losses
    )
    before = leaves(trainer.net.states(brainstate.ParamState))
    with pytest.raises(helpers.CheckpointError, match=message):
        helpers.load_checkpoint(crafted(good, tmp_path, change), trainer.net, trainer.optimizer)
    for a, b in zip(before, leaves(trainer.net.states(brainstate.ParamState)), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_checkpoint_of_a_recurrent_network_with_trainable_time_constants(small_batch, tmp_path):
    """The options in the configuration, and the extra parameters, pass the field-by-field checks."""
    spikes, labels = small_batch
    trainer = helpers.Trainer(helpers.SNN(recurrent=True, train_tau_mem=True))
    losses = trainer.fit(spikes, labels, 2)
    path = helpers.save_checkpoint(
        tmp_path / "c.msgpack", trainer.net, trainer.optimizer, epoch=2, losses=losses
    )
    same = helpers.Trainer(helpers.SNN(recurrent=True, train_tau_mem=True))
    info = helpers.load_checkpoint(path, same.net, same.optimizer)
    assert info["config"]["recurrent"] is True and info["epoch"] == 2
    plain = helpers.Trainer(helpers.SNN())
    with pytest.raises(helpers.CheckpointError, match="saved from another network"):
        helpers.load_checkpoint(path, plain.net, plain.optimizer)
