r"""Training throughput of the MNIST VAE: the project's jitted step against PyTorch, same run.

    ./launch.sh bench vae_throughput        (writes benchmarks/results/vae_throughput.{json,png})

Both sides train the same model on the same batch: MLP encoder 784-512-256-(32 mean, 32 logvar),
one reparameterized sample, MLP decoder 32-256-512-784 Bernoulli logits, loss = mean(BCE + KL to
N(0, I)), Adam(1e-3), dynamic binarization of the uint8 batch inside the step. The JAX side is
vaecnn.train.make_train_step on vaecnn.recipes.vae.VAETask, i.e. the step `experiments.vae_mnist` runs.
"""

import numpy as np
import torch
from absl import app, flags

from benchmarks import _harness
from vaecnn.models.vae import make_vae
from vaecnn.optim import make_optimizer
from vaecnn.recipes.vae import VAEConfig, VAETask

FLAGS = flags.FLAGS
_DEFAULTS = VAEConfig(workdir="")
_harness.define_flags("vae_throughput", warmup_steps=10, steps=50)
flags.DEFINE_integer("batch_size", _DEFAULTS.batch_size, "Examples per step.")

IMAGE_SHAPE = (28, 28, 1)


class TorchVAE(torch.nn.Module):
    def __init__(self, hidden_sizes, latent_dim):
        super().__init__()
        sizes = [int(np.prod(IMAGE_SHAPE)), *hidden_sizes]
        self.encoder = torch.nn.Sequential(*[layer for a, b in zip(sizes, sizes[1:])
                                             for layer in (torch.nn.Linear(a, b), torch.nn.ReLU())])
        self.mean = torch.nn.Linear(sizes[-1], latent_dim)
        self.logvar = torch.nn.Linear(sizes[-1], latent_dim)
        back = [latent_dim, *reversed(hidden_sizes)]
        self.decoder = torch.nn.Sequential(*[layer for a, b in zip(back, back[1:])
                                             for layer in (torch.nn.Linear(a, b), torch.nn.ReLU())],
                                           torch.nn.Linear(back[-1], sizes[0]))

    def loss(self, images_uint8: torch.Tensor) -> torch.Tensor:
        x = torch.bernoulli(images_uint8.float().flatten(1) / 255.0)
        h = self.encoder(x)
        mean, logvar = self.mean(h), self.logvar(h)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(self.decoder(z), x, reduction="none").sum(1)
        kl = 0.5 * (torch.exp(logvar) + mean ** 2 - 1 - logvar).sum(1)
        return (bce + kl).mean()


def torch_runner(images: np.ndarray) -> _harness.Runner:
    torch.manual_seed(0)
    model = TorchVAE(_DEFAULTS.hidden_sizes, _DEFAULTS.latent_dim)
    optimizer = torch.optim.Adam(model.parameters(), lr=_DEFAULTS.learning_rate)
    batch = torch.from_numpy(images)
    return _harness.torch_runner(optimizer, lambda: model.loss(batch))


def main(argv):
    del argv
    _harness.configure_torch()
    images = np.random.default_rng(0).integers(0, 256, (FLAGS.batch_size, *IMAGE_SHAPE), dtype=np.uint8)
    task = VAETask(make_vae(IMAGE_SHAPE, _DEFAULTS.hidden_sizes, _DEFAULTS.latent_dim))
    optimizer = make_optimizer("adam", _DEFAULTS.learning_rate, total_steps=1)
    batch = {"image": images, "mask": np.ones(FLAGS.batch_size, np.float32)}
    sides = {"jax": _harness.jax_runner(task, optimizer, batch), "torch": torch_runner(images)}
    _harness.run_and_write(
        sides, FLAGS.batch_size,
        "MNIST VAE training step (binarize, encode, sample, decode, BCE + KL, backward, Adam), examples/s",
        {"hidden_sizes": list(_DEFAULTS.hidden_sizes), "latent_dim": _DEFAULTS.latent_dim,
         "batch_size": FLAGS.batch_size, "optimizer": f"adam({_DEFAULTS.learning_rate})"})

if __name__ == "__main__":
    app.run(main)
