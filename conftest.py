"""Repository-wide pytest configuration, read before any test or notebook kernel starts.

Everything set here is inherited by the kernels that nbval starts and by the docs build's subprocess.

- JAX looks for accelerators at start-up and, on a machine with an NVIDIA GPU but a CPU-only jaxlib,
  warns on stderr. nbval compares the notebooks' stored outputs, so the platform is pinned here,
  never inside a notebook cell.
- **Another CPU's rounding, on every run.** XLA compiles float32 code for the host's vector unit, so
  a reader's CPU rounds training sums differently from the one that stored the notebooks' outputs.
  On x86 the tests compile for SSE4.2 (``--xla_cpu_max_isa=SSE4_2``, appended to any ``XLA_FLAGS``
  you set, unless you choose a target yourself): the stored outputs come from the authors' native
  target, so every run checks that nothing depends on one CPU's rounding. ``tests/nbval_numbers.py``
  compares trained numbers within a tolerance; everything that does not depend on rounding stays exact.
  (Other architectures reject the flag, so it is set only on x86.)
- Notebooks 1 and 2 are executed twice per run (by nbval and by the docs build, which renders the
  others from their stored outputs), many tests compile the same programs, and some tests start a
  fresh interpreter. A persistent JAX compilation cache, fresh for each test session and shared by
  all its processes, lets a later compilation of a program load the first one's result. Compiled
  programs are identical either way.
"""

import os
import platform
import tempfile

pytest_plugins = ["nbval_numbers"]  # tests/nbval_numbers.py: tolerances and prose checks for nbval

os.environ.setdefault("JAX_PLATFORMS", "cpu")

if platform.machine().lower() in {"x86_64", "amd64", "i686", "i386"}:
    flags = os.environ.get("XLA_FLAGS", "")
    if "--xla_cpu_max_isa" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_max_isa=SSE4_2".strip()

if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="snn-tutorial-jax-cache-")
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
