"""The MNIST VAE in plain PyTorch, as a user would write it: the reference side of the VAE benchmarks.

Same architecture as vaecnn's default (MLP encoder 784-512-256-(32 mean, 32 log-variance), one
reparameterized sample, decoder 32-256-512-784 Bernoulli logits) with PyTorch's own initialisation.
"""

import numpy as np

from benchmarks._harness import torch

IMAGE_SIZE = 28 * 28


class TorchVAE(torch.nn.Module):
    def __init__(self, hidden_sizes, latent_dim):
        super().__init__()
        sizes = [IMAGE_SIZE, *hidden_sizes]
        self.encoder = torch.nn.Sequential(*[layer for a, b in zip(sizes, sizes[1:])
                                             for layer in (torch.nn.Linear(a, b), torch.nn.ReLU())])
        self.mean = torch.nn.Linear(sizes[-1], latent_dim)
        self.logvar = torch.nn.Linear(sizes[-1], latent_dim)
        back = [latent_dim, *reversed(hidden_sizes)]
        self.decoder = torch.nn.Sequential(*[layer for a, b in zip(back, back[1:])
                                             for layer in (torch.nn.Linear(a, b), torch.nn.ReLU())],
                                           torch.nn.Linear(back[-1], sizes[0]))

    def negative_elbo(self, x_BxD: torch.Tensor) -> torch.Tensor:
        """Per example, in nats: BCE(x, decoder(z)) summed over pixels + KL(q(z|x) || N(0, I))."""
        h = self.encoder(x_BxD)
        mean, logvar = self.mean(h), self.logvar(h)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(self.decoder(z), x_BxD, reduction="none").sum(1)
        kl = 0.5 * (torch.exp(logvar) + mean ** 2 - 1 - logvar).sum(1)
        return bce + kl


def binarize(images_uint8: np.ndarray) -> torch.Tensor:
    """Each pixel 1 with probability intensity / 255 (torch's generator), as float [N, 784]."""
    return torch.bernoulli(torch.from_numpy(images_uint8.reshape(len(images_uint8), -1)).float() / 255.0)
