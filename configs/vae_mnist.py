"""The VAE's default recipe, results row `vae_mnist` (docs/results.md): MLP 784-512-256-(32), batch 256,
Adam 3e-3, one warm-up epoch then cosine, 30 epochs."""

from vaecnn.recipes.vae import VAEConfig


def get_config() -> VAEConfig:
    return VAEConfig()
