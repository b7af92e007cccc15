"""Burda et al.'s (2015) one-stochastic-layer network, 784-200-200-50 with tanh, trained like
vae_mnist_elbo_long (500 ELBO epochs, Adam 3e-3, warm-up then cosine), to compare the two networks at
equal epochs. Results row `vae_mnist_burda` (docs/results.md)."""

import dataclasses

from configs import vae_mnist_elbo_long


def get_config():
    return dataclasses.replace(vae_mnist_elbo_long.get_config(), workdir="runs/vae_mnist_burda_500",
                               hidden_sizes=(200, 200), latent_dim=50, activation="tanh")
