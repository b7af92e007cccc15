"""A 2-D latent space, for the manifold and scatter pictures: results row `vae_mnist_latent2` (docs/results.md)."""

import dataclasses

from configs import vae_mnist


def get_config():
    return dataclasses.replace(vae_mnist.get_config(), workdir="runs/vae_latent2", latent_dim=2, epochs=15,
                               batch_size=128, learning_rate=1e-3, lr_schedule="cosine")
