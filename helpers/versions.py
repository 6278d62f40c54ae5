"""The versions of the BrainX stack this tutorial was tested with, and a one-line report."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["TESTED_VERSIONS", "stack_versions", "print_stack"]

#: The pins of environment.yml for the packages the helpers use directly.
TESTED_VERSIONS: dict[str, str] = {
    "brainstate": "0.5.4",
    "brainpy": "2.8.2",
    "braintools": "0.3.0",
    "brainunit": "0.5.2",
    "jax": "0.10.2",
    "jaxlib": "0.10.2",
}


def stack_versions() -> dict[str, str]:
    """Installed versions of the tested packages (``"missing"`` where one is not installed)."""
    found = {}
    for name in TESTED_VERSIONS:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "missing"
    return found


def print_stack() -> None:
    """Print the stack's versions and the device JAX computes on, e.g. at the top of a notebook."""
    import jax

    versions = " | ".join(f"{name} {v}" for name, v in stack_versions().items() if name != "jaxlib")
    device = jax.devices()[0]
    print(versions)
    print(f"device: {device.platform} ({device.device_kind}), {jax.device_count()} device(s)")
