"""Score-function vs reparameterization gradients of the ELBO, measured on a VAE as it trains.

    results = run(GradientEstimatorsConfig(workdir="runs/gradient_estimators", data_dir="../shared/datasets"))

Trains the VAE recipe (vaecnn.recipes.vae.run, into <workdir>/vae) and, at each of `measure_epochs`,
estimates the gradient of the reconstruction term with respect to the encoder parameters phi,

    g = grad_phi mean_b E_{q_phi(z|x_b)}[log p(x_b|z)]        (decoder fixed, a fixed batch of test images)

`num_estimates` times independently with each estimator and each S in `num_samples`, and records the
total variance trace Cov[g_hat] = E ||g_hat - g||^2 (vaecnn.estimators.gradient_moments). Writes
<workdir>/gradient_variance.{md,png,json} (table, variance against S, rows) and
gradient_variance.jsonl (one line per measured epoch, appended as training goes; a rerun with the
same workdir resumes the VAE and keeps the lines already measured).
"""

import dataclasses
import functools
import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from absl import logging

from vaecnn import config as vconfig
from vaecnn import files, hardware, lifecycle, metrics_log, plots, rng, workdir
from vaecnn.config import option
from vaecnn.data.images import data_dir_option, dataset_option
from vaecnn.errors import ConfigError
from vaecnn.estimators import gradient_moments, reparameterization_gradient, score_function_gradient
from vaecnn.models.vae import VAE
from vaecnn.recipes import vae

# name -> (estimator(key, params, encode, f, num_samples), smallest S it accepts)
ESTIMATORS = {
    "reparameterization": (reparameterization_gradient, 1),
    "score function": (score_function_gradient, 1),
    "score function, baseline f(mean)": (functools.partial(score_function_gradient, baseline="f_at_mean"), 1),
    "score function, leave-one-out baseline": (
        functools.partial(score_function_gradient, baseline="leave_one_out"), 2),
}
REFERENCE = "reparameterization"  # its mean at the largest S (N x S samples) stands for g


@dataclasses.dataclass(frozen=True)
class GradientEstimatorsConfig:
    """The measurement, and the VAE it is measured on."""
    workdir: str = option("runs/gradient_estimators", "Output folder (the VAE run goes to <workdir>/vae).",
                          resumable=True)
    dataset: str = dataset_option()
    data_dir: str | None = data_dir_option()
    hidden_sizes: tuple[int, ...] = option((512, 256), "Encoder MLP sizes (decoder mirrors).")
    latent_dim: int = option(32, "Latent dimensions.", lower_bound=1)
    epochs: int = option(10, "VAE training epochs.", lower_bound=1)
    measure_epochs: tuple[int, ...] = option((1, 3, 10), "Epochs after which to measure (each <= --epochs).")
    num_samples: tuple[int, ...] = option((1, 4, 16, 64), "Samples S per estimate: the x axis.")
    num_estimates: int = option(100, "Independent estimates per variance.", lower_bound=2)
    num_images: int = option(32, "Test images in the fixed batch x.", lower_bound=1)
    seed: int = option(0, "Seed of every random draw.")

    def __post_init__(self):
        if max(self.measure_epochs) > self.epochs:
            raise ConfigError("every --measure_epochs entry must be <= --epochs")
        if min(self.num_samples) < 1 or self.num_estimates < 2 or self.num_images < 1:
            raise ConfigError("--num_samples entries and --num_images must be >= 1, --num_estimates >= 2")

    def vae_config(self) -> vae.VAEConfig:
        # The VAE the variance table of docs/results.md was measured on: Adam 1e-3, batch 128, constant rate (the
        # measurement's epochs 1, 3 and 10 refer to it, not to vae_mnist's current default).
        return vconfig.override(vae.VAEConfig(), dict(
            workdir=os.path.join(self.workdir, "vae"), dataset=self.dataset, data_dir=self.data_dir,
            hidden_sizes=self.hidden_sizes, latent_dim=self.latent_dim, epochs=self.epochs, batch_size=128,
            learning_rate=1e-3, lr_schedule="constant", seed=self.seed))


def make_measurement(task: vae.VAETask, x_BxHxWxC: jax.Array, sample_sizes: list[int], num_estimates: int):
    """Returns measure(params, key) -> rows [{estimator, num_samples, total_variance, relative_variance}].

    The estimators are compiled once (one jit per estimator and S) and reused at every epoch.
    """

    def moments(name: str, num_samples: int, params, key):
        estimator, _ = ESTIMATORS[name]
        encode = lambda encoder: task.model.apply({"params": {**params, "encoder": encoder}}, x_BxHxWxC,
                                                  method=VAE.encode)
        log_likelihood = lambda z_SxBxZ: task.model.apply({"params": params}, x_BxHxWxC, z_SxBxZ,
                                                          method=VAE.log_likelihood)
        one_estimate = lambda k: estimator(k, params["encoder"], encode, log_likelihood, num_samples)
        stats = gradient_moments(one_estimate, key, num_estimates)
        return stats.total_variance(), stats.squared_norm_of_mean()

    compiled = {(name, s): jax.jit(functools.partial(moments, name, s))
                for name, (_, smallest) in ESTIMATORS.items() for s in sample_sizes if s >= smallest}

    def measure(params, key) -> list[dict]:
        results = {cell: [float(v) for v in fn(params, rng.batch_key(key, index))]
                   for index, (cell, fn) in enumerate(compiled.items())}
        squared_norm = results[(REFERENCE, max(sample_sizes))][1]
        return [{"estimator": name, "num_samples": s, "total_variance": variance,
                 "relative_variance": variance / squared_norm, "squared_norm_of_gradient": squared_norm}
                for (name, s), (variance, _) in results.items()]

    return measure


