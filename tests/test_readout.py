"""helpers.readout: readouts over time, the loss and the metrics on predictions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import helpers
from helpers.readout import accuracy_score


def test_readouts_reduce_over_time():
    outputs = jnp.arange(24.0).reshape(4, 3, 2)
    np.testing.assert_allclose(helpers.readout(outputs), outputs.mean(0))
    np.testing.assert_allclose(helpers.readout(outputs, "max"), outputs.max(0))
    np.testing.assert_allclose(helpers.readout(outputs, "last"), outputs[-1])
    assert list(helpers.READOUTS) == ["mean", "max", "last"]
    with pytest.raises(ValueError, match="readout method must be one of"):
        helpers.readout(outputs, "median")
    with pytest.raises(ValueError, match=r"shape \[T, B, C\]"):
        helpers.readout(outputs[0])


def test_cross_entropy_of_equal_logits_is_ln_c():
    for classes in (2, 5):
        loss = helpers.cross_entropy(jnp.zeros((7, classes)), jnp.zeros(7, jnp.int32))
        assert float(loss) == pytest.approx(np.log(classes), rel=1e-6)


@pytest.mark.parametrize("batch", [7, 128, 300, 1000])
def test_accuracy_score_is_the_mean_a_jitted_program_takes(batch):
    """Bit for bit the number a mean inside jit gives (XLA multiplies by 1/B; float division differs)."""
    inside_jit = jax.jit(lambda predictions, labels: jnp.mean(predictions == labels))
    labels = np.zeros(batch, np.int32)
    for correct in range(0, batch + 1, max(1, batch // 37)):
        predictions = np.where(np.arange(batch) < correct, 0, 1)
        assert accuracy_score(predictions, labels) == float(inside_jit(predictions, labels))


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    np.testing.assert_array_equal(
        helpers.confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], 3), [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    )
    with pytest.raises(ValueError, match="same shape"):
        helpers.confusion_matrix([0, 1], [0], 2)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 1\]"):
        helpers.confusion_matrix([0, 1], [0, 2], 2)
    with pytest.raises(ValueError, match=r"predictions must lie in \[0, 1\]"):
        helpers.confusion_matrix([0, -1], [0, 1], 2)
