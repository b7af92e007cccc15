"""The VAE module follows the notes' pseudo-code and supports both likelihoods."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vaecnn import bernoulli_log_prob, kl_std_normal
from vaecnn.models.vae import VAE, make_vae


class VAEModelTest(chex.TestCase):
    """One model, initialised once (jitted: initialised op by op, it compiled a PRNG program per kernel shape).

    The keys are 'rbg': on a CPU its programs compile several times faster than threefry's, and nothing
    here depends on which generator draws the noise."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.model = make_vae((8, 8, 1), hidden_sizes=(32,), latent_dim=4)
        cls.x = jnp.asarray(np.random.default_rng(0).random((5, 8, 8, 1)) < 0.3, jnp.float32)
        cls.params = jax.jit(cls.model.init)(jax.random.key(1, impl="rbg"), cls.x, jax.random.key(2, impl="rbg"))["params"]

    @chex.variants(with_jit=True, without_jit=True)
    def test_forward_pass_is_the_notes_pseudo_code(self):
        key = jax.random.key(3, impl="rbg")
        forward = self.variant(lambda p, x, k: self.model.apply({"params": p}, x, k))
        x_tilde, terms = forward(self.params, self.x, key)
        chex.assert_shape(x_tilde, (5, 8, 8, 1))
        chex.assert_shape((terms.elbo, terms.recon, terms.kl), [(5,)] * 3)

        @jax.jit
        def by_hand(params, x):
            """mu, logvar = encode(x); z = mu + sigma * eps; x_tilde = decode(z); BCE and KL."""
            mean, logvar = self.model.apply({"params": params}, x, method=VAE.encode)
            eps = jax.random.normal(key, (1, 5, 4))
            z = mean + jnp.exp(0.5 * logvar) * eps
            logits = self.model.apply({"params": params}, z, method=VAE.decode)
            bce = -bernoulli_log_prob(x, logits[0], event_ndims=3)
            div_kl = 0.5 * jnp.sum(jnp.exp(logvar) + mean ** 2 - 1 - logvar, axis=-1)
            return bce, div_kl, kl_std_normal(mean, logvar)

        bce, div_kl, closed_form_kl = by_hand(self.params, self.x)
        chex.assert_trees_all_close(-terms.recon, bce, rtol=1e-5)
        chex.assert_trees_all_close(terms.kl, div_kl, rtol=1e-5)
        chex.assert_trees_all_close(terms.kl, closed_form_kl, rtol=1e-6)
        np.testing.assert_allclose(np.mean(-terms.elbo), np.mean(bce + div_kl), rtol=1e-5)
        assert float(x_tilde.min()) >= 0.0 and float(x_tilde.max()) <= 1.0  # Bernoulli means

    def test_more_samples_reduce_the_variance_of_the_estimate(self):
        estimate = jax.jit(lambda key, s: self.model.apply({"params": self.params}, self.x, key, s)[1].elbo,
                           static_argnums=1)
        spread = {s: np.std([estimate(jax.random.key(i, impl="rbg"), s) for i in range(30)], axis=0).mean() for s in (1, 16)}
        assert spread[16] < spread[1] / 2, spread

    def test_log_importance_weights_average_to_the_elbo(self):
        """log w = log p(x|z) + log p(z) - log q(z|x) has mean ELBO (its one-sample-KL estimate): with
        20,000 samples it matches the closed-form-KL ELBO within Monte-Carlo error."""
        key_a, key_b = jax.random.key(3, impl="rbg"), jax.random.key(4, impl="rbg")
        log_w, (_, terms) = jax.jit(lambda params: (
            self.model.apply({"params": params}, self.x, key_a, 20_000, method=VAE.log_importance_weights),
            self.model.apply({"params": params}, self.x, key_b, 20_000)))(self.params)
        chex.assert_shape(log_w, (20_000, 5))
        np.testing.assert_allclose(log_w.mean(0), terms.elbo, atol=4 * float(log_w.std(0).max()) / np.sqrt(20_000))

    @pytest.mark.slow
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


class ConvVAETest(chex.TestCase):
    """--arch=conv: stride-2 convolutions around the MLP's dense layers, same interface and likelihoods."""

    def test_shapes_on_mnist_sizes(self):
        """Shapes only (jax.eval_shape: nothing compiles): 28x28 -> 14x14x4 -> 7x7x8 and back."""
        model = make_vae((28, 28, 1), hidden_sizes=(16,), latent_dim=3, arch="conv", conv_features=(4, 8))
        x, key = jnp.zeros((2, 28, 28, 1)), jax.random.key(0)
        params = jax.eval_shape(model.init, key, x, key)["params"]
        chex.assert_shape(params["encoder"]["Conv_1"]["kernel"], (3, 3, 4, 8))
        chex.assert_shape(params["decoder"]["pixels"]["kernel"], (3, 3, 4, 1))
        apply = lambda method, *args: jax.eval_shape(lambda p: model.apply({"params": p}, *args, method=method),
                                                     params)
        chex.assert_shape(apply(VAE.encode, x), [(2, 3), (2, 3)])
        chex.assert_shape(apply(VAE.decode, jnp.zeros((5, 2, 3))), (5, 2, 28, 28, 1))
        chex.assert_shape(apply(VAE.log_importance_weights, x, key, 5), (5, 2))

    @pytest.mark.slow
    def test_runs_on_digits_sizes_with_a_learned_variance(self):
        x = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1))
        model = make_vae((8, 8, 1), hidden_sizes=(16,), latent_dim=3, likelihood="gaussian", gaussian_logvar=None,
                         arch="conv", conv_features=(4, 8))
        # rbg keys: on this CPU the conv init compiles several times faster than with threefry.
        params = model.init(jax.random.key(1, impl="rbg"), x, jax.random.key(2, impl="rbg"))["params"]
        chex.assert_shape(params["pixel_logvar"], (8, 8, 1))
        x_tilde, terms = jax.jit(lambda p: model.apply({"params": p}, x, jax.random.key(3, impl="rbg"), 4))(params)
        chex.assert_shape(x_tilde, (2, 8, 8, 1))
        chex.assert_shape((terms.elbo, terms.recon, terms.kl), [(2,)] * 3)
        chex.assert_tree_all_finite(terms)

    def test_conv_decoder_needs_divisible_image_sizes_and_known_arch(self):
        model = make_vae((10, 10, 1), hidden_sizes=(8,), latent_dim=2, arch="conv", conv_features=(4, 8))
        key = jax.random.key(0)
        with self.assertRaisesRegex(ValueError, "divisible by 4"):
            jax.eval_shape(model.init, key, jnp.zeros((1, 10, 10, 1)), key)
        with self.assertRaisesRegex(ValueError, "arch"):
            make_vae((8, 8, 1), (8,), 2, arch="resnet")
