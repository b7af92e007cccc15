"""Working from a trained VAE workdir: evaluate its checkpoint again, or decode samples from it.

    evaluate_workdir("runs/vae_mnist")                     # test -ELBO (= results.json's), and log p(x)
    sample_workdir("runs/vae_mnist", num_images=100)       # runs/vae_mnist/samples_100.png

The model is rebuilt from workdir/config.json and its parameters restored from the newest intact
checkpoint; the test set is binarized with the run's seed and evaluated with the run's key, so the
numbers are the run's own.
"""

import os
from typing import Any

import jax
import numpy as np

from vaecnn import config as vconfig
from vaecnn import report, rng, sharding, train
from vaecnn.data.batching import ArrayBatcher
from vaecnn.models.vae import VAE
from vaecnn.recipes.vae import (VAEConfig, importance_weighted_nll, load_splits, make_task, make_vae_optimizer)

def _restored(workdir: str, data_dir: str | None) -> tuple[VAEConfig, Any, Any, ArrayBatcher, jax.sharding.Mesh]:
    """(config, task, parameters, test batcher, mesh) of a trained workdir."""
    config = vconfig.load(VAEConfig, workdir)
    if data_dir is not None:
        config = vconfig.override(config, {"data_dir": data_dir})
    splits = load_splits(config)
    mesh = sharding.data_mesh()
    test_data = ArrayBatcher.on_mesh({"image": splits["test"].images},
                                     sharding.round_up_to_devices(config.eval_batch_size, mesh), mesh)
    task = make_task(config, splits["test"].images.shape[1:])
    steps_per_epoch = max(len(splits["train"].images) // config.batch_size, 1)  # ArrayBatcher.num_batches
    params = train.restore_params(workdir, task, make_vae_optimizer(config, steps_per_epoch),
                                  next(test_data.eval_batches()), select_metric=None)
    return config, task, params, test_data, mesh


def evaluate_workdir(workdir: str, *, eval_iw_samples: int = 0, iw_chunk_size: int = 500,
                     data_dir: str | None = None) -> dict[str, Any]:
    """The test -ELBO, reconstruction and KL of the workdir's newest checkpoint (nats per example) and,
    with eval_iw_samples = k > 0, the k-sample importance-weighted estimate of -log p(x)."""
    config, task, params, test_data, mesh = _restored(workdir, data_dir)
    metrics = train.evaluate(train.make_eval_step(task, mesh), params, test_data, rng.stream(config.seed, "evaluation"),
                             sharding.batch_sharded(mesh))
    results = {"test_neg_elbo": metrics["neg_elbo"], "test_recon": metrics["recon"], "test_kl": metrics["kl"]}
    if eval_iw_samples:
        results["test_nll_iw"] = importance_weighted_nll(
            task, params, test_data, rng.stream(config.seed, "test_likelihood"), eval_iw_samples,
            iw_chunk_size)
        results["iw_samples"] = eval_iw_samples
    return results


def sample_workdir(workdir: str, num_images: int, *, data_dir: str | None = None) -> str:
    """Decodes `num_images` draws z ~ N(0, I) with the workdir's model into one grid,
    workdir/samples_<num_images>.png, and returns its path."""
    config, task, params, _, _ = _restored(workdir, data_dir)
    key = rng.stream(config.seed, "samples")
    z_NxZ = jax.random.normal(key, (num_images, task.model.encoder.latent_dim))
    images = jax.jit(lambda params, z: task.model.apply({"params": params}, z, method=VAE.mean_image))(params, z_NxZ)
    path = os.path.join(workdir, f"samples_{num_images}.png")
    report.save_image_grid(path, np.asarray(images), columns=int(np.ceil(np.sqrt(num_images))))
    return path
