"""Type aliases for the arrays the helpers take, so that signatures stay short and readable."""

from __future__ import annotations

from typing import TypeAlias

import jax
import numpy as np

#: A concrete or traced JAX array, or a NumPy array (shapes and units are given in each docstring).
Array: TypeAlias = jax.Array | np.ndarray

__all__ = ["Array"]
