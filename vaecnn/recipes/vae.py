"""The VAE experiment: its config, task and recipe (vaecnn.lifecycle), pictures and log p(x).

    config = vconfig.override(VAEConfig(), {"data_dir": "../shared/datasets", "epochs": 5})
    results = lifecycle.run(RECIPE, config)      # also written to workdir/results.json
    lifecycle.evaluate(RECIPE, "runs/vae_mnist", overrides={"eval_iw_samples": 5000})
    sample("runs/vae_mnist", num_images=100)     # runs/vae_mnist/samples_100.png
"""

import dataclasses
import functools
import math
import os
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging

from vaecnn import distributed, evaluation, lifecycle, plots, rng, sharding
from vaecnn.config import option
from vaecnn.data.batching import ArrayBatcher
from vaecnn.data.images import (ImageSplit, binarize, binarize_once, data_dir_option, dataset_option,
                                 load_image_dataset)
from vaecnn.errors import ConfigError
from vaecnn.events import EventWriter
from vaecnn.models.vae import ACTIVATIONS, ARCHS, LIKELIHOODS, VAE, make_vae
from vaecnn import objectives
from vaecnn.objectives import ElboTerms, importance_weighted_log_likelihood
from vaecnn.optim import SCHEDULES, make_optimizer
from vaecnn.train import TrainConfig

OBJECTIVES = ("elbo", "iwae")
NUM_PICTURE_IMAGES = 16
NUM_SAMPLE_IMAGES = 64
NUM_INTERPOLATIONS = 4        # rows of interpolation.png, each between two test digits
INTERPOLATION_STEPS = 10
MANIFOLD_SIZE = 15            # latent_manifold.png: a 15 x 15 grid of decoded 2-D latents
NUM_SCATTER_POINTS = 5000
IW_POSITION_FILE = "iw_evaluation_position.json"  # a stopped log p(x) estimate's partial sums


def parse_gaussian_logvar(text: str) -> float | None:
    """'learned' -> None (a learned per-pixel log-variance); else a finite number."""
    if text == "learned":
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError("must be a finite number or 'learned'")
    return value


@dataclasses.dataclass(frozen=True)
class VAEConfig:
    """Everything a VAE run depends on. Defaults are the MNIST recipe of configs/vae_mnist.py."""
    workdir: str = option("runs/vae_mnist", "Output folder: metrics, checkpoints, pictures, results. Rerunning "
                          "with the same folder resumes from its newest checkpoint.", resumable=True)
    dataset: str = dataset_option()
    data_dir: str | None = data_dir_option()
    arch: str = option("mlp", "mlp, or conv: stride-2 convolutions around the dense layers.", choices=ARCHS)
    hidden_sizes: tuple[int, ...] = option((512, 256), "Encoder MLP sizes (decoder mirrors).")
    conv_features: tuple[int, ...] = option((32, 64), "--arch=conv: channels of the encoder's stride-2 "
                                            "convolutions (decoder mirrors).")
    latent_dim: int = option(32, "Latent dimensions.", lower_bound=1)
    activation: str = option("relu", "Nonlinearity of the dense hidden layers: relu, or tanh (Burda et al.'s "
                             "784-200-200-50 network).", choices=tuple(ACTIVATIONS))
    likelihood: str = option("bernoulli", "p(x|z): bernoulli (BCE) or gaussian (MSE).", choices=LIKELIHOODS)
    gaussian_logvar: float | None = option(0.0, "Gaussian likelihood: a fixed log-variance, or 'learned'.",
                                           parse=parse_gaussian_logvar)
    objective: str = option("elbo", "elbo, or iwae: the importance-weighted bound with k = --num_samples "
                            "(k = 1: the ELBO).", choices=OBJECTIVES)
    num_samples: int = option(1, "Samples of z per example in the objective.", lower_bound=1)
    # Of the recipes tried, the one that reached 100 nats in the fewest training seconds (results row
    # vae_mnist, docs/results.md; benchmark vae_time_to_quality, docs/performance.md).
    train: TrainConfig = TrainConfig(epochs=30, batch_size=256, eval_batch_size=1000)
    learning_rate: float = option(3e-3, "Adam peak learning rate.", lower_bound=0.0)
    lr_schedule: str = option("warmup_cosine", "Learning-rate schedule.", choices=SCHEDULES)
    warmup_epochs: float = option(1.0, "warmup_cosine: linear warm-up, in epochs (then cosine decay to 0).",
                                  lower_bound=0.0)
    eval_iw_samples: int = option(0, "If > 0: importance samples for the test log p(x) estimate.", lower_bound=0,
                                  resumable=True)
    iw_chunk_size: int = option(500, "Importance samples decoded at once per test batch (memory ~ "
                                "eval_batch_size x this).", lower_bound=1, resumable=True)

    def __post_init__(self):
        for name, value, choices in (("likelihood", self.likelihood, LIKELIHOODS), ("arch", self.arch, ARCHS),
                                     ("objective", self.objective, OBJECTIVES),
                                     ("activation", self.activation, tuple(ACTIVATIONS))):
            if value not in choices:
                raise ConfigError(f"--{name} must be one of {', '.join(choices)}, got {value!r}")
        if self.latent_dim < 1 or not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ConfigError(f"--latent_dim and every --hidden_sizes entry must be >= 1, got "
                              f"{self.latent_dim} and {list(self.hidden_sizes)}")
        if self.arch == "conv" and (not self.conv_features or min(self.conv_features) < 1):
            raise ConfigError(f"every --conv_features entry must be >= 1, got {list(self.conv_features)}")
        if self.lr_schedule not in SCHEDULES or self.warmup_epochs < 0:
            raise ConfigError(f"--lr_schedule must be one of {', '.join(SCHEDULES)} and --warmup_epochs >= 0; got "
                              f"{self.lr_schedule!r}, {self.warmup_epochs}")
        if self.num_samples < 1 or self.eval_iw_samples < 0 or self.iw_chunk_size < 1:
            raise ConfigError("--num_samples and --iw_chunk_size must be >= 1 and --eval_iw_samples >= 0")


