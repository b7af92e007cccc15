"""The likelihood preset, IWAE-trained (Burda et al. 2015): the default network trained on the k = 5
importance-weighted bound for 200 epochs, every 25th epoch's checkpoint kept for the k = 5,000 curve.
Results row `vae_mnist_iwae5` (docs/results.md)."""

import dataclasses

from configs import vae_mnist


def get_config():
    return dataclasses.replace(vae_mnist.get_config(), workdir="runs/vae_mnist_iwae5_200", objective="iwae",
                               num_samples=5, epochs=200, keep_checkpoint_every=25)
