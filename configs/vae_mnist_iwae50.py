"""The likelihood preset for Burda et al.'s (2015) IWAE k = 50 row: the default network trained on the
k = 50 importance-weighted bound for 200 epochs, every 25th epoch's checkpoint kept for the k = 5,000
curve. Each step decodes ten times the samples of `vae_mnist_iwae5`'s: a job for an accelerator, or a
long one on a 2-core CPU (the run resumes wherever it stopped)."""

from vaecnn import config as vconfig

from configs import vae_mnist_iwae5


def get_config():
    return vconfig.override(vae_mnist_iwae5.get_config(), dict(workdir="runs/vae_mnist_iwae50_200", num_samples=50))