@dataclasses.dataclass(frozen=True)
class VAETask:
    """The VAE as an engine.Task: minimise the batch mean of a negative bound on -log p(x).

    objective 'elbo': -ELBO, with `num_samples` reparameterized samples and the closed-form KL.
    objective 'iwae': -L_k = -log (1/k) sum_s w_s with k = num_samples (Burda et al. 2015); L_1 is
        the ELBO with a one-sample KL, equal to 'elbo' in expectation, and L_k rises towards log p(x).
    Evaluation always reports the ELBO terms, so runs of both objectives compare; 'iwae' adds the
    k-sample bound as neg_iwae.

    Bernoulli: training images are dynamically binarized with the step's key (a fresh draw every step
    of every epoch); evaluation takes the test set as it arrives, binarized once (load_splits);
    Gaussian: intensities scaled to [0, 1].
    """
    model: VAE
    num_samples: int = 1
    objective: str = "elbo"

    def inputs(self, key: jax.Array, images_uint8: jax.Array) -> jax.Array:
        if self.model.likelihood == "bernoulli":
            return binarize(key, images_uint8)
        return images_uint8.astype(jnp.float32) / 255.0

    def fixed_inputs(self, images_uint8: jax.Array) -> jax.Array:
        """The inputs of images that are fixed: for Bernoulli, binarized once (pixels 0 or 255, as
        load_splits gives the test set). The same as `inputs`, whose Bernoulli draw with probability 0
        or 1 is that bit, without the random draws, which were a quarter of an evaluation's time on a CPU."""
        if self.model.likelihood == "bernoulli":
            return (images_uint8 > 127).astype(jnp.float32)
        return images_uint8.astype(jnp.float32) / 255.0

    def init_params(self, key, batch):
        x = self.inputs(key, batch["image"])
        return self.model.init(key, x, key)["params"]

    def _inputs_and_sample_key(self, batch, key, fixed: bool) -> tuple[jax.Array, jax.Array]:
        data_key, sample_key = jax.random.split(key)
        x = self.fixed_inputs(batch["image"]) if fixed else self.inputs(data_key, batch["image"])
        return x, sample_key

    def terms(self, params, batch, key, num_samples: int, fixed: bool = False) -> ElboTerms:
        """The ELBO's terms of a batch; `fixed`: of fixed images, binarized once (an evaluation)."""
        x, sample_key = self._inputs_and_sample_key(batch, key, fixed)
        _, terms = self.model.apply({"params": params}, x, sample_key, num_samples)
        return terms

    def loss(self, params, batch, key):
        if self.objective == "iwae":
            metrics = self._iwae_metrics(params, batch, key, fixed=False)
            return metrics["neg_iwae"] / metrics["count"], metrics
        metrics = self._metrics(self.terms(params, batch, key, self.num_samples), batch["mask"])
        return metrics["neg_elbo"] / metrics["count"], metrics

    def evaluate(self, params, batch, key):
        """The metrics of a batch of the test set, which arrives binarized once (load_splits)."""
        metrics = self._metrics(self.terms(params, batch, key, self.num_samples, fixed=True), batch["mask"])
        if self.objective == "iwae":
            metrics["neg_iwae"] = self._iwae_metrics(params, batch, key, fixed=True)["neg_iwae"]
        return metrics

    def _iwae_metrics(self, params, batch, key, fixed: bool) -> dict[str, jax.Array]:
        """Sums over real examples, from one set of k log-weights:
        neg_iwae = -L_k (objectives.bound_from_log_weights), and neg_elbo = -mean_s log w_s, the ELBO's
        estimate with a Monte-Carlo KL (the same samples, so no second decoder pass)."""
        x, sample_key = self._inputs_and_sample_key(batch, key, fixed)
        log_w_SxB = self.model.apply({"params": params}, x, sample_key, self.num_samples,
                                     method=VAE.log_importance_weights)
        bound_B = objectives.bound_from_log_weights(log_w_SxB)
        mask_B = batch["mask"]
        return {"neg_iwae": -jnp.sum(bound_B * mask_B), "neg_elbo": -jnp.sum(jnp.mean(log_w_SxB, axis=0) * mask_B),
                "count": jnp.sum(mask_B)}

    @staticmethod
    def _metrics(terms: ElboTerms, mask_B: jax.Array) -> dict[str, jax.Array]:
        """Sums over real examples, in nats: neg_elbo = recon + kl, recon = -E_q log p(x|z)."""
        return {"neg_elbo": -jnp.sum(terms.elbo * mask_B), "recon": -jnp.sum(terms.recon * mask_B),
                "kl": jnp.sum(terms.kl * mask_B), "count": jnp.sum(mask_B)}


