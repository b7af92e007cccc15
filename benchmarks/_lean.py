"""Lean references for the loop benchmark: each model's training step written plainly, as a user would
in JAX/Flax, with nothing the model does not need: no metric sums beyond the loss, no gradient norm,
no masks. Steps run in one `lax.fori_loop` over batches stacked beforehand ([S, B, ...] per field), so
the ratio of the engine's loop to it is the price of everything the project adds to a step.

    program = lean_program(loss_fn, optimizer)     loss_fn(params, batch, key) -> scalar
    params, opt_state, loss_sum = program(params, opt_state, stacked_batches, key)
"""

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax


def lean_program(loss_fn: Callable, optimizer: optax.GradientTransformation):
    """A jitted loop of plain steps over every batch of `stacked` (step i: batch i, key fold_in(key, i)),
    parameters and optimizer state donated; returns them updated with the sum of the losses."""

    def run(params, opt_state, stacked, key):
        def step(index, carry):
            params, opt_state, loss_sum = carry
            batch = jax.tree.map(lambda field: field[index], stacked)
            loss, grads = jax.value_and_grad(loss_fn)(params, batch, jax.random.fold_in(key, index))
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss_sum + loss

        num_steps = jax.tree.leaves(stacked)[0].shape[0]
        return jax.lax.fori_loop(0, num_steps, step, (params, opt_state, jnp.zeros((), jnp.float32)))

    return jax.jit(run, donate_argnums=(0, 1))


class LeanVAE(nn.Module):
    """The default MNIST VAE in plain Flax: MLP encoder to (mean, logvar), one reparameterized sample,
    mirrored MLP decoder to Bernoulli logits; returns the batch mean of -ELBO (closed-form KL)."""
    hidden_sizes: Sequence[int]
    latent_dim: int

    @nn.compact
    def __call__(self, x_BxD: jax.Array, key: jax.Array) -> jax.Array:
        h_BxF = x_BxD
        for size in self.hidden_sizes:
            h_BxF = nn.relu(nn.Dense(size)(h_BxF))
        mean_BxZ, logvar_BxZ = nn.Dense(self.latent_dim)(h_BxF), nn.Dense(self.latent_dim)(h_BxF)
        z_BxZ = mean_BxZ + jnp.exp(0.5 * logvar_BxZ) * jax.random.normal(key, mean_BxZ.shape)
        h_BxF = z_BxZ
        for size in reversed(self.hidden_sizes):
            h_BxF = nn.relu(nn.Dense(size)(h_BxF))
        logits_BxD = nn.Dense(x_BxD.shape[-1])(h_BxF)
        bce_B = jnp.sum(jax.nn.softplus(logits_BxD) - x_BxD * logits_BxD, axis=-1)
        kl_B = 0.5 * jnp.sum(jnp.expm1(logvar_BxZ) - logvar_BxZ + jnp.square(mean_BxZ), axis=-1)
        return jnp.mean(bce_B + kl_B)


def lean_vae(hidden_sizes: Sequence[int], latent_dim: int, num_pixels: int, key: jax.Array):
    """(params, loss_fn) of LeanVAE; loss_fn binarizes batch['image'] (uint8) afresh with the step's key."""
    model = LeanVAE(tuple(hidden_sizes), latent_dim)
    params = model.init(key, jnp.zeros((1, num_pixels)), key)["params"]

    def loss_fn(params, batch, key):
        binarize_key, sample_key = jax.random.split(key)
        images_BxD = batch["image"].reshape(batch["image"].shape[0], -1).astype(jnp.float32) / 255.0
        x_BxD = jax.random.bernoulli(binarize_key, images_BxD).astype(jnp.float32)
        return model.apply({"params": params}, x_BxD, sample_key)

    return params, loss_fn


def lean_classifier(model: nn.Module, input_fields: Sequence[str]):
    """loss_fn of a classifier: the batch mean of softmax cross-entropy, dropout from the step's key."""

    def loss_fn(params, batch, key):
        logits_BxC = model.apply({"params": params}, *[batch[field] for field in input_fields],
                                 deterministic=False, rngs={"dropout": key})
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits_BxC, batch["label"]))

    return loss_fn
