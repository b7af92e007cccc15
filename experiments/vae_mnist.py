r"""Train a VAE on MNIST (or Fashion-MNIST, or the offline 8x8 digits) and evaluate it.

    python -m experiments.vae_mnist --data_dir=../shared/datasets --workdir=runs/vae_mnist
    python -m experiments.vae_mnist --arch=conv --objective=iwae --num_samples=5 --eval_iw_samples=5000

Rerunning with the same --workdir resumes from its newest checkpoint.
"""

import math

from absl import flags

from experiments import _cli
from vaecnn.data.images import DATASETS
from vaecnn.models.vae import ARCHS, LIKELIHOODS
from vaecnn.optim import SCHEDULES
from vaecnn.recipes.vae import OBJECTIVES, VAEConfig, run

_DEFAULTS = VAEConfig(workdir="")
FLAGS = flags.FLAGS
_cli.define_workdir("runs/vae_mnist", "Output folder: metrics, checkpoints, pictures, results.")
flags.DEFINE_enum("dataset", _DEFAULTS.dataset, DATASETS, "Image dataset.")
flags.DEFINE_string("data_dir", None, "Folder with <dataset>/ IDX files (default: $VAECNN_DATA_DIR, then TFDS).")
flags.DEFINE_enum("arch", _DEFAULTS.arch, ARCHS, "mlp, or conv: stride-2 convolutions around the dense layers.")
_cli.define_integers("hidden_sizes", _DEFAULTS.hidden_sizes, "Encoder MLP sizes (decoder mirrors).")
_cli.define_integers("conv_features", _DEFAULTS.conv_features,
                     "--arch=conv: channels of the encoder's stride-2 convolutions (decoder mirrors).")
flags.DEFINE_integer("latent_dim", _DEFAULTS.latent_dim, "Latent dimensions.", lower_bound=1)
flags.DEFINE_enum("likelihood", _DEFAULTS.likelihood, LIKELIHOODS, "p(x|z): bernoulli (BCE) or gaussian (MSE).")
flags.DEFINE_string("gaussian_logvar", "0.0", "Gaussian likelihood: a fixed log-variance, or 'learned'.")
flags.DEFINE_enum("objective", _DEFAULTS.objective, OBJECTIVES,
                  "elbo, or iwae: the importance-weighted bound with k = --num_samples (k = 1: the ELBO).")
flags.DEFINE_integer("num_samples", _DEFAULTS.num_samples, "Samples of z per example in the objective.",
                     lower_bound=1)
flags.DEFINE_integer("epochs", _DEFAULTS.epochs, "Training epochs.", lower_bound=1)
flags.DEFINE_integer("batch_size", _DEFAULTS.batch_size, "Training batch size.", lower_bound=1)
flags.DEFINE_float("learning_rate", _DEFAULTS.learning_rate, "Adam peak learning rate.", lower_bound=0.0)
flags.DEFINE_enum("lr_schedule", _DEFAULTS.lr_schedule, SCHEDULES, "Learning-rate schedule.")
flags.DEFINE_float("warmup_epochs", _DEFAULTS.warmup_epochs, "warmup_cosine: linear warm-up, in epochs.",
                   lower_bound=0.0)
flags.DEFINE_integer("steps_per_chunk", _DEFAULTS.steps_per_chunk, "Training steps per compiled program (more: "
                     "fewer dispatches from Python; progress is logged between programs).", lower_bound=1)
flags.DEFINE_integer("seed", _DEFAULTS.seed, "Seed of every random draw.")
flags.DEFINE_integer("eval_batch_size", _DEFAULTS.eval_batch_size, "Evaluation batch size.", lower_bound=1)
flags.DEFINE_integer("eval_iw_samples", 0, "If > 0: importance samples for the test log p(x) estimate.",
                     lower_bound=0)
flags.DEFINE_integer("iw_chunk_size", _DEFAULTS.iw_chunk_size,
                     "Importance samples decoded at once per test batch (memory ~ eval_batch_size x this).",
                     lower_bound=1)


def _gaussian_logvar(text: str) -> float | None:
    return None if text == "learned" else float(text)


def _is_logvar(text: str) -> bool:
    try:
        return math.isfinite(_gaussian_logvar(text) or 0.0)
    except ValueError:
        return False


flags.register_validator("gaussian_logvar", _is_logvar, "must be a finite number or 'learned'")


def main(argv):
    del argv
    config = VAEConfig(
        workdir=FLAGS.workdir, dataset=FLAGS.dataset, data_dir=FLAGS.data_dir, arch=FLAGS.arch,
        hidden_sizes=FLAGS.hidden_sizes, conv_features=FLAGS.conv_features,
        latent_dim=FLAGS.latent_dim, likelihood=FLAGS.likelihood,
        gaussian_logvar=_gaussian_logvar(FLAGS.gaussian_logvar), objective=FLAGS.objective,
        num_samples=FLAGS.num_samples, epochs=FLAGS.epochs, batch_size=FLAGS.batch_size,
        learning_rate=FLAGS.learning_rate, lr_schedule=FLAGS.lr_schedule, warmup_epochs=FLAGS.warmup_epochs,
        steps_per_chunk=FLAGS.steps_per_chunk, seed=FLAGS.seed,
        eval_batch_size=FLAGS.eval_batch_size, eval_iw_samples=FLAGS.eval_iw_samples,
        iw_chunk_size=FLAGS.iw_chunk_size)
    results = run(config)
    print(f"test negative ELBO {results['test_neg_elbo']:.2f} nats "
          f"(recon {results['test_recon']:.2f} + KL {results['test_kl']:.2f}) after {results['epochs']} epochs; "
          f"results in {config.workdir}/results.json")
    if "test_nll_iw" in results:
        print(f"test -log p(x) ~ {results['test_nll_iw']:.2f} nats ({results['iw_samples']} importance samples)")


if __name__ == "__main__":
    _cli.run(main)