def interpolation_latents(z_start_PxZ: jax.Array, z_end_PxZ: jax.Array, steps: int) -> jax.Array:
    """z_t = (1 - t) z_start + t z_end for t = 0, 1/(T-1), ..., 1: [P, T, Z], both ends included."""
    t_T = jnp.linspace(0.0, 1.0, steps)
    return z_start_PxZ[:, None] + t_T[None, :, None] * (z_end_PxZ - z_start_PxZ)[:, None]


def manifold_latents(size: int) -> jax.Array:
    """A size x size grid of 2-D latents at the N(0, 1) quantiles of evenly spaced probabilities in
    [0.05, 0.95] (so the grid covers the prior's mass, not a box): [size * size, 2], row-major, first
    coordinate along the columns, second decreasing down the rows (as on a plot)."""
    quantiles = jax.scipy.special.ndtri(jnp.linspace(0.05, 0.95, size))
    z1, z2 = jnp.meshgrid(quantiles, quantiles[::-1])
    return jnp.stack([z1.ravel(), z2.ravel()], axis=-1)


def _picture_arrays(task: VAETask, latent_plane: bool, params, images_NxHxWxC: jax.Array,
                    key: jax.Array) -> dict[str, jax.Array]:
    """The arrays of _Pictures, images in [0, 1]: the first NUM_PICTURE_IMAGES test inputs and their
    reconstructions, decodes of NUM_SAMPLE_IMAGES prior draws (from `key`), the interpolation rows
    flattened row by row, and with `latent_plane` the manifold's decodes and the posterior means of
    every image given. One encoder pass and one decoder pass over every latent (fewer programs to
    compile than a pass per picture)."""
    model = task.model
    apply = lambda method, *args: model.apply({"params": params}, *args, method=method)
    x_NxHxWxC = task.fixed_inputs(images_NxHxWxC)
    x_PxHxWxC = x_NxHxWxC[:NUM_PICTURE_IMAGES]
    mean_NxZ, _ = apply(VAE.encode, x_NxHxWxC if latent_plane else x_PxHxWxC)
    mean_PxZ = mean_NxZ[:NUM_PICTURE_IMAGES]
    _, latent_key = jax.random.split(key)
    z_SxZ = jax.random.normal(latent_key, (NUM_SAMPLE_IMAGES, model.encoder.latent_dim))
    # Row i runs from picture 2i to picture 2i + 1.
    z_IxTxZ = interpolation_latents(mean_PxZ[0:2 * NUM_INTERPOLATIONS:2], mean_PxZ[1:2 * NUM_INTERPOLATIONS:2],
                                    INTERPOLATION_STEPS)
    latents = {"reconstructions": mean_PxZ, "samples": z_SxZ, "interpolation": z_IxTxZ.reshape(-1, z_SxZ.shape[1]),
               **({"manifold": manifold_latents(MANIFOLD_SIZE)} if latent_plane else {})}
    decoded = apply(VAE.mean_image, jnp.concatenate(list(latents.values())))
    ends = np.cumsum([len(z) for z in latents.values()])
    arrays = dict(zip(latents, jnp.split(decoded, ends[:-1])))
    rows_IxRxHxWxC = jnp.concatenate([x_PxHxWxC[0:2 * NUM_INTERPOLATIONS:2, None],
                                      arrays["interpolation"].reshape(z_IxTxZ.shape[:2] + decoded.shape[1:]),
                                      x_PxHxWxC[1:2 * NUM_INTERPOLATIONS:2, None]], axis=1)
    arrays.update(originals=x_PxHxWxC, interpolation=rows_IxRxHxWxC.reshape((-1,) + decoded.shape[1:]))
    if latent_plane:
        arrays["scatter_means"] = mean_NxZ
    return arrays


