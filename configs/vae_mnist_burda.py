"""Burda et al.'s (2015) one-stochastic-layer network, 784-200-200-50 with tanh, trained like
vae_mnist_elbo_long (500 ELBO epochs, Adam 3e-3, warm-up then cosine), to compare the two networks at
equal epochs. Results row `vae_mnist_burda` (docs/results.md)."""

from vaecnn import config as vconfig

from configs import vae_mnist_elbo_long


def get_config():
    return vconfig.override(vae_mnist_elbo_long.get_config(), dict(workdir="runs/vae_mnist_burda_500",
                                                                   hidden_sizes=(200, 200), latent_dim=50, activation="tanh"))
