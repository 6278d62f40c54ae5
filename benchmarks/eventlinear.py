"""``helpers.events`` against the stack's ``brainstate.nn.EventLinear`` (``brainevent``) and the dense
product: the jitted gradient of the input projection over ``T`` steps of 5 Hz spikes (100 inputs).

    .venv/bin/python -m benchmarks.eventlinear

Prints the median of 5 calls per grid point; the table in ``helpers/events.py`` comes from it. On a CPU,
brainevent needs ``numba`` for its default kernels; without it this uses its ``jax_raw`` backend.
"""

import time

import brainevent
import brainstate
import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

import helpers

GRID = [(100, 128, 4), (100, 128, 64), (100, 128, 256), (100, 1024, 256)]  # (steps, batch, hidden)


def median_ms(fn, *args, repeats: int = 5) -> float:
    jax.block_until_ready(fn(*args))  # compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def bench_point(steps: int, batch: int, hidden: int) -> dict[str, float]:
    spikes, _ = helpers.poisson_dataset(steps, batch, 100, 5.0 * u.Hz, seed=0)
    events = helpers.spike_events(spikes)
    dense = jnp.asarray(spikes)
    weight = jax.random.normal(jax.random.PRNGKey(0), (100, hidden)) * 0.1
    bias = jnp.zeros(hidden)

    def ours(w):
        def step(total, pair):
            e = helpers.SpikeEvents(pair[0], pair[1], events.batch_size, events.n_inputs)
            return total + jnp.sum(jnp.tanh(helpers.event_input(e, w, bias))), None

        return jax.lax.scan(step, 0.0, (events.example, events.channel))[0]

    def stack(w):
        def step(total, x):
            return total + jnp.sum(jnp.tanh(brainevent.EventArray(x) @ w + bias)), None

        return jax.lax.scan(step, 0.0, dense)[0]

    def matmul(w):
        def step(total, x):
            return total + jnp.sum(jnp.tanh(x.astype(jnp.float32) @ w + bias)), None

        return jax.lax.scan(step, 0.0, dense)[0]

    times = {name: median_ms(jax.jit(jax.grad(f)), weight) for name, f in
             (("helpers.events", ours), ("EventLinear", stack), ("dense", matmul))}  # fmt: skip
    return times


def main() -> None:
    brainstate.environ.set(dt=1.0 * u.ms)
    try:
        import numba  # noqa: F401
    except ImportError:
        brainevent.config.set_backend("cpu", "jax_raw")
    for steps, batch, hidden in GRID:
        times = bench_point(steps, batch, hidden)
        shown = ", ".join(f"{name} {ms:.2f} ms" for name, ms in times.items())
        print(f"T={steps} B={batch} hidden={hidden}: {shown}", flush=True)


if __name__ == "__main__":
    main()