class _Pictures:
    """Refreshed each epoch, from the same test images and latents every time so epochs compare:
        reconstructions.png  test originals above their reconstructions
        samples.png          decodes of fixed prior draws
        interpolation.png    per row: a test digit, decodes along the line between its posterior
                             mean and a second digit's, that second digit
    and with latent_dim = 2:
        latent_manifold.png  decodes of a grid over the latent plane (manifold_latents)
        latent_scatter.png   posterior means of test images, coloured by label

    Every picture's arrays come from one compiled program (`_arrays`): one compilation, one dispatch
    and one copy to the host per epoch.
    """

    def __init__(self, task: VAETask, test_split: ImageSplit, workdir: str, key: jax.Array,
                 events: EventWriter | None = None):
        self.workdir, self.events = workdir, events
        self.latent_dim = task.model.encoder.latent_dim
        count = NUM_SCATTER_POINTS if self.latent_dim == 2 else NUM_PICTURE_IMAGES
        self.images = jax.device_put(test_split.images[:count])  # once, not at every epoch's pictures
        self.scatter_labels = test_split.labels[:NUM_SCATTER_POINTS]
        self._arrays = jax.jit(functools.partial(_picture_arrays, task, self.latent_dim == 2))
        self.key = key

    def __call__(self, epoch: int, params) -> None:
        if not distributed.is_writer():  # process 0 draws them (from a host copy of the replicated parameters)
            return
        arrays = jax.device_get(self._arrays(jax.device_get(params), self.images, self.key))
        self._save("reconstructions", np.concatenate([arrays["originals"], arrays["reconstructions"]]),
                   NUM_PICTURE_IMAGES, epoch)
        self._save("samples", arrays["samples"], 8, epoch)
        self._save("interpolation", arrays["interpolation"], INTERPOLATION_STEPS + 2, epoch)
        if self.latent_dim == 2:
            self._save("latent_manifold", arrays["manifold"], MANIFOLD_SIZE, epoch)
            self._latent_scatter(epoch, arrays["scatter_means"])

    def _save(self, name: str, images: np.ndarray, columns: int, epoch: int) -> None:
        """workdir/<name>.png, refreshed; and in TensorBoard, one picture per epoch to scrub through."""
        grid = plots.save_image_grid(os.path.join(self.workdir, f"{name}.png"), images, columns=columns)
        if self.events is not None:
            self.events.image(name, grid, epoch)

    def _latent_scatter(self, epoch: int, mean_NxZ: np.ndarray) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(figsize=(6, 5.5), dpi=120)
        points = axes.scatter(mean_NxZ[:, 0], mean_NxZ[:, 1], c=self.scatter_labels, cmap="tab10", vmin=-0.5,
                              vmax=9.5, s=3, alpha=0.7)
        figure.colorbar(points, ax=axes, ticks=range(10), label="label")
        axes.set_xlabel("$z_1$ (posterior mean)")
        axes.set_ylabel("$z_2$ (posterior mean)")
        axes.set_title(f"{len(mean_NxZ)} test images, epoch {epoch}")
        axes.grid(alpha=0.3)
        figure.tight_layout()
        plots.save_figure(os.path.join(self.workdir, "latent_scatter.png"), figure)


