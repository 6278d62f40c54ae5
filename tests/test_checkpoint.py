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


def test_checkpoint_round_trip_is_exact(trained, tmp_path):
    trainer, losses, *_ = trained
    path = helpers.save_checkpoint(
        tmp_path / "run.msgpack", trainer, epoch=15, losses=losses, extra={"seed": 0}
    )
    brainstate.random.seed(99)
    fresh = helpers.Trainer(helpers.SNN(), lr=1e-2)
    info = helpers.load_checkpoint(path, fresh)
    assert info["epoch"] == 15 and info["extra"] == {"seed": 0}
    np.testing.assert_array_equal(info["losses"], losses)
    saved = leaves(trainer.net.states(brainstate.ParamState)) + leaves(trainer.optimizer.opt_state.value)
    restored = leaves(fresh.net.states(brainstate.ParamState)) + leaves(fresh.optimizer.opt_state.value)
    assert len(saved) == len(restored) == 4 + 8 + 2  # 4 parameters, Adam's mu and nu, 2 step counts
    for a, b in zip(saved, restored, strict=True):
        np.testing.assert_array_equal(a, b)
    assert [p.name for p in tmp_path.iterdir()] == ["run.msgpack"]  # no temporary files left


def test_resumed_training_continues_the_same_history(small_batch, tmp_path):
    spikes, labels = small_batch
    brainstate.random.seed(0)
    uninterrupted = helpers.Trainer(helpers.SNN(), lr=1e-2).fit(spikes, labels, 30)

    brainstate.random.seed(0)
    first = helpers.Trainer(helpers.SNN(), lr=1e-2)
    head = first.fit(spikes, labels, 12)
    helpers.save_checkpoint(tmp_path / "c.msgpack", first, epoch=12, losses=head)
    second = helpers.Trainer(helpers.SNN(), lr=1e-2)  # other initial weights, overwritten by the load
    helpers.load_checkpoint(tmp_path / "c.msgpack", second)
    tail = second.fit(spikes, labels, 18)
    np.testing.assert_array_equal(np.concatenate([head, tail]), uninterrupted)


def test_checkpoint_of_another_network_is_refused(trained, tmp_path):
    trainer, losses, *_ = trained
    helpers.save_checkpoint(tmp_path / "c.msgpack", trainer, epoch=15, losses=losses)
    with pytest.raises(
        helpers.CheckpointError, match="saved from another network .*n_hidden: checkpoint 4, network 8"
    ):
        helpers.load_checkpoint(tmp_path / "c.msgpack", helpers.Trainer(helpers.SNN(n_hidden=8)))
    with pytest.raises(helpers.CheckpointError, match="trained with the 'mean' readout"):
        helpers.load_checkpoint(tmp_path / "c.msgpack", helpers.Trainer(helpers.SNN(), readout_method="max"))


def test_truncated_foreign_and_incomplete_files_are_refused(trained, tmp_path):
    trainer, losses, *_ = trained
    good = helpers.save_checkpoint(tmp_path / "good.msgpack", trainer, epoch=15, losses=losses)
    truncated = tmp_path / "truncated.msgpack"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(helpers.CheckpointError, match="not a readable checkpoint"):
        helpers.load_checkpoint(truncated, trainer)
    text = tmp_path / "notes.txt"
    text.write_text("these are not weights\n")
    with pytest.raises(helpers.CheckpointError, match="not a readable checkpoint"):
        helpers.load_checkpoint(text, trainer)
    foreign = tmp_path / "foreign.msgpack"
    braintools.file.msgpack_save(str(foreign), {"weights": np.zeros(3)})
    with pytest.raises(helpers.CheckpointError, match="not an snn-tutorial checkpoint"):
        helpers.load_checkpoint(foreign, trainer)
    incomplete = tmp_path / "incomplete.msgpack"
    braintools.file.msgpack_save(
        str(incomplete), {"format": "snn-tutorial-checkpoint", "version": 1, "config": {}, "epoch": 3}
    )
    with pytest.raises(helpers.CheckpointError, match="lacks losses, params, opt_state"):
        helpers.load_checkpoint(incomplete, trainer)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        helpers.load_checkpoint(tmp_path / "missing.msgpack", trainer)


def test_checkpoint_into_a_missing_folder_writes_nothing(tmp_path):
    trainer = helpers.Trainer(helpers.SNN())
    with pytest.raises(FileNotFoundError, match="no such folder"):
        helpers.save_checkpoint(tmp_path / "missing" / "c.msgpack", trainer, epoch=0)
    with pytest.raises(ValueError, match="epoch must be a non-negative integer"):
        helpers.save_checkpoint(tmp_path / "c.msgpack", trainer, epoch=-1)
    with pytest.raises(TypeError, match="trainer must be a helpers.Trainer"):
        helpers.save_checkpoint(tmp_path / "c.msgpack", trainer.net, epoch=0)
    assert list(tmp_path.iterdir()) == []
