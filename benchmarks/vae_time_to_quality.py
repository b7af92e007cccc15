r"""Time to a test -ELBO of 100 nats on MNIST: vaecnn's default recipe against a plain PyTorch script.

    ./launch.sh bench vae_time_to_quality --data_dir=../shared/datasets
        (writes benchmarks/results/vae_time_to_quality.{json,png})

Both sides run in this process, one after the other, on the same data and the same fixed binarized
test set (vaecnn's, seed 0), and stop at the first epoch whose test -ELBO is at or below --target:

* JAX: `vaecnn.lifecycle.train_and_evaluate(vaecnn.recipes.vae.RECIPE, config)` with VAEConfig's
  defaults -- the run `./launch.sh vae_mnist` makes, its 30-epoch schedule included; its seconds are
  the recipe's own `train_seconds` (time in training programs, compilation included; evaluation and
  pictures excluded).
* PyTorch: the same architecture written as a user would write it (benchmarks/_torch_vae.py): Adam
  1e-3, batch 128, the training set binarized once per epoch outside the step, a shuffled index per
  epoch, PyTorch's default threads; its seconds are the epochs' training loops (evaluation excluded).
"""

import dataclasses
import os
import tempfile
import time

import numpy as np
from absl import flags

from benchmarks._harness import torch
from benchmarks._torch_vae import TorchVAE, binarize
from experiments import _cli, _flags
from vaecnn import config as vconfig
from vaecnn import files, hardware, metrics_log, plots
from configs import vae_mnist
from vaecnn import lifecycle
from vaecnn.recipes.vae import RECIPE, load_splits

FLAGS = flags.FLAGS
_DEFAULTS = vae_mnist.get_config()  # the experiment's own preset
_flags.define_output("benchmarks/results/vae_time_to_quality.json", "Where the JSON goes (a PNG beside it).")
flags.DEFINE_string("data_dir", None, "Folder holding mnist/ (default: $VAECNN_DATA_DIR).")
flags.DEFINE_float("target", 100.0, "Test negative ELBO (nats) to reach.")
flags.DEFINE_integer("torch_max_epochs", 40, "PyTorch stops here if it has not reached the target.", lower_bound=1)
flags.DEFINE_integer("torch_batch_size", 128, "The PyTorch script's batch size.", lower_bound=1)
flags.DEFINE_float("torch_learning_rate", 1e-3, "The PyTorch script's Adam learning rate.", lower_bound=0.0)


def first_at_target(curve: list[dict], target: float) -> dict | None:
    return next((point for point in curve if point["test_neg_elbo"] <= target), None)


def jax_side(target: float) -> dict:
    """The default recipe, stopped once the test -ELBO reaches the target."""
    with tempfile.TemporaryDirectory() as workdir:
        config = dataclasses.replace(_DEFAULTS, workdir=workdir, data_dir=FLAGS.data_dir)
        log = metrics_log.MetricsLog(os.path.join(workdir, "metrics.jsonl"))
        reached = lambda epoch, params: log.read()[-1]["test/neg_elbo"] <= target
        lifecycle.train_and_evaluate(RECIPE, config, on_epoch_end=reached)
        lines = log.read()
    curve = [{"epoch": line["epoch"], "train_seconds": line["train_seconds"], "test_neg_elbo": line["test/neg_elbo"],
              "epoch_seconds": line["epoch_seconds"], "examples_per_second": line["train/count"] / line["epoch_seconds"]}
             for line in lines]
    settings = vconfig.settings(config)
    return {"recipe": {key: settings[key].default for key in ("batch_size", "learning_rate", "lr_schedule",
                                                             "warmup_epochs", "epochs", "hidden_sizes", "latent_dim")},
            "compile_seconds": lines[0]["compile_seconds"], "curve": curve}


