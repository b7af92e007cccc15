"""The VAE experiment: config, task, and a run that leaves metrics, checkpoints, pictures, results.

    config = VAEConfig(dataset="mnist", data_dir="../shared/datasets", workdir="runs/vae")
    results = run(config)        # also written to workdir/results.json
"""

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from vaecnn import report, sharding, train
from vaecnn.data.batching import ArrayBatcher
from vaecnn.data.images import binarize, binarize_once, load_image_dataset
from vaecnn.errors import ConfigError
from vaecnn.models.vae import LIKELIHOODS, VAE, make_vae
from vaecnn.objectives import ElboTerms, importance_weighted_log_likelihood
from vaecnn.optim import make_optimizer

NUM_PICTURE_IMAGES = 16
NUM_SAMPLE_IMAGES = 64


@dataclasses.dataclass(frozen=True)
class VAEConfig:
    """Everything a VAE run depends on. Defaults are the README's MNIST recipe."""
    workdir: str
    dataset: str = "mnist"
    data_dir: str | None = None
    hidden_sizes: Sequence[int] = (512, 256)
    latent_dim: int = 32
    likelihood: str = "bernoulli"
    gaussian_logvar: float | None = 0.0   # None: learned per-pixel variance
    num_samples: int = 1                  # Monte-Carlo samples of z per example in the ELBO
    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 1e-3
    lr_schedule: str = "constant"
    seed: int = 0
    eval_batch_size: int = 1000
    eval_iw_samples: int = 0              # > 0: also estimate log p(x) with k importance samples
    iw_chunk_size: int = 500

    def __post_init__(self):
        if self.likelihood not in LIKELIHOODS:
            raise ConfigError(f"--likelihood must be one of {', '.join(LIKELIHOODS)}, got {self.likelihood!r}")
        if self.latent_dim < 1 or not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ConfigError(f"--latent_dim and every --hidden_sizes entry must be >= 1, got "
                              f"{self.latent_dim} and {list(self.hidden_sizes)}")
        if self.num_samples < 1 or self.eval_iw_samples < 0:
            raise ConfigError("--num_samples must be >= 1 and --eval_iw_samples >= 0")

    def train_config(self) -> train.TrainConfig:
        return train.TrainConfig(epochs=self.epochs, batch_size=self.batch_size, seed=self.seed,
                                 eval_batch_size=self.eval_batch_size)


@dataclasses.dataclass(frozen=True)
class VAETask:
    """The VAE as a train.Task: minimise the mean negative ELBO over the batch's real examples.

    Bernoulli: images are dynamically binarized with the step's key (a fresh draw every step of
    every epoch; the test set arrives already binarized once, which this leaves unchanged);
    Gaussian: intensities scaled to [0, 1].
    """
    model: VAE
    num_samples: int = 1

    def inputs(self, key: jax.Array, images_uint8: jax.Array) -> jax.Array:
        if self.model.likelihood == "bernoulli":
            return binarize(key, images_uint8)
        return images_uint8.astype(jnp.float32) / 255.0

    def init_params(self, key, batch):
        x = self.inputs(key, batch["image"])
        return self.model.init(key, x, key)["params"]

    def terms(self, params, batch, key, num_samples: int) -> ElboTerms:
        data_key, sample_key = jax.random.split(key)
        x = self.inputs(data_key, batch["image"])
        _, terms = self.model.apply({"params": params}, x, sample_key, num_samples)
        return terms

    def loss(self, params, batch, key):
        metrics = self._metrics(self.terms(params, batch, key, self.num_samples), batch["mask"])
        return metrics["neg_elbo"] / metrics["count"], metrics

    def evaluate(self, params, batch, key):
        return self._metrics(self.terms(params, batch, key, self.num_samples), batch["mask"])

    @staticmethod
    def _metrics(terms: ElboTerms, mask_B: jax.Array) -> dict[str, jax.Array]:
        """Sums over real examples, in nats: neg_elbo = recon + kl, recon = -E_q log p(x|z)."""
        return {"neg_elbo": -jnp.sum(terms.elbo * mask_B), "recon": -jnp.sum(terms.recon * mask_B),
                "kl": jnp.sum(terms.kl * mask_B), "count": jnp.sum(mask_B)}


class _Pictures:
    """reconstructions.png (test originals above their reconstructions) and samples.png (decoded
    fixed latents), refreshed each epoch: the same images and latents every time, so epochs compare."""

    def __init__(self, task: VAETask, test_images: np.ndarray, workdir: str, key: jax.Array):
        image_key, latent_key = jax.random.split(key)
        self.task, self.workdir = task, workdir
        self.inputs = task.inputs(image_key, jnp.asarray(test_images[:NUM_PICTURE_IMAGES]))
        self.latents = jax.random.normal(latent_key, (NUM_SAMPLE_IMAGES, task.model.encoder.latent_dim))
        self._reconstruct = jax.jit(lambda params, x: task.model.apply({"params": params}, x,
                                                                      method=VAE.reconstruct))
        self._decode = jax.jit(lambda params, z: task.model.apply({"params": params}, z, method=VAE.mean_image))

    def __call__(self, epoch: int, params) -> None:
        originals = np.asarray(self.inputs)
        reconstructions = np.asarray(self._reconstruct(params, self.inputs))
        report.save_image_grid(os.path.join(self.workdir, "reconstructions.png"),
                               np.concatenate([originals, reconstructions]), columns=NUM_PICTURE_IMAGES)
        samples = np.asarray(self._decode(params, self.latents))
        report.save_image_grid(os.path.join(self.workdir, "samples.png"), samples, columns=8)


