"""A pure-JAX reference of exactly what ``helpers`` computes: the yardstick for correctness and speed.

Written from the equations, with ``jax.lax.scan`` and ``jax.custom_vjp`` only (no brainstate,
brainpy or braintools), following the same floating-point operations in the same order, so that with
the same initial weights and data it gives the same loss history as ``helpers.Trainer``:

- exponential-Euler synapse, ``g <- g + (dt * exprel(-dt/tau)) * (-g / tau) + (x @ W + b)``, where
  ``exprel(z) = expm1(z) / z``;
- LIF with brainpy's soft reset: the previous spike is recomputed from the stored potential,
  ``v <- v - (v_th - v_reset) * spike(v)``, then ``v <- v + (dt * exprel(-dt/tau_m)) * ((-v + I) / tau_m)``;
- the spike ``H(x)`` of ``x = (v - v_th) / (v_th - v_reset)``, with the ReluGrad backward
  ``max(alpha * width - |x| * alpha, 0)``;
- readout: a linear layer into a second exponential synapse; logits = the time-mean;
- softmax cross-entropy as ``braintools.metric`` computes it; Adam as ``optax.scale_by_adam``
  followed by a step of ``-lr``.

``train_epochs`` runs many epochs inside one ``jit`` (a scan over epochs), with no host
synchronisation in between.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp


class Config(NamedTuple):
    """Constants of the model and optimiser, in ms and mV (plain numbers)."""

    dt: float = 1.0
    tau_syn: float = 10.0
    tau_mem: float = 20.0
    tau_out: float = 10.0
    v_th: float = 1.0
    v_reset: float = 0.0
    alpha: float = 0.3  # ReluGrad
    width: float = 1.0
    lr: float = 3e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8


DEFAULT = Config()


class Params(NamedTuple):
    w_in: jax.Array  # [N, H] (mA)
    b_in: jax.Array  # [H] (mA)
    w_out: jax.Array  # [H, O]
    b_out: jax.Array  # [O]


class Adam(NamedTuple):
    count: jax.Array
    mu: Params
    nu: Params


def euler_factor(dt: float, tau: float, dtype) -> jax.Array:
    """``dt * exprel(-dt / tau)``: the exponential-Euler step's factor on the drift."""
    z = jnp.asarray(dt, dtype) * (jnp.asarray(-1.0, dtype) / jnp.asarray(tau, dtype))
    return jnp.asarray(dt, dtype) * (jnp.expm1(z) / z)


def make_spike(alpha: float, width: float):
    """Heaviside forward, ReluGrad backward."""

    @jax.custom_vjp
    def spike(x):
        return jnp.asarray(x >= 0, dtype=x.dtype)

    def forward(x):
        return spike(x), x

    def backward(x, g):
        return (g * jnp.maximum(alpha * width - jnp.abs(x) * alpha, 0),)

    spike.defvjp(forward, backward)
    return spike


def simulate(params: Params, spikes: jax.Array, cfg: Config = DEFAULT) -> jax.Array:
    """Readout traces ``[T, B, O]`` of the network over ``spikes [T, B, N]`` from rest."""
    dtype = params.w_in.dtype
    spike = make_spike(cfg.alpha, cfg.width)
    k_syn = euler_factor(cfg.dt, cfg.tau_syn, dtype)
    k_mem = euler_factor(cfg.dt, cfg.tau_mem, dtype)
    k_out = euler_factor(cfg.dt, cfg.tau_out, dtype)
    scale = cfg.v_th - cfg.v_reset

    def step(carry, x_t):
        g, v, o = carry
        g = (
            g + k_syn * (-g / cfg.tau_syn) + (jnp.dot(x_t, params.w_in) + params.b_in)
        )  # bool x_t: no float copy
        v = v - scale * spike((v - cfg.v_th) / scale)  # soft reset from the stored potential
        v = v + k_mem * ((-v + g) / cfg.tau_mem)
        s = spike((v - cfg.v_th) / scale)
        o = o + k_out * (-o / cfg.tau_out) + (jnp.dot(s, params.w_out) + params.b_out)
        return (g, v, o), o

    batch, hidden, outputs = spikes.shape[1], params.w_in.shape[1], params.w_out.shape[1]
    zeros = (
        jnp.zeros((batch, hidden), dtype),
        jnp.zeros((batch, hidden), dtype),
        jnp.zeros((batch, outputs), dtype),
    )
    return jax.lax.scan(step, zeros, spikes)[1]


def loss_fn(params: Params, spikes, labels, cfg: Config = DEFAULT) -> jax.Array:
    logits = jnp.mean(simulate(params, spikes, cfg), axis=0)
    logits = logits - jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True))
    label_logits = jnp.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]
    return jnp.mean(jnp.log(jnp.sum(jnp.exp(logits), axis=-1)) - label_logits)


def adam_init(params: Params) -> Adam:
    zeros = jax.tree.map(jnp.zeros_like, params)
    return Adam(jnp.zeros([], jnp.int32), zeros, zeros)


def adam_update(params: Params, grads: Params, state: Adam, cfg: Config) -> tuple[Params, Adam]:
    mu = jax.tree.map(lambda g, m: (1 - cfg.b1) * g + cfg.b1 * m, grads, state.mu)
    nu = jax.tree.map(lambda g, n: (1 - cfg.b2) * (g**2) + cfg.b2 * n, grads, state.nu)
    count = state.count + jnp.asarray(1, jnp.int32)
    mu_hat = jax.tree.map(lambda m: m / (1 - cfg.b1**count).astype(m.dtype), mu)
    nu_hat = jax.tree.map(lambda n: n / (1 - cfg.b2**count).astype(n.dtype), nu)
    step = jax.tree.map(lambda m, n: m / (jnp.sqrt(n + 0.0) + cfg.eps), mu_hat, nu_hat)
    new_params = jax.tree.map(
        lambda p, s: (p + jnp.asarray(-cfg.lr, s.dtype) * s).astype(p.dtype), params, step
    )
    return new_params, Adam(count, mu, nu)


def train_step(params: Params, opt: Adam, spikes, labels, cfg: Config = DEFAULT):
    loss, grads = jax.value_and_grad(loss_fn)(params, spikes, labels, cfg)
    params, opt = adam_update(params, grads, opt, cfg)
    return params, opt, loss


@partial(jax.jit, static_argnames=("n_epochs", "cfg"))
def train_epochs(params: Params, opt: Adam, spikes, labels, n_epochs: int, cfg: Config = DEFAULT):
    """``n_epochs`` full-batch Adam steps inside one compiled program; returns the losses too."""

    def epoch(carry, _):
        p, o = carry
        p, o, loss = train_step(p, o, spikes, labels, cfg)
        return (p, o), loss

    (params, opt), losses = jax.lax.scan(epoch, (params, opt), None, length=n_epochs)
    return params, opt, losses


train_step_jit = jax.jit(train_step, static_argnames=("cfg",))
loss_and_grads = jax.jit(jax.value_and_grad(loss_fn), static_argnames=("cfg",))


def params_from(net) -> Params:
    """The reference's parameters from a ``helpers.SNN`` (plain arrays, units dropped)."""
    import brainunit as u

    w_in = net.input_layer.weight.value
    w_out = net.readout_layer.weight.value
    return Params(
        *(
            jnp.asarray(u.get_mantissa(x))
            for x in (w_in["weight"], w_in["bias"], w_out["weight"], w_out["bias"])
        )
    )
