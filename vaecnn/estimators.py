"""Gradient estimators for d/dphi E_{q_phi(z)}[f(z)], the notes' two answers, as pure functions.

The ELBO's reconstruction term E_q[log p(x|z)] is an expectation under a distribution that depends
on the encoder parameters phi, so its gradient cannot be moved inside the expectation as it is.
Two unbiased Monte-Carlo estimators from S samples z_s ~ q_phi:

    score function ("policy gradient", REINFORCE):
        grad E_q[f] = E_q[f(z) grad log q_phi(z)]               (grad q = q grad log q)
                   ~ (1/S) sum_s (f(z_s) - b) grad log q_phi(z_s)
        Any baseline b that does not depend on z_s keeps it unbiased, because E_q[grad log q] = 0;
        a b close to E_q[f] removes most of its variance (a control variate).

    reparameterization (pathwise):
        z = g_phi(eps) = mean_phi + exp(logvar_phi / 2) eps,  eps ~ N(0, I)
        grad E_q[f] = E_eps[grad_z f(z) dz/dphi]
                   ~ (1/S) sum_s grad_phi f(g_phi(eps_s))

The functions take q as a callable of phi, so they serve any encoder:
    encode(params) -> (mean_BxZ, logvar_BxZ)         diagonal Gaussian q_phi(z), one per example
    f(z_SxBxZ) -> [S, B]                             the integrand, e.g. z -> log p(x|z), phi-free
and estimate the gradient of the batch mean, mean_b E_{q_phi(z|x_b)}[f_b(z)], as a pytree like params.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from vaecnn.likelihoods import gaussian_log_prob
from vaecnn.objectives import reparameterize

Params = Any
GaussianOf = Callable[[Params], tuple[jax.Array, jax.Array]]
Integrand = Callable[[jax.Array], jax.Array]
BASELINES = ("none", "f_at_mean", "leave_one_out")


def reparameterization_gradient(key: jax.Array, params: Params, encode: GaussianOf, f: Integrand,
                                num_samples: int) -> Params:
    """grad_phi mean_b (1/S) sum_s f(mean_phi + exp(logvar_phi / 2) eps_s),  eps_s ~ N(0, I).

    Differentiates through the sample: uses grad_z f, so f must be differentiable in z.
    """
    def sample_average(params):
        mean_BxZ, logvar_BxZ = encode(params)
        return jnp.mean(f(reparameterize(key, mean_BxZ, logvar_BxZ, num_samples)))

    return jax.grad(sample_average)(params)


def score_function_gradient(key: jax.Array, params: Params, encode: GaussianOf, f: Integrand,
                            num_samples: int, baseline: str = "none") -> Params:
    """mean_b (1/S) sum_s (f(z_s) - b_s) grad_phi log q_phi(z_s),  z_s ~ q_phi (not differentiated).

    Only f's values are used (f may be a black box); the gradient flows through log q alone, as the
    gradient of the surrogate mean_{s,b} stop_gradient(f(z_s) - b_s) log q_phi(z_s).

    baseline, per example b:
        'none':          b_s = 0
        'f_at_mean':     b_s = f(mean_phi(x_b)), one extra evaluation of f, independent of every z_s
        'leave_one_out': b_s = mean_{j != s} f(z_j), independent of z_s (needs S >= 2)
    """
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}")
    if baseline == "leave_one_out" and num_samples < 2:
        raise ValueError(f"the leave-one-out baseline needs num_samples >= 2, got {num_samples}")
    mean_BxZ, logvar_BxZ = jax.lax.stop_gradient(encode(params))
    z_SxBxZ = reparameterize(key, mean_BxZ, logvar_BxZ, num_samples)
    f_SxB = f(z_SxBxZ)
    if baseline == "f_at_mean":
        f_SxB = f_SxB - f(mean_BxZ[None])
    elif baseline == "leave_one_out":
        f_SxB = f_SxB - (jnp.sum(f_SxB, axis=0) - f_SxB) / (num_samples - 1)
    advantage_SxB = jax.lax.stop_gradient(f_SxB)

    def surrogate(params):
        return jnp.mean(advantage_SxB * gaussian_log_prob(z_SxBxZ, *encode(params)))

    return jax.grad(surrogate)(params)


class GradientMoments(NamedTuple):
    """Per-parameter moments of a gradient estimator over independent estimates (pytrees like params)."""
    mean: Params
    variance: Params  # unbiased (divides by N - 1)
    num_estimates: int

    def total_variance(self) -> jax.Array:
        """trace Cov[g_hat] = E ||g_hat - E g_hat||^2: the sum of the per-parameter variances."""
        return sum(jnp.sum(leaf) for leaf in jax.tree.leaves(self.variance))

    def squared_norm_of_mean(self) -> jax.Array:
        """||mean g_hat||^2, the scale against which the variance matters."""
        return sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree.leaves(self.mean))


def gradient_moments(estimator: Callable[[jax.Array], Params], key: jax.Array,
                     num_estimates: int) -> GradientMoments:
    """Mean and variance of `estimator(key_n)` over N = num_estimates independent keys.

    Welford's running update inside lax.scan, so memory stays at three copies of the parameters
    whatever N, and no E[g^2] - E[g]^2 cancellation when the mean dominates:
        delta = g_n - m_{n-1};  m_n = m_{n-1} + delta / n;  M_n = M_{n-1} + delta (g_n - m_n)
        variance = M_N / (N - 1).
    """
    if num_estimates < 2:
        raise ValueError(f"a variance needs num_estimates >= 2, got {num_estimates}")

    def update(carry, index):
        mean, m2 = carry
        g = estimator(jax.random.fold_in(key, index))
        count = index + 1
        delta = jax.tree.map(jnp.subtract, g, mean)
        mean = jax.tree.map(lambda m, d: m + d / count.astype(d.dtype), mean, delta)
        m2 = jax.tree.map(lambda acc, d, gi, m: acc + d * (gi - m), m2, delta, g, mean)
        return (mean, m2), None

    like = jax.eval_shape(estimator, key)
    zeros = jax.tree.map(lambda leaf: jnp.zeros(leaf.shape, leaf.dtype), like)
    (mean, m2), _ = jax.lax.scan(update, (zeros, zeros), jnp.arange(num_estimates))
    variance = jax.tree.map(lambda acc: acc / (num_estimates - 1), m2)
    return GradientMoments(mean=mean, variance=variance, num_estimates=num_estimates)
