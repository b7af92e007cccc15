r"""Score-function vs reparameterization gradients of the ELBO, measured on a VAE as it trains
(vaecnn.recipes.gradient_estimators).

    python -m experiments.gradient_estimators --data_dir=../shared/datasets --workdir=runs/gradient_estimators

Writes <workdir>/gradient_variance.{md,png,json,jsonl}; the VAE run goes to <workdir>/vae.
"""

from absl import flags

from experiments import _cli, _flags, _modes
from vaecnn import lifecycle, preemption
from vaecnn.recipes.gradient_estimators import run

FLAGS = flags.FLAGS
resolve_config = _flags.define_config("gradient_estimators")


def main(argv):
    del argv
    config = resolve_config()
    with preemption.StopRequests():
        if FLAGS.seeds:
            _modes.print_seeds(lifecycle.run_seeds(lambda seeded: run(seeded, FLAGS.allow_changes), config, FLAGS.seeds,
                                                 FLAGS.allow_changes), config.workdir)
            return
        print(run(config, FLAGS.allow_changes)["table"])


if __name__ == "__main__":
    _cli.run(main)
