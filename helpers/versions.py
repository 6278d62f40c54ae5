"""The versions of the BrainX stack this tutorial was tested with, and a one-line report."""

from __future__ import annotations

import importlib
import warnings
from importlib.metadata import PackageNotFoundError, version

__all__ = ["TESTED_VERSIONS", "stack_versions", "print_stack", "check_stack", "StackWarning"]

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


#: What helpers uses from each package: (module, attribute path) pairs probed at import time.
REQUIRED_FEATURES: tuple[tuple[str, str], ...] = (
    ("brainunit", "math.exp"),
    ("brainstate", "nn.Module"),
    ("brainstate", "nn.Linear"),
    ("brainstate", "transform.for_loop"),
    ("brainstate", "transform.grad"),
    ("brainstate", "transform.jit"),
    ("brainpy", "state.LIF"),
    ("brainpy", "state.Expon"),
    ("braintools", "surrogate.ReluGrad"),
    ("braintools", "optim.Adam"),
    ("braintools", "file.msgpack_save"),
    ("braintools", "metric.softmax_cross_entropy_with_integer_labels"),
)


class StackWarning(UserWarning):
    """The installed stack differs from the versions the tutorial was tested with."""


def _tested() -> str:
    return ", ".join(f"{name} {v}" for name, v in TESTED_VERSIONS.items())


def check_stack(installed: dict[str, str] | None = None) -> None:
    """Fail clearly if the installed stack lacks what ``helpers`` uses; warn (one line) if its
    versions differ from the tested ones. ``installed`` overrides the detected versions (for tests).
    """
    installed = stack_versions() if installed is None else installed
    for module_name, attribute_path in REQUIRED_FEATURES:
        try:
            obj = importlib.import_module(module_name)
            for part in attribute_path.split("."):
                obj = getattr(obj, part, None) or importlib.import_module(f"{obj.__name__}.{part}")
        except Exception:
            raise ImportError(
                f"helpers needs {module_name}.{attribute_path}, which the installed "
                f"{module_name} {installed.get(module_name, '?')} lacks. helpers is tested with {_tested()}; "
                "install exactly those with `make env` (or `conda env create -f environment.yml`)."
            ) from None
    differing = [f"{n} {installed.get(n)}" for n, v in TESTED_VERSIONS.items() if installed.get(n) != v]
    if differing:
        # warn_explicit with a pseudo file name: the warning prints as one line, with no source line
        warnings.warn_explicit(
            f"helpers is tested with {_tested()}; found {', '.join(differing)}: results may differ.",
            StackWarning,
            filename="<helpers>",
            lineno=0,
            module="helpers",
        )


def print_stack() -> None:
    """Print the stack's versions and the device JAX computes on, e.g. at the top of a notebook."""
    import jax

    versions = " | ".join(f"{name} {v}" for name, v in stack_versions().items() if name != "jaxlib")
    device = jax.devices()[0]
    print(versions)
    print(f"device: {device.platform} ({device.device_kind}), {jax.device_count()} device(s)")
