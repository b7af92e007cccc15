"""ELBO, reparameterization and importance weighting, checked on a linear-Gaussian model where
log p(x) and the posterior are exact (probabilistic PCA): the notes' bound, in numbers."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vaecnn import (elbo, gaussian_log_prob, importance_weighted_log_likelihood, iwae_bound, kl_diag_normal,
                    reparameterize)

# The model: z ~ N(0, I_2), x | z ~ N(W z + b, s^2 I_3). Then p(x) = N(b, W W^T + s^2 I) and the
# posterior is N(M^-1 W^T (x - b) / s^2, M^-1) with M = I + W^T W / s^2.
W = np.array([[1.0, 0.5], [-0.3, 0.8], [0.2, -1.1]])
B = np.array([0.1, -0.2, 0.3])
NOISE_LOGVAR = np.log(0.5)


def log_likelihood(x_BxX, z_SxBxZ):
    return gaussian_log_prob(x_BxX, z_SxBxZ @ W.T + B, NOISE_LOGVAR)


def exact_log_px(x_BxX):
    from scipy.stats import multivariate_normal
    cov = W @ W.T + np.exp(NOISE_LOGVAR) * np.eye(3)
    return multivariate_normal(B, cov).logpdf(np.asarray(x_BxX))


def exact_posterior(x_BxX):
    """Mean and full covariance of p(z|x)."""
    precision = np.eye(2) + W.T @ W / np.exp(NOISE_LOGVAR)
    cov = np.linalg.inv(precision)
    mean = (np.asarray(x_BxX) - B) @ W @ cov.T / np.exp(NOISE_LOGVAR)
    return mean, cov


def data(num=6):
    return jnp.asarray(np.random.default_rng(0).normal(size=(num, 3)) * 1.5, jnp.float64)


class ObjectivesTest(chex.TestCase):

    def setUp(self):
        super().setUp()
        self.enter_context(jax.enable_x64(True))

    @chex.variants(with_jit=True, without_jit=True)
    def test_reparameterize_moments_and_shapes(self):
        mean, logvar = jnp.array([[1.0, -2.0]]), jnp.array([[0.0, np.log(4.0)]])
        z = self.variant(reparameterize, static_argnums=3)(jax.random.key(0), mean, logvar, 50_000)
        chex.assert_shape(z, (50_000, 1, 2))
        np.testing.assert_allclose(z.mean(0)[0], [1.0, -2.0], atol=0.03)
        np.testing.assert_allclose(z.std(0)[0], [1.0, 2.0], rtol=0.02)
        # Differentiable in (mean, logvar): d z / d mean = 1.
        grad = jax.grad(lambda m: reparameterize(jax.random.key(0), m, logvar, 3).sum())(mean)
        np.testing.assert_allclose(grad, [[3.0, 3.0]])

    def test_log_weights_equal_log_px_at_the_exact_full_covariance_posterior(self):
        # With q = p(z|x), log p(x,z) - log q(z|x) = log p(x) for every z: the bound is exact, and its
        # Monte-Carlo estimate has zero variance. This posterior has a full covariance, which the
        # diagonal encoders of `elbo` cannot express, hence the log weights by hand (elbo: next test).
        x = data()
        mean, cov = exact_posterior(x)
        chol = np.linalg.cholesky(cov)
        eps = np.random.default_rng(1).normal(size=(7, len(x), 2))
        z = mean + eps @ chol.T
        from scipy.stats import multivariate_normal
        log_q = np.stack([[multivariate_normal(mean[b], cov).logpdf(z[s, b]) for b in range(len(x))]
                          for s in range(7)])
        log_joint = np.asarray(log_likelihood(x, jnp.asarray(z))) + gaussian_log_prob(jnp.asarray(z), 0.0, 0.0)
        np.testing.assert_allclose(log_joint - log_q, np.broadcast_to(exact_log_px(x), (7, len(x))), atol=1e-8)

    @chex.variants(with_jit=True, without_jit=True)
    def test_elbo_equals_log_px_at_an_exact_diagonal_posterior(self):
        # W with orthogonal columns makes p(z|x) diagonal, so `elbo` itself can be handed the exact
        # posterior: its estimate is then log p(x), up to the Monte-Carlo error of its reconstruction term.
        w = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
        noise_var = np.exp(NOISE_LOGVAR)
        x = data()
        post_var = 1.0 / (1.0 + np.diag(w.T @ w) / noise_var)
        post_mean = (np.asarray(x) - B) @ w * post_var / noise_var
        encode = lambda _: (jnp.asarray(post_mean), jnp.asarray(np.log(np.broadcast_to(post_var, post_mean.shape))))
        likelihood = lambda x_BxX, z_SxBxZ: gaussian_log_prob(x_BxX, z_SxBxZ @ w.T + B, NOISE_LOGVAR)
        from scipy.stats import multivariate_normal
        log_px = multivariate_normal(B, w @ w.T + noise_var * np.eye(3)).logpdf(np.asarray(x))
        terms = self.variant(lambda key: elbo(key, x, encode, likelihood, num_samples=200_000))(jax.random.key(5))
        chex.assert_shape(terms.elbo, (len(x),))
        np.testing.assert_allclose(terms.elbo, log_px, atol=0.01)  # about 5 standard errors
        # The gap is KL(q || p(z|x)) = 0: an encoder off the posterior scores lower.
        shifted = lambda _: (jnp.asarray(post_mean + 0.5), encode(None)[1])
        worse = elbo(jax.random.key(5), x, shifted, likelihood, num_samples=200_000).elbo
        assert np.all(np.asarray(worse) < log_px - 0.05)

    def test_elbo_below_log_px_and_gap_is_kl_to_posterior(self):
        """For a diagonal q: log p(x) - ELBO = KL(q || p(z|x)) > 0, computed in closed form."""
        x = data()
        post_mean, post_cov = exact_posterior(x)
        rng = np.random.default_rng(2)
        q_mean = post_mean + rng.normal(size=post_mean.shape) * 0.3
        q_logvar = np.log(np.diag(post_cov))[None] + rng.normal(size=post_mean.shape) * 0.2
        encode = lambda _: (jnp.asarray(q_mean), jnp.asarray(q_logvar))
        from vaecnn import kl_mvn

        @jax.jit  # one program: op by op, the 200,000-sample estimate compiled each of its operations
        def bound_gap_and_kl():
            terms = elbo(jax.random.key(3), x, encode, log_likelihood, num_samples=200_000)
            gap = kl_mvn(jnp.asarray(q_mean), jnp.asarray(np.eye(2) * np.exp(q_logvar)[..., None, :]),
                         jnp.asarray(post_mean), jnp.asarray(post_cov))
            return terms, gap, kl_diag_normal(jnp.asarray(q_mean), jnp.asarray(q_logvar), 0.0, 0.0)

        terms, gap, diagonal_kl = bound_gap_and_kl()
        log_px = exact_log_px(x)
        assert np.all(np.asarray(terms.elbo) < log_px)
        np.testing.assert_allclose(log_px - np.asarray(terms.elbo), gap, atol=0.01)
        chex.assert_trees_all_close(terms.elbo, terms.recon - terms.kl)
        chex.assert_trees_all_close(terms.kl, diagonal_kl)

    @pytest.mark.slow
    def test_importance_weighted_estimate_rises_towards_log_px(self):
        x = data()
        post_mean, post_cov = exact_posterior(x)
        # A poor q (off-centre and too wide, so the weights stay bounded): the k = 1 gap is large,
        # and the k-sample estimate closes it as k grows.
        encode = lambda _: (jnp.asarray(post_mean) + 0.5, jnp.asarray(np.log(np.diag(post_cov)) + 1.0)[None]
                            * jnp.ones_like(jnp.asarray(post_mean)))
        log_px = exact_log_px(x)
        means, errors = [], []
        for k in (1, 10, 100, 5000):
            estimate = jax.jit(lambda key: importance_weighted_log_likelihood(key, x, encode, log_likelihood, k,
                                                                              chunk_size=500))
            draws = np.asarray(jax.vmap(estimate)(jax.random.split(jax.random.key(k), 100)))
            means.append(draws.mean(0))
            errors.append(draws.std(0) / np.sqrt(len(draws)))
        means, errors = np.asarray(means), np.asarray(errors)
        tolerance = 5 * errors + 1e-3
        assert np.all(means <= log_px + tolerance), (means, log_px)              # a lower bound
        assert np.all(np.diff(means, axis=0) > -5 * np.hypot(errors[1:], errors[:-1])), means  # rises in k
        assert np.all(log_px - means[0] > 0.5)                                   # k = 1 well below
        np.testing.assert_allclose(means[-1], log_px, atol=0.02)                 # k = 5000 closes the gap

    @pytest.mark.slow
    def test_chunking_does_not_change_the_estimate_and_iwae_k1_is_the_elbo(self):
        x = data()
        post_mean, post_cov = exact_posterior(x)
        encode = lambda _: (jnp.asarray(post_mean) + 0.2, jnp.asarray(np.log(np.diag(post_cov)))[None]
                            * jnp.ones((len(x), 2)))
        keys = jax.random.split(jax.random.key(0), 200)

        def mean_and_error(fn):
            draws = np.asarray(jax.vmap(jax.jit(fn))(keys))
            return draws.mean(0), draws.std(0) / np.sqrt(len(draws))

        chunked, chunked_error = mean_and_error(
            lambda key: importance_weighted_log_likelihood(key, x, encode, log_likelihood, 300, chunk_size=70))
        whole, whole_error = mean_and_error(lambda key: iwae_bound(key, x, encode, log_likelihood, 300))
        assert np.all(np.abs(chunked - whole) < 5 * np.hypot(chunked_error, whole_error)), (chunked, whole)
        # With one chunk the two computations draw the same samples: equal to rounding.
        key = jax.random.key(1)
        np.testing.assert_allclose(
            importance_weighted_log_likelihood(key, x, encode, log_likelihood, 50, chunk_size=50),
            iwae_bound(jax.random.fold_in(key, 0), x, encode, log_likelihood, 50), rtol=1e-12)
        # k = 1: the bound is a one-sample ELBO estimate.
        one, one_error = mean_and_error(lambda key: iwae_bound(key, x, encode, log_likelihood, 1))
        exact_elbo = elbo(jax.random.key(9), x, encode, log_likelihood, 200_000).elbo
        assert np.all(np.abs(one - exact_elbo) < 5 * one_error + 0.01), (one, exact_elbo)
        chex.assert_shape(one, (len(x),))