def markdown_table(lines: list[dict], sample_sizes: list[int]) -> str:
    """One row per (epoch, estimator), one column per S: trace Cov[g_hat] (and / ||g||^2)."""
    header = ["epoch", "estimator"] + [f"S = {s}" for s in sample_sizes]
    table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for line in lines:
        cells = {(row["estimator"], row["num_samples"]): row for row in line["rows"]}
        for name in ESTIMATORS:
            values = [f"{cells[name, s]['total_variance']:.3g} ({cells[name, s]['relative_variance']:.2g})"
                      if (name, s) in cells else "—" for s in sample_sizes]
            table.append(f"| {line['epoch']} | {name} | " + " | ".join(values) + " |")
    norms = ", ".join(f"epoch {line['epoch']}: {line['rows'][0]['squared_norm_of_gradient']:.3g}" for line in lines)
    return ("Total variance trace Cov[g_hat] of one estimate of grad_phi E_q[log p(x|z)] (encoder parameters), "
            "in parentheses divided by ||g||^2 "
            f"({norms}).\n\n" + "\n".join(table) + "\n")


def plot(path: str, lines: list[dict], dataset: str) -> None:
    """Variance against S on log-log axes, one panel per measured epoch, one line per estimator."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, panels = plt.subplots(1, len(lines), figsize=(4.2 * len(lines), 4), dpi=120, sharey=True,
                                  squeeze=False)
    for axes, line in zip(panels[0], lines):
        for name in ESTIMATORS:
            rows = [row for row in line["rows"] if row["estimator"] == name]
            axes.loglog([row["num_samples"] for row in rows], [row["total_variance"] for row in rows],
                        marker="o", label=name)
        axes.set_title(f"{dataset}, after epoch {line['epoch']}")
        axes.set_xlabel("samples S per estimate")
        axes.grid(alpha=0.3, which="both")
    panels[0][0].set_ylabel("trace Cov[gradient estimate]")
    # One legend below the panels, where it hides no line.
    figure.legend(*panels[0][0].get_legend_handles_labels(), loc="lower center", ncol=len(ESTIMATORS),
                  fontsize="small")
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    plots.save_figure(path, figure)


def run(config: GradientEstimatorsConfig, allow_changes: Sequence[str] = ()) -> dict[str, Any]:
    """Trains the VAE (vaecnn.lifecycle, in workdir/vae), measuring after each of config.measure_epochs; writes
    the table, plot and JSON and returns {"table": Markdown, "measurements": one line per measured epoch,
    "vae_results": ...}. Holds config.workdir (vaecnn.workdir) throughout."""
    vconfig.check_resume(config, config.workdir, allow_changes)
    with workdir.locked(config.workdir):
        return _measure(config)


def _measure(config: GradientEstimatorsConfig) -> dict[str, Any]:
    measure_epochs, sample_sizes = sorted(set(config.measure_epochs)), sorted(set(config.num_samples))
    vae_config = config.vae_config()
    vconfig.save(config, config.workdir, keep_existing=True)
    splits = vae.load_splits(vae_config)
    task = vae.make_task(vae_config, splits["test"].images.shape[1:])
    key = rng.stream(vae_config.train.seed, "gradient_measurements")
    x_BxHxWxC = task.inputs(key, jnp.asarray(splits["test"].images[:config.num_images]))
    measure = make_measurement(task, x_BxHxWxC, sample_sizes, config.num_estimates)
    log = metrics_log.MetricsLog(os.path.join(config.workdir, "gradient_variance.jsonl"))

    def on_epoch_end(epoch: int, params) -> None:
        if epoch in measure_epochs:
            logging.info("measuring gradient variances after epoch %d", epoch)
            log.append({"epoch": epoch, "rows": measure(params, rng.batch_key(key, epoch))})

    vae_results = lifecycle.train_and_evaluate(vae.RECIPE, vae_config, on_epoch_end=on_epoch_end)
    by_epoch = {line["epoch"]: line for line in log.read()}  # a rerun's line replaces an older one
    lines = [by_epoch[epoch] for epoch in measure_epochs if epoch in by_epoch]
    if not lines:
        raise ConfigError(f"the VAE in {vae_config.workdir} had already trained past --measure_epochs and nothing "
                          "was measured; use a fresh --workdir")
    vconfig.save(config, config.workdir)
    table = markdown_table(lines, sample_sizes)
    files.write_text(os.path.join(config.workdir, "gradient_variance.md"), table)
    plot(os.path.join(config.workdir, "gradient_variance.png"), lines, config.dataset)
    files.write_json(os.path.join(config.workdir, "gradient_variance.json"), {
        "measurements": lines, "num_estimates": config.num_estimates, "num_images": config.num_images,
        "vae_results": vae_results, "hardware": hardware.describe()})
    return {"table": table, "measurements": lines, "vae_results": vae_results}
