r"""On a GPU or TPU machine: the default VAE for 30 epochs, timed per epoch, as JSON.

    ./launch.sh accelerator_check --data_dir=../shared/datasets
        (installs the CUDA or TPU build of jax, runs the fast tests, then this; writes
         benchmarks/results/accelerator_check_<platform>.json)

Targets on one current data-centre GPU: an MNIST VAE epoch in under 1 s, the 30-epoch default in
under a minute. Seconds are the recipe's own (time in training programs, compilation in epoch 1).
"""

import os
import statistics
import tempfile

import jax
from absl import flags

from experiments import _cli, _flags
from vaecnn import files, hardware, metrics_log
from configs import vae_mnist
from vaecnn import config as vconfig
from vaecnn import lifecycle
from vaecnn.recipes.vae import RECIPE

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "Folder holding mnist/ (default: $VAECNN_DATA_DIR).")
_flags.define_output(None, "JSON path (default: benchmarks/results/accelerator_check_<platform>.json).")
flags.DEFINE_integer("epochs", vae_mnist.get_config().train.epochs, "Epochs of the default recipe.", lower_bound=1)


def main(argv):
    del argv
    platform = jax.devices()[0].platform
    with tempfile.TemporaryDirectory() as workdir:
        config = vconfig.override(vae_mnist.get_config(), dict(workdir=workdir, data_dir=FLAGS.data_dir,
                                                               epochs=FLAGS.epochs))
        results = lifecycle.train_and_evaluate(RECIPE, config)
        lines = metrics_log.MetricsLog(os.path.join(workdir, "metrics.jsonl")).read()
    epochs = [{"epoch": line["epoch"], "seconds": line["epoch_seconds"], "compile_seconds": line["compile_seconds"],
               "examples_per_second": line["train/count"] / line["epoch_seconds"],
               "test_neg_elbo": line["test/neg_elbo"]} for line in lines]
    later = [epoch["seconds"] for epoch in epochs[1:]] or [epochs[0]["seconds"]]  # after the compiling epoch
    summary = {"platform": platform, "devices": [str(d) for d in jax.devices()], "epochs": epochs,
               "train_seconds": results["train_seconds"], "median_epoch_seconds_after_first": statistics.median(later),
               "test_neg_elbo": results["test_neg_elbo"], "hardware": hardware.describe(), "jax": jax.__version__}
    output = FLAGS.output or f"benchmarks/results/accelerator_check_{platform}.json"
    files.write_json(output, summary)
    print(f"{platform}: {FLAGS.epochs} epochs in {results['train_seconds']:.1f} s of training "
          f"(median epoch {summary['median_epoch_seconds_after_first']:.2f} s after the first), test -ELBO "
          f"{results['test_neg_elbo']:.2f}; written to {output}")


if __name__ == "__main__":
    _cli.run(main)
