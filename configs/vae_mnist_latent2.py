"""A 2-D latent space, for the manifold and scatter pictures: results row `vae_mnist_latent2` (docs/results.md)."""

from vaecnn import config as vconfig

from configs import vae_mnist


def get_config():
    return vconfig.override(vae_mnist.get_config(), dict(workdir="runs/vae_latent2", latent_dim=2, epochs=15,
                                                         batch_size=128, learning_rate=1e-3, lr_schedule="cosine"))