def importance_weighted_nll(task: VAETask, params, batcher: ArrayBatcher, key: jax.Array, num_samples: int,
                            chunk_size: int, position_file: str, what: str) -> float:
    """Mean over the split of -log p(x), estimated with `num_samples` importance samples per example
    (chunked: memory O(batch x chunk)). It takes minutes: on SIGTERM or SIGINT it stops between batches
    with its position in `position_file`, and the rerun continues to the same figure
    (evaluation.resumable_sums; `what` names this evaluation)."""
    model = task.model

    @jax.jit
    def batch_sums(params, batch, key):
        _, sample_key = jax.random.split(key)  # the key's second half, as in the ELBO's evaluation
        x = task.fixed_inputs(batch["image"])
        bind = lambda method: (lambda *args: model.apply({"params": params}, *args, method=method))
        log_px_B = importance_weighted_log_likelihood(sample_key, x, bind(VAE.encode), bind(VAE.log_likelihood),
                                                      num_samples, chunk_size)
        return {"nll": -jnp.sum(log_px_B * batch["mask"]), "count": jnp.sum(batch["mask"])}

    def log(index: int, totals: dict[str, float]) -> None:
        # A k = 5000 pass over MNIST's test set takes tens of minutes on a CPU: show it moving.
        logging.info("importance-weighted NLL: batch %d/%d, running mean %.3f nats", index + 1,
                     batcher.num_eval_batches, totals["nll"] / totals["count"])

    totals = evaluation.resumable_sums(what, position_file, batcher.eval_batches(), batcher.num_eval_batches,
                                       lambda index, batch: batch_sums(params, batch, rng.batch_key(key, index)), log)
    return totals["nll"] / totals["count"]


def load_splits(config: VAEConfig) -> dict[str, ImageSplit]:
    """The dataset; for the Bernoulli likelihood the test images are binarized once (seeded), so
    every evaluation (ELBO, importance-weighted, pictures) sees the same bits."""
    splits = load_image_dataset(config.dataset, config.data_dir)
    if config.likelihood == "bernoulli":
        splits["test"] = dataclasses.replace(splits["test"], images=binarize_once(config.train.seed, splits["test"].images))
    return splits


def make_task(config: VAEConfig, image_shape: Sequence[int]) -> VAETask:
    """The model and objective of `config`, for images of `image_shape` (H, W, C)."""
    model = make_vae(image_shape, config.hidden_sizes, config.latent_dim, config.likelihood,
                     config.gaussian_logvar, config.arch, config.conv_features, config.activation)
    return VAETask(model, config.num_samples, config.objective)


def make_vae_optimizer(config: VAEConfig, steps_per_epoch: int) -> optax.GradientTransformation:
    """Adam with the configured schedule over config.train.epochs epochs of `steps_per_epoch` steps."""
    total_steps = config.train.epochs * steps_per_epoch
    # Below the total, so a very short run (the digits demo, a test) still has a decay phase.
    warmup_steps = min(round(config.warmup_epochs * steps_per_epoch), max(total_steps - 1, 0))
    return make_optimizer("adam", config.learning_rate, total_steps, config.lr_schedule, warmup_steps)


