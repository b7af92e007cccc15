"""The likelihood preset, ELBO-trained: the default network and recipe for 500 epochs (one warm-up epoch,
then cosine to 0), every 50th epoch's checkpoint kept so test log p(x) (k = 5,000) can be traced along the
run. Results row `vae_mnist_elbo_long` (docs/results.md), beside Burda et al. (2015), Table 1, VAE."""

from vaecnn import config as vconfig

from configs import vae_mnist


def get_config():
    return vconfig.override(vae_mnist.get_config(), dict(workdir="runs/vae_mnist_elbo_500", epochs=500,
                                                         keep_checkpoint_every=50))
