"""Repository-wide pytest configuration.

JAX looks for accelerators at start-up and, on a machine with an NVIDIA GPU but a CPU-only jaxlib,
warns on stderr. The notebooks' stored outputs are compared by nbval, so we pin the platform here
(inherited by every notebook kernel nbval starts) rather than inside a notebook cell.
"""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