class VAERecipe(lifecycle.RecipeBase[VAEConfig]):
    """The VAE as a model family of vaecnn.lifecycle: MNIST-like images, the ELBO or IWAE objective,
    pictures every epoch, and with eval_iw_samples = k the k-sample estimate of test -log p(x)."""
    config_type = VAEConfig

    def build(self, config: VAEConfig, mesh, *, training: bool) -> lifecycle.Built:
        splits = load_splits(config)
        image_shape = splits["test"].images.shape[1:]
        test_data = ArrayBatcher.on_mesh({"image": splits["test"].images},
                                         sharding.round_up_to_devices(config.train.eval_batch_size, mesh), mesh)
        task = make_task(config, image_shape)
        if not training:
            return lifecycle.Built(task, next(test_data.eval_batches()), eval_data={"test": test_data}, family=splits)
        logging.info("%s: %d train / %d test images of shape %s", config.dataset, len(splits["train"].images),
                     len(splits["test"].images), image_shape)
        train_data = ArrayBatcher.on_mesh({"image": splits["train"].images}, config.train.batch_size, mesh)
        return lifecycle.Built(task, next(test_data.eval_batches()), make_vae_optimizer(config, train_data.num_batches),
                               train_data, {"test": test_data}, family=splits)

    def epoch_hook(self, built, config: VAEConfig, events: EventWriter | None):
        return _Pictures(built.task, built.family["test"], config.workdir, rng.stream(config.train.seed, "pictures"),
                         events)

    def results(self, built, config: VAEConfig, fit, mesh) -> dict[str, Any]:
        final = fit.history[-1]
        results = {
            "dataset": config.dataset,
            "test_neg_elbo": final["test/neg_elbo"],
            "test_recon": final["test/recon"],
            "test_kl": final["test/kl"],
            "train_neg_elbo": final["train/neg_elbo"],
            "units": "nats per example",
            "test_binarization": f"fixed (seed {config.train.seed})" if config.likelihood == "bernoulli" else "none",
            **({"test_neg_iwae": final["test/neg_iwae"]} if config.objective == "iwae" else {}),
            **self._likelihood(built, config, fit.params, final["epoch"]),
        }
        curves = ["train/neg_elbo", "test/neg_elbo"] + (["train/neg_iwae", "test/neg_iwae"]
                                                        if config.objective == "iwae" else [])
        plots.plot_curves(os.path.join(config.workdir, "loss_curve.png"), fit.history, curves,
                           "negative bound (nats)", config.dataset)
        return results

    def evaluate(self, built, config: VAEConfig, params, mesh) -> dict[str, Any]:
        """The test -ELBO, reconstruction and KL (nats per example; results.json's own for the newest
        checkpoint) and, with eval_iw_samples = k > 0, the k-sample estimate of -log p(x)."""
        epoch_metrics = lifecycle.test_metrics(built.task, params, built.eval_data["test"], config.train.seed, mesh)
        results = {"test_neg_elbo": epoch_metrics["neg_elbo"], "test_recon": epoch_metrics["recon"],
                   "test_kl": epoch_metrics["kl"],
                   **({"test_neg_iwae": epoch_metrics["neg_iwae"]} if config.objective == "iwae" else {})}
        return {**results, **self._likelihood(built, config, params, None)}

    @staticmethod
    def _likelihood(built, config: VAEConfig, params, epoch: int | None) -> dict[str, Any]:
        """{test_nll_iw, iw_samples, iw_eval_seconds} with eval_iw_samples = k > 0, else {}."""
        if not config.eval_iw_samples:
            return {}
        logging.info("estimating test log p(x) with %d importance samples", config.eval_iw_samples)
        start = time.perf_counter()
        what = (f"the {config.eval_iw_samples}-sample test log p(x) (chunks of {config.iw_chunk_size}) of "
                f"{'the newest checkpoint' if epoch is None else f'epoch {epoch}'}")
        nll = importance_weighted_nll(built.task, params, built.eval_data["test"],
                                      rng.stream(config.train.seed, "test_likelihood"), config.eval_iw_samples,
                                      config.iw_chunk_size, os.path.join(config.workdir, IW_POSITION_FILE), what)
        return {"test_nll_iw": nll, "iw_samples": config.eval_iw_samples,
                "iw_eval_seconds": time.perf_counter() - start}


RECIPE = VAERecipe()


def sample(run_dir: str, num_images: int, *, overrides: dict[str, Any] | None = None) -> str:
    """Decodes `num_images` draws z ~ N(0, I) with the model in `run_dir` into one grid,
    run_dir/samples_<num_images>.png, and returns its path."""
    restored = lifecycle.restore(RECIPE, run_dir, overrides=overrides)
    model = restored.built.task.model
    z_NxZ = jax.random.normal(rng.stream(restored.config.train.seed, "samples"), (num_images, model.encoder.latent_dim))
    images = jax.jit(lambda params, z: model.apply({"params": params}, z, method=VAE.mean_image))(restored.params, z_NxZ)
    path = os.path.join(run_dir, f"samples_{num_images}.png")
    plots.save_image_grid(path, np.asarray(images), columns=int(np.ceil(np.sqrt(num_images))))
    return path
