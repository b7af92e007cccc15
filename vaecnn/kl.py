"""Closed-form KL divergences between Gaussians (the notes' three forms).

All functions are pure, batched over leading axes, and return one value per example (nats).
KL(q || p) = E_q[log q(z) - log p(z)] >= 0, with equality iff q = p.
"""

import jax
import jax.numpy as jnp


def kl_mvn(mean_q: jax.Array, cov_q: jax.Array, mean_p: jax.Array, cov_p: jax.Array) -> jax.Array:
    """KL between full-covariance Gaussians, the notes' general formula.

        KL(N(mu_q, S_q) || N(mu_p, S_p)) = 1/2 [ tr(S_p^-1 S_q) + (mu_p - mu_q)^T S_p^-1 (mu_p - mu_q)
                                                 - D + log det S_p - log det S_q ]

    Computed through Cholesky factors S = L L^T, never an explicit inverse or determinant:
        tr(S_p^-1 S_q)   = ||L_p^-1 L_q||_F^2
        mahalanobis      = ||L_p^-1 (mu_p - mu_q)||^2
        log det S        = 2 sum_i log L_ii

    Args:
        mean_q, mean_p: [..., D].
        cov_q, cov_p: [..., D, D] symmetric positive definite.

    Returns:
        [...] the KL for each leading index.
    """
    dim = mean_q.shape[-1]
    chol_q_DxD = jnp.linalg.cholesky(cov_q)
    chol_p_DxD = jnp.linalg.cholesky(cov_p)
    batch_shape = jnp.broadcast_shapes(chol_q_DxD.shape[:-2], chol_p_DxD.shape[:-2], mean_q.shape[:-1],
                                       mean_p.shape[:-1])
    chol_p_DxD = jnp.broadcast_to(chol_p_DxD, batch_shape + (dim, dim))
    chol_q_DxD = jnp.broadcast_to(chol_q_DxD, batch_shape + (dim, dim))
    diff_D = jnp.broadcast_to(mean_p - mean_q, batch_shape + (dim,))

    solve = lambda b: jax.scipy.linalg.solve_triangular(chol_p_DxD, b, lower=True)
    trace_term = jnp.sum(jnp.square(solve(chol_q_DxD)), axis=(-2, -1))
    mahalanobis = jnp.sum(jnp.square(solve(diff_D[..., None])[..., 0]), axis=-1)
    log_det_p = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol_p_DxD, axis1=-2, axis2=-1)), axis=-1)
    log_det_q = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol_q_DxD, axis1=-2, axis2=-1)), axis=-1)
    return 0.5 * (trace_term + mahalanobis - dim + log_det_p - log_det_q)


def kl_diag_normal(mean_q: jax.Array, logvar_q: jax.Array, mean_p: jax.Array,
                                      logvar_p: jax.Array) -> jax.Array:
    """KL between diagonal Gaussians, summed over the last axis.

        KL = 1/2 sum_j [ var_q/var_p + (mu_p - mu_q)^2 / var_p - 1 + log var_p - log var_q ]

    Written as expm1(d) - d with d = logvar_q - logvar_p, which is exactly 0 at d = 0 and keeps
    precision when the variances are close (exp(d) - 1 - d would cancel). In float32 the value
    and its gradients are finite while |d| and -logvar_p stay below about 88 (exp overflows beyond).

    Args:
        mean_q, logvar_q, mean_p, logvar_p: [..., D] (broadcastable).

    Returns:
        [...] the KL for each leading index.
    """
    logvar_diff = logvar_q - logvar_p
    per_dim = (jnp.expm1(logvar_diff) - logvar_diff
                          + jnp.square(mean_p - mean_q) * jnp.exp(-logvar_p))
    return 0.5 * jnp.sum(per_dim, axis=-1)


def kl_std_normal(mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)), the notes' VAE case, summed over the last axis.

        KL = 1/2 sum_j [ exp(logvar_j) + mu_j^2 - 1 - logvar_j ]

    Args:
        mean, logvar: [..., D] encoder outputs.

    Returns:
        [...] the KL for each leading index.
    """
    return 0.5 * jnp.sum(jnp.expm1(logvar) - logvar + jnp.square(mean), axis=-1)
