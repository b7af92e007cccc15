"""Reconstruction log-likelihoods log p(x | z), summed over event axes.

The notes' two reconstruction losses are the negatives of these: binary cross-entropy is
-bernoulli_log_prob and mean squared error is -gaussian_log_prob up to the variance's scale
and constant (exactly so for a fixed unit variance: -log N(x; m, 1) = 0.5 (x-m)^2 + 0.5 log 2 pi).
"""

import math

import jax
import jax.numpy as jnp


def _flat_events(event_ndims: int, *arrays: jax.Array) -> list[jax.Array]:
    """The arrays broadcast against each other, their trailing `event_ndims` axes folded into one (with
    event_ndims = 0, an axis of size 1 added), so that log-probabilities are summed over the last axis.

    Why: XLA:CPU reduced an image's several small trailing axes (H, W and a channel axis of 1) several
    times slower than one axis of H * W * C; in the default VAE's training step that sum cost about an
    eighth of the step (benchmarks/results/vae_step_profile.md)."""
    shape = jnp.broadcast_shapes(*[jnp.shape(array) for array in arrays])
    if event_ndims < 0 or event_ndims > len(shape):
        raise ValueError(f"event_ndims={event_ndims} does not fit an array of rank {len(shape)}")
    flat = shape[:len(shape) - event_ndims] + (math.prod(shape[len(shape) - event_ndims:]),)
    return [jnp.broadcast_to(array, shape).reshape(flat) for array in arrays]


def bernoulli_log_prob(x: jax.Array, logits: jax.Array, event_ndims: int = 1) -> jax.Array:
    """log Bernoulli(x; sigmoid(logits)), stable for any logit magnitude.

        log p(x) = x log sigmoid(l) + (1 - x) log(1 - sigmoid(l))
                 = -[x softplus(-l) + (1 - x) softplus(l)]
                 = -[softplus(s l) + (r - x) l],    r = [x >= 1/2],  s = 1 - 2r,

    the last line by softplus(-l) = softplus(l) - l, taken on the side of the larger weight (so the
    correction (r - x) l is at most |l| / 2, and nothing large cancels). softplus is evaluated as
    logaddexp(0, .), so |l| = 1e4 stays finite (sigmoid then log would give log 0 = -inf, and its
    gradient NaN). x may be fractional in [0, 1] (cross-entropy with soft targets).

    Why the last form: it takes one softplus per element, where the second line takes two (an exp and
    a log1p forward, and again backward: about 3.5% of the default VAE's training step on a CPU). For
    binary x (the VAE's binarized images) r - x = 0 and softplus(s l) is the second line's surviving
    term, so values and gradients are the same bits as the second line's.

    Args:
        x: [..., *event] targets in [0, 1].
        logits: [..., *event] (broadcastable with x).
        event_ndims: trailing axes summed over.

    Returns:
        [...] log-probabilities in nats.
    """
    x, logits = _flat_events(event_ndims, x, logits)
    nearest_bit = (x >= 0.5).astype(x.dtype)
    return -jnp.sum(jax.nn.softplus((1.0 - 2.0 * nearest_bit) * logits) + (nearest_bit - x) * logits, axis=-1)


def gaussian_log_prob(x: jax.Array, mean: jax.Array, logvar: jax.Array | float,
                      event_ndims: int = 1) -> jax.Array:
    """log N(x; mean, diag(exp(logvar))), summed over event axes.

        log p(x) = -1/2 sum [ log(2 pi) + logvar + (x - mean)^2 exp(-logvar) ]

    Args:
        x, mean: [..., *event].
        logvar: broadcastable with x: a scalar for a fixed variance, or per-pixel values.
        event_ndims: trailing axes summed over.

    Returns:
        [...] log-densities in nats.
    """
    logvar = jnp.broadcast_to(jnp.asarray(logvar, dtype=jnp.result_type(mean)), jnp.shape(mean))
    x, mean, logvar = _flat_events(event_ndims, x, mean, logvar)
    return -0.5 * jnp.sum(math.log(2 * math.pi) + logvar + jnp.square(x - mean) * jnp.exp(-logvar), axis=-1)