def torch_side(target: float) -> dict:
    config = dataclasses.replace(_DEFAULTS, data_dir=FLAGS.data_dir)
    splits = load_splits(config)  # the test set binarized once with the seed, as the JAX side sees it
    train_images, test_x = splits["train"].images, torch.from_numpy(splits["test"].images.reshape(-1, 784) / 255.0)
    torch.manual_seed(0)
    model = TorchVAE(_DEFAULTS.hidden_sizes, _DEFAULTS.latent_dim)
    optimizer = torch.optim.Adam(model.parameters(), lr=FLAGS.torch_learning_rate)
    batch_size, seconds, curve = FLAGS.torch_batch_size, 0.0, []
    for epoch in range(1, FLAGS.torch_max_epochs + 1):
        start = time.perf_counter()
        x = binarize(train_images)
        order = torch.randperm(len(x))
        steps = len(x) // batch_size
        for i in range(steps):
            loss = model.negative_elbo(x[order[i * batch_size:(i + 1) * batch_size]]).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        epoch_seconds = time.perf_counter() - start
        seconds += epoch_seconds
        with torch.no_grad():
            test = float(torch.cat([model.negative_elbo(test_x[i:i + 1000].float()) for i in range(0, len(test_x), 1000)])
                         .mean())
        curve.append({"epoch": epoch, "train_seconds": seconds, "test_neg_elbo": test, "epoch_seconds": epoch_seconds,
                      "examples_per_second": steps * batch_size / epoch_seconds})
        if test <= target:
            break
    return {"recipe": {"batch_size": batch_size, "learning_rate": FLAGS.torch_learning_rate, "optimizer": "adam",
                       "threads": torch.get_num_threads()}, "curve": curve}


def main(argv):
    del argv
    torch.set_flush_denormal(True)  # PyTorch's best CPU setting; threads stay at its default
    load_before = os.getloadavg()[0]
    sides = {"jax": jax_side(FLAGS.target), "torch": torch_side(FLAGS.target)}
    for side in sides.values():
        reached = first_at_target(side["curve"], FLAGS.target)
        side["reached"] = reached is not None
        side["epochs_to_target"] = reached["epoch"] if reached else None
        side["seconds_to_target"] = reached["train_seconds"] if reached else None
        rates = [point["examples_per_second"] for point in side["curve"][1:]] or [side["curve"][0]["examples_per_second"]]
        side["examples_per_second_median"] = float(np.median(rates))  # epochs after the first (no compilation)
    both = sides["jax"]["reached"] and sides["torch"]["reached"]
    results = {
        "benchmark": f"MNIST VAE: training seconds to test -ELBO <= {FLAGS.target} nats, same run",
        "target_nats": FLAGS.target, **sides,
        "ratio_jax_over_torch_seconds": sides["jax"]["seconds_to_target"] / sides["torch"]["seconds_to_target"]
        if both else None,
        "load_average_1m": {"before": load_before, "after": os.getloadavg()[0]},
        "versions": {"torch": torch.__version__, "torch_threads": torch.get_num_threads()},
        "hardware": hardware.describe(),
    }
    files.write_json(FLAGS.output, results)
    _plot(FLAGS.output.removesuffix(".json") + ".png", results)
    for name, side in sides.items():
        print(f"{name}: {side['seconds_to_target'] if both else 'not reached'} s to {FLAGS.target} nats "
              f"(epoch {side['epochs_to_target']}), {side['examples_per_second_median']:.0f} examples/s")
    if both:
        print(f"ratio jax/torch = {results['ratio_jax_over_torch_seconds']:.2f}; written to {FLAGS.output}")


def _plot(path: str, results: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5.5, 3.8))
    for index, side in enumerate(("jax", "torch")):
        curve = results[side]["curve"]
        axes.plot([p["train_seconds"] for p in curve], [p["test_neg_elbo"] for p in curve], "o-", color=f"C{index}",
                  label=side, markersize=3)
    axes.axhline(results["target_nats"], color="gray", linestyle="--", linewidth=1)
    axes.set_xlabel("training seconds")
    axes.set_ylabel("test -ELBO (nats)")
    axes.set_ylim(top=min(140, axes.get_ylim()[1]))
    axes.legend()
    axes.set_title(results["benchmark"], fontsize=8)
    figure.tight_layout()
    plots.save_figure(path, figure)


if __name__ == "__main__":
    _cli.run(main)
