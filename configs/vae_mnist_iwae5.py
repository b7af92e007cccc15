"""The likelihood preset, IWAE-trained (Burda et al. 2015): the default network trained on the k = 5
importance-weighted bound for 200 epochs, every 25th epoch's checkpoint kept for the k = 5,000 curve.
Results row `vae_mnist_iwae5` (docs/results.md)."""

from vaecnn import config as vconfig

from configs import vae_mnist


def get_config():
    return vconfig.override(vae_mnist.get_config(), dict(workdir="runs/vae_mnist_iwae5_200", objective="iwae",
                                                         num_samples=5, epochs=200, keep_checkpoint_every=25))