def importance_weighted_nll(task: VAETask, params, batcher: ArrayBatcher, key: jax.Array, num_samples: int,
                            chunk_size: int) -> float:
    """Mean over the split of -log p(x), estimated with `num_samples` importance samples per example
    (chunked: memory O(batch x chunk))."""
    model = task.model

    @jax.jit
    def batch_sum(params, batch, key):
        data_key, sample_key = jax.random.split(key)
        x = task.inputs(data_key, batch["image"])
        bind = lambda method: (lambda *args: model.apply({"params": params}, *args, method=method))
        log_px_B = importance_weighted_log_likelihood(sample_key, x, bind(VAE.encode), bind(VAE.log_likelihood),
                                                      num_samples, chunk_size)
        return -jnp.sum(log_px_B * batch["mask"]), jnp.sum(batch["mask"])

    total, count = 0.0, 0.0
    for index, batch in enumerate(batcher.iterate(None)):
        nll_sum, batch_count = batch_sum(params, batch, jax.random.fold_in(key, index))
        total, count = total + float(nll_sum), count + float(batch_count)
    return total / count


def run(config: VAEConfig) -> dict[str, Any]:
    """Trains (or resumes) the VAE and writes workdir/{metrics.jsonl, results.json, *.png, checkpoints}."""
    splits = load_image_dataset(config.dataset, config.data_dir)
    image_shape = splits["train"].images.shape[1:]
    logging.info("%s: %d train / %d test images of shape %s", config.dataset, len(splits["train"].images),
                 len(splits["test"].images), image_shape)
    mesh = sharding.data_mesh()
    sharding.check_batch_size(config.batch_size, mesh)
    eval_batch_size = -(-config.eval_batch_size // mesh.size) * mesh.size
    device_placement = dict(device_sharding=sharding.replicated(mesh), batch_sharding=sharding.batch_sharded(mesh))
    test_images = splits["test"].images
    if config.likelihood == "bernoulli":
        test_images = binarize_once(config.seed, test_images)
    train_data = ArrayBatcher({"image": splits["train"].images}, config.batch_size, **device_placement)
    test_data = ArrayBatcher({"image": test_images}, eval_batch_size, **device_placement)

    model = make_vae(image_shape, config.hidden_sizes, config.latent_dim, config.likelihood,
                     config.gaussian_logvar)
    task = VAETask(model, config.num_samples)
    optimizer = make_optimizer("adam", config.learning_rate, config.epochs * train_data.num_batches,
                               config.lr_schedule)
    os.makedirs(config.workdir, exist_ok=True)
    pictures = _Pictures(task, test_images, config.workdir,
                         jax.random.fold_in(jax.random.key(config.seed), 10_000))
    result = train.fit(task, optimizer, train_data, {"test": test_data}, config.train_config(),
                       config.workdir, mesh=mesh, on_epoch_end=pictures)
    pictures(result.selected_epoch, result.params)

    final = result.history[-1]
    results = {
        "dataset": config.dataset,
        "epochs": final["epoch"],
        "test_neg_elbo": final["test/neg_elbo"],
        "test_recon": final["test/recon"],
        "test_kl": final["test/kl"],
        "train_neg_elbo": final["train/neg_elbo"],
        "train_seconds": result.train_seconds,
        "train_examples_per_second": result.examples_seen / result.train_seconds,
        "num_params": train.count_params(result.params),
        "units": "nats per example",
        "test_binarization": f"fixed (seed {config.seed})" if config.likelihood == "bernoulli" else "none",
        "config": dataclasses.asdict(config),
        "hardware": report.hardware(),
    }
    if config.eval_iw_samples:
        logging.info("estimating test log p(x) with %d importance samples", config.eval_iw_samples)
        results["test_nll_iw"] = importance_weighted_nll(
            task, result.params, test_data, jax.random.fold_in(jax.random.key(config.seed), 20_000),
            config.eval_iw_samples, config.iw_chunk_size)
        results["iw_samples"] = config.eval_iw_samples
    report.write_json(os.path.join(config.workdir, "results.json"), results)
    report.plot_curves(os.path.join(config.workdir, "loss_curve.png"), result.history,
                       ["train/neg_elbo", "test/neg_elbo"], "negative ELBO (nats)", config.dataset)
    return results
