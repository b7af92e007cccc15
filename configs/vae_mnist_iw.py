"""The VAE trained 100 epochs, Adam 1e-3 cosine at batch 128, then log p(x) with k = 5000 importance samples:
results row `vae_mnist_iw` (docs/results.md)."""

from vaecnn import config as vconfig

from configs import vae_mnist


def get_config():
    return vconfig.override(vae_mnist.get_config(), dict(workdir="runs/vae_mnist_100", epochs=100, batch_size=128,
                                                         learning_rate=1e-3, lr_schedule="cosine", eval_iw_samples=5000,
                                                         iw_chunk_size=100))
