r"""Train a VAE on MNIST (or Fashion-MNIST, or the offline 8x8 digits) and evaluate it.

    python -m experiments.vae_mnist --data_dir=../shared/datasets --workdir=runs/vae_mnist
    python -m experiments.vae_mnist --config=vae_mnist_iw          # a results row's preset (configs/)
    python -m experiments.vae_mnist --workdir=runs/vae_mnist --mode=evaluate [--eval_iw_samples=5000] [--epoch=50]
    python -m experiments.vae_mnist --workdir=runs/vae_mnist --mode=sample --num_images=100

Every field of vaecnn.recipes.vae.VAEConfig (and of its TrainConfig) is a flag; rerunning with the same
--workdir resumes. --mode=evaluate and --mode=sample read the model from the workdir's config.json; of the
other flags they take only the paths and evaluation settings (--data_dir, --eval_iw_samples, ...).
"""

from absl import flags

from experiments import _cli, _flags, _modes
from vaecnn import lifecycle
from vaecnn.recipes.vae import RECIPE, VAEConfig, sample

FLAGS = flags.FLAGS
resolve_config = _flags.define_config("vae_mnist")
_modes.define_mode(["train", "evaluate", "sample"])
_modes.define_epoch()
_flags.define_output(None, "--mode=evaluate: also write the figures to this .json file.")
flags.DEFINE_integer("num_images", 64, "--mode=sample: decoded samples in the grid.", lower_bound=1)


def main(argv):
    del argv
    if FLAGS.mode == "train":
        config = resolve_config()
        results = _modes.train(RECIPE, config)
        if results is None:  # --seeds: printed by _modes.train
            return
        where = f" after {results['epochs']} epochs; results in {config.workdir}/results.json"
    elif FLAGS.mode == "evaluate":
        results = lifecycle.evaluate(RECIPE, FLAGS.workdir, epoch=FLAGS.epoch,
                                     overrides=_modes.given_settings(VAEConfig))
        where = f" of the checkpoint of epoch {results['epoch']} in {FLAGS.workdir}"
    else:
        print(f"{FLAGS.num_images} samples in "
              f"{sample(FLAGS.workdir, FLAGS.num_images, overrides=_modes.given_settings(VAEConfig))}")
        return
    print(f"test negative ELBO {results['test_neg_elbo']:.2f} nats "
          f"(recon {results['test_recon']:.2f} + KL {results['test_kl']:.2f}){where}")
    if "test_nll_iw" in results:
        print(f"test -log p(x) ~ {results['test_nll_iw']:.2f} nats ({results['iw_samples']} importance samples)")
    if FLAGS.mode == "evaluate":
        _modes.write_output(results)


if __name__ == "__main__":
    _cli.run(main)
