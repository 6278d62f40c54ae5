"""Repository-wide pytest configuration, read before any test or notebook kernel starts.

- JAX looks for accelerators at start-up and, on a machine with an NVIDIA GPU but a CPU-only jaxlib,
  warns on stderr. nbval compares the notebooks' stored outputs, so the platform is pinned here
  (inherited by every kernel that nbval and the docs build start), never inside a notebook cell.
- Notebooks 1 and 2 are executed twice per run (by nbval and by the docs build, which renders the
  others from their stored outputs), many tests compile the same programs, and some tests start a
  fresh interpreter. A persistent JAX compilation cache, fresh for each test session and shared by
  all its processes, lets a later compilation of a program load the first one's result. Compiled
  programs are identical either way, so every number stays the same.
"""

import os
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="snn-tutorial-jax-cache-")
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
