"""Bernoulli and Gaussian log-likelihoods: exact values, stability, the notes' BCE and MSE."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vaecnn import bernoulli_log_prob, gaussian_log_prob


class LikelihoodTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    def test_bernoulli_matches_direct_formula_for_moderate_logits(self):
        rng = np.random.default_rng(0)
        logits = rng.normal(size=(3, 5)) * 4
        x = rng.integers(0, 2, size=(3, 5)).astype(np.float64)
        p = 1 / (1 + np.exp(-logits))
        expected = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=-1)
        np.testing.assert_allclose(self.variant(bernoulli_log_prob)(jnp.asarray(x), jnp.asarray(logits)),
                                   expected, rtol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_bernoulli_finite_values_and_gradients_for_huge_logits(self):
        # Where log(sigmoid(l)) gives -inf (and NaN gradients) once |l| passes ~100 in float32.
        logits = jnp.array([[-1e4, -150.0, 0.0, 150.0, 1e4]])
        for x in (jnp.zeros_like(logits), jnp.ones_like(logits), jnp.full_like(logits, 0.3)):
            value = self.variant(bernoulli_log_prob)(x, logits)
            grad = jax.grad(lambda l: jnp.sum(bernoulli_log_prob(x, l)))(logits)
            chex.assert_tree_all_finite((value, grad))
            np.testing.assert_allclose(grad, x - jax.nn.sigmoid(logits), atol=1e-6)
        # A confident right answer costs ~0 nats; a confident wrong one costs |l| nats.
        np.testing.assert_allclose(bernoulli_log_prob(jnp.array([1.0, 0.0]), jnp.array([1e4, 1e4]), 0),
                                   [0.0, -1e4], rtol=1e-6)

    def test_bernoulli_is_negative_binary_cross_entropy(self):
        rng = np.random.default_rng(1)
        x, logits = rng.uniform(size=(4, 6)), rng.normal(size=(4, 6))
        p = 1 / (1 + np.exp(-logits))
        bce = -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum(-1)
        np.testing.assert_allclose(-bernoulli_log_prob(jnp.asarray(x), jnp.asarray(logits)), bce, rtol=1e-5)

    def test_bernoulli_of_binary_targets_is_the_two_softplus_form_to_the_bit(self):
        """The one-softplus form gives the VAE's binarized images the same bits, values and gradients,
        as -[x softplus(-l) + (1 - x) softplus(l)]; soft targets on either side of 1/2 stay exact."""
        def two_softplus(x, logits):
            return -jnp.sum(x * jax.nn.softplus(-logits) + (1.0 - x) * jax.nn.softplus(logits), axis=-1)

        rng = np.random.default_rng(4)
        logits_SxBxD = jnp.asarray(rng.normal(size=(2, 16, 784)) * rng.choice([0.1, 3.0, 30.0, 1e4], (2, 16, 1)),
                                   jnp.float32)
        x_BxD = jnp.asarray(rng.random((16, 784)) < 0.3, jnp.float32)
        weights_S = jnp.array([[1.0], [3.0]])  # unequal cotangents: each sample's gradient checked

        @jax.jit
        def both(logits):
            return [jax.value_and_grad(lambda l: jnp.sum(f(x_BxD, l) * weights_S))(logits)
                    for f in (two_softplus, bernoulli_log_prob)]

        (reference_value, reference_grad), (value, grad) = both(logits_SxBxD)
        np.testing.assert_array_equal(value, reference_value)
        np.testing.assert_array_equal(grad, reference_grad)
        soft = jnp.array([0.0, 0.25, 0.49, 0.5, 0.51, 0.75, 1.0])
        for l in (-30.0, -1.0, 0.0, 2.0, 30.0):
            log_p, log_1mp = -np.logaddexp(0.0, -np.float64(l)), -np.logaddexp(0.0, np.float64(l))  # float64
            expected = np.asarray(soft, np.float64) * log_p + (1 - np.asarray(soft, np.float64)) * log_1mp
            np.testing.assert_allclose(bernoulli_log_prob(soft, jnp.full_like(soft, l), 0), expected, rtol=2e-6,
                                       atol=1e-7)

    def test_event_ndims_sums_trailing_axes(self):
        x, logits = jnp.ones((2, 3, 4, 5)), jnp.zeros((2, 3, 4, 5))
        chex.assert_shape(bernoulli_log_prob(x, logits, event_ndims=3), (2,))
        np.testing.assert_allclose(bernoulli_log_prob(x, logits, event_ndims=3), -60 * np.log(2), rtol=1e-6)
        with pytest.raises(ValueError, match="event_ndims"):
            bernoulli_log_prob(x, logits, event_ndims=5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_gaussian_matches_scipy_density(self):
        from scipy.stats import norm
        rng = np.random.default_rng(2)
        x, mean, logvar = rng.normal(size=(3, 4, 7))
        expected = norm.logpdf(x, mean, np.exp(0.5 * logvar)).sum(-1)
        np.testing.assert_allclose(self.variant(gaussian_log_prob)(x, mean, logvar), expected, rtol=1e-5)

    def test_gaussian_unit_variance_is_half_squared_error_plus_constant(self):
        rng = np.random.default_rng(3)
        x, mean = rng.normal(size=(2, 5, 10))
        squared_error = 0.5 * np.sum((x - mean) ** 2, -1)
        np.testing.assert_allclose(-gaussian_log_prob(x, mean, 0.0), squared_error + 5 * np.log(2 * np.pi),
                                   rtol=1e-5)
