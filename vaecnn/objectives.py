"""The ELBO and its Monte-Carlo and importance-weighted estimates, as pure functions.

The notes' derivation: for any q(z|x),
    log p(x) = log E_q[p(x, z) / q(z|x)] >= E_q[log p(x, z) - log q(z|x)]          (Jensen)
             = E_q[log p(x|z)] - KL(q(z|x) || p(z))                                  = ELBO(x)
and log p(x) - ELBO(x) = KL(q(z|x) || p(z|x)) >= 0.

The functions take the model as two callables, so they serve every encoder/decoder:
    encode(x_BxX) -> (mean_BxZ, logvar_BxZ)                  diagonal Gaussian q(z|x)
    log_likelihood(x_BxX, z_SxBxZ) -> log p(x|z) [S, B]
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from vaecnn.kl import kl_std_normal
from vaecnn.likelihoods import gaussian_log_prob

Encoder = Callable[[jax.Array], tuple[jax.Array, jax.Array]]
LogLikelihood = Callable[[jax.Array, jax.Array], jax.Array]


def reparameterize(key: jax.Array, mean: jax.Array, logvar: jax.Array, num_samples: int = 1) -> jax.Array:
    """z = mean + exp(logvar / 2) * eps, eps ~ N(0, I): samples that are differentiable in (mean, logvar).

    Args:
        key: a typed PRNG key.
        mean, logvar: [B, Z].
        num_samples: S, independent samples per example.

    Returns:
        z_SxBxZ.
    """
    eps_SxBxZ = jax.random.normal(key, (num_samples,) + jnp.shape(mean), dtype=jnp.result_type(mean))
    return mean + jnp.exp(0.5 * logvar) * eps_SxBxZ


class ElboTerms(NamedTuple):
    """Per-example ELBO parts in nats: elbo = recon - kl."""
    elbo: jax.Array   # [B]
    recon: jax.Array  # [B] Monte-Carlo estimate of E_q[log p(x|z)]
    kl: jax.Array     # [B] closed-form KL(q(z|x) || N(0, I))


def elbo(key: jax.Array, x: jax.Array, encode: Encoder, log_likelihood: LogLikelihood,
         num_samples: int = 1) -> ElboTerms:
    """ELBO(x) = (1/S) sum_s log p(x|z_s) - KL(q(z|x) || N(0, I)),  z_s = reparameterize(...).

    The reconstruction term is averaged over S reparameterized samples (its gradient is the
    reparameterization estimator); the KL against the N(0, I) prior is exact (kl_std_normal).

    Returns:
        ElboTerms of [B] arrays.
    """
    mean_BxZ, logvar_BxZ = encode(x)
    z_SxBxZ = reparameterize(key, mean_BxZ, logvar_BxZ, num_samples)
    recon_B = jnp.mean(log_likelihood(x, z_SxBxZ), axis=0)
    kl_B = kl_std_normal(mean_BxZ, logvar_BxZ)
    return ElboTerms(elbo=recon_B - kl_B, recon=recon_B, kl=kl_B)


def log_importance_weights(key: jax.Array, x: jax.Array, encode: Encoder, log_likelihood: LogLikelihood,
                           num_samples: int) -> jax.Array:
    """log w_s = log p(x|z_s) + log p(z_s) - log q(z_s|x),  z_s ~ q(z|x),  p(z) = N(0, I).

    Returns:
        log_w_SxB.
    """
    mean_BxZ, logvar_BxZ = encode(x)
    z_SxBxZ = reparameterize(key, mean_BxZ, logvar_BxZ, num_samples)
    log_prior_SxB = gaussian_log_prob(z_SxBxZ, 0.0, 0.0)
    log_posterior_SxB = gaussian_log_prob(z_SxBxZ, mean_BxZ, logvar_BxZ)
    return log_likelihood(x, z_SxBxZ) + log_prior_SxB - log_posterior_SxB


def iwae_bound(key: jax.Array, x: jax.Array, encode: Encoder, log_likelihood: LogLikelihood,
               num_samples: int) -> jax.Array:
    """The importance-weighted bound (Burda et al. 2015) with k = num_samples:

        L_k(x) = log (1/k) sum_s w_s  <=  log p(x),   L_1 = ELBO (single-sample estimate),
        L_k increases with k and tends to log p(x).

    Returns:
        [B] per-example bounds in nats.
    """
    return bound_from_log_weights(log_importance_weights(key, x, encode, log_likelihood, num_samples))


def bound_from_log_weights(log_w_SxB: jax.Array) -> jax.Array:
    """L_k = log (1/k) sum_s w_s from the S = k log-weights log_w_SxB: [B] nats (logsumexp, so no w_s
    overflows). iwae_bound draws the weights; a caller that needs them for more (VAETask's ELBO
    estimate from the same samples) draws them once and calls this."""
    return jax.nn.logsumexp(log_w_SxB, axis=0) - jnp.log(log_w_SxB.shape[0])


def importance_weighted_log_likelihood(key: jax.Array, x: jax.Array, encode: Encoder,
                                       log_likelihood: LogLikelihood, num_samples: int,
                                       chunk_size: int = 500) -> jax.Array:
    """The k-sample estimate of log p(x), accumulated over chunks so memory stays O(chunk_size).

    A running logsumexp over ceil(k / chunk_size) chunks of samples (lax.scan), each chunk with its
    own key: log (1/k) sum_{s<k} w_s, equal in distribution to iwae_bound with num_samples = k.

    Returns:
        [B] per-example estimates in nats.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    chunk_size = min(chunk_size, num_samples)
    num_chunks = -(-num_samples // chunk_size)

    def chunk_log_weights(chunk_index):
        return log_importance_weights(jax.random.fold_in(key, chunk_index), x, encode, log_likelihood,
                                      chunk_size)

    def add_chunk(running_lse_B, chunk_index):
        log_w_SxB = chunk_log_weights(chunk_index)
        # The last chunk may be partly beyond k: those samples get weight 0 (log w = -inf).
        sample_index_S = chunk_index * chunk_size + jnp.arange(chunk_size)
        log_w_SxB = jnp.where((sample_index_S < num_samples)[:, None], log_w_SxB, -jnp.inf)
        return jnp.logaddexp(running_lse_B, jax.nn.logsumexp(log_w_SxB, axis=0)), None

    log_w_shape = jax.eval_shape(chunk_log_weights, 0)  # the carry takes the model's dtype
    initial_B = jnp.full(log_w_shape.shape[1:], -jnp.inf, dtype=log_w_shape.dtype)
    lse_B, _ = jax.lax.scan(add_chunk, initial_B, jnp.arange(num_chunks))
    return lse_B - jnp.log(num_samples)
