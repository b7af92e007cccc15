"""The VAE module follows the notes' pseudo-code and supports both likelihoods."""

import chex
import jax
import jax.numpy as jnp
import numpy as np

from vaecnn import bernoulli_log_prob, kl_std_normal
from vaecnn.models.vae import VAE, make_vae


class VAEModelTest(chex.TestCase):

    def setUp(self):
        super().setUp()
        self.model = make_vae((8, 8, 1), hidden_sizes=(32,), latent_dim=4)
        self.x = jax.random.bernoulli(jax.random.key(0), 0.3, (5, 8, 8, 1)).astype(jnp.float32)
        self.params = self.model.init(jax.random.key(1), self.x, jax.random.key(2))["params"]

    @chex.variants(with_jit=True, without_jit=True)
    def test_forward_pass_is_the_notes_pseudo_code(self):
        key = jax.random.key(3)
        forward = self.variant(lambda p, x, k: self.model.apply({"params": p}, x, k))
        x_tilde, terms = forward(self.params, self.x, key)
        chex.assert_shape(x_tilde, (5, 8, 8, 1))
        chex.assert_shape((terms.elbo, terms.recon, terms.kl), [(5,)] * 3)
        # By hand: mu, logvar = encode(x); z = mu + sigma * eps; x_tilde = decode(z); BCE + KL.
        mean, logvar = self.model.apply({"params": self.params}, self.x, method=VAE.encode)
        eps = jax.random.normal(jax.random.key(3), (1, 5, 4))
        z = mean + jnp.exp(0.5 * logvar) * eps
        logits = self.model.apply({"params": self.params}, z, method=VAE.decode)
        bce = -bernoulli_log_prob(self.x, logits[0], event_ndims=3)
        div_kl = 0.5 * jnp.sum(jnp.exp(logvar) + mean ** 2 - 1 - logvar, axis=-1)
        chex.assert_trees_all_close(-terms.recon, bce, rtol=1e-5)
        chex.assert_trees_all_close(terms.kl, div_kl, rtol=1e-5)
        chex.assert_trees_all_close(terms.kl, kl_std_normal(mean, logvar), rtol=1e-6)
        loss = jnp.mean(bce + div_kl)
        np.testing.assert_allclose(jnp.mean(-terms.elbo), loss, rtol=1e-5)
        assert float(x_tilde.min()) >= 0.0 and float(x_tilde.max()) <= 1.0  # Bernoulli means

    def test_more_samples_reduce_the_variance_of_the_estimate(self):
        estimate = jax.jit(lambda key, s: self.model.apply({"params": self.params}, self.x, key, s)[1].elbo,
                           static_argnums=1)
        spread = {s: np.std([estimate(jax.random.key(i), s) for i in range(30)], axis=0).mean() for s in (1, 16)}
        assert spread[16] < spread[1] / 2, spread

    def test_gaussian_likelihood_fixed_and_learned_variance(self):
        x = jax.random.uniform(jax.random.key(4), (3, 8, 8, 1))
        fixed = make_vae((8, 8, 1), (16,), 2, likelihood="gaussian", gaussian_logvar=0.0)
        learned = make_vae((8, 8, 1), (16,), 2, likelihood="gaussian", gaussian_logvar=None)
        fixed_params = fixed.init(jax.random.key(0), x, jax.random.key(1))["params"]
        learned_params = learned.init(jax.random.key(0), x, jax.random.key(1))["params"]
        assert "pixel_logvar" not in fixed_params
        chex.assert_shape(learned_params["pixel_logvar"], (8, 8, 1))
        _, fixed_terms = fixed.apply({"params": fixed_params}, x, jax.random.key(2))
        _, learned_terms = learned.apply({"params": learned_params}, x, jax.random.key(2))
        # With the learned log-variance at its initial 0, both are the same unit-variance Gaussian.
        chex.assert_trees_all_close(fixed_terms, learned_terms, rtol=1e-5)
        grads = jax.grad(lambda p: -learned.apply({"params": p}, x, jax.random.key(2))[1].elbo.mean())(learned_params)
        assert float(jnp.abs(grads["pixel_logvar"]).sum()) > 0
        chex.assert_tree_all_finite(grads)
