"""helpers.diagnostics: counting compilations and XLA's memory estimate."""

import brainstate
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import helpers
from helpers.diagnostics import xla_memory


def test_count_compilations_hears_compilations_inside_the_block_only():
    @brainstate.transform.jit
    def brainstate_program(x):
        return x * 3.0

    seven, five = np.ones(7, np.float32), np.ones(5, np.float32)
    with helpers.count_compilations() as compiled:
        brainstate_program(seven)  # compiles: a brainstate program
        brainstate_program(seven)  # cached: nothing compiles
        jax.jit(lambda x: x - 1.0)(five)  # compiles: a plain JAX program
    assert sorted(compiled) == ["jit(<lambda>)", "jit(jaxpr_call)"]
    assert compiled.jitted == 1
    helpers.SNN().simulate(jnp.zeros((3, 2, 100)))  # compiles after the block: not heard
    assert len(compiled) == 2


def test_xla_memory_counts_arguments_and_outputs():
    """A program from 1 MiB of float32 to 1 MiB: arguments and outputs of 1 MiB each."""
    compiled = jax.jit(lambda x: x * 2.0).lower(jnp.zeros(2**18, jnp.float32)).compile()
    memory = xla_memory(compiled)
    assert set(memory) == {"arguments", "outputs", "temporaries", "total"}
    assert memory["arguments"] == pytest.approx(1.0) and memory["outputs"] == pytest.approx(1.0)
    assert memory["total"] <= memory["arguments"] + memory["outputs"] + memory["temporaries"]
