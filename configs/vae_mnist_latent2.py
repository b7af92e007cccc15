"""A 2-D latent space, for the manifold and scatter pictures (README: test -ELBO 142.2)."""

from vaecnn import config as vconfig

from configs import vae_mnist


def get_config():
    return vconfig.override(vae_mnist.get_config(), dict(workdir="runs/vae_latent2", latent_dim=2, epochs=15,
                                                         batch_size=128, learning_rate=1e-3, lr_schedule="cosine"))
