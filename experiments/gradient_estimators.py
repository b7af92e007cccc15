r"""Score-function vs reparameterization gradients of the ELBO, measured on a VAE as it trains
(vaecnn.recipes.gradient_estimators).

    python -m experiments.gradient_estimators --data_dir=../shared/datasets --workdir=runs/gradient_estimators

Writes <workdir>/gradient_variance.{md,png,json,jsonl}; the VAE run goes to <workdir>/vae.
"""

from experiments import _cli
from vaecnn.recipes.gradient_estimators import run

resolve_config = _cli.define_config("gradient_estimators")


def main(argv):
    del argv
    results = _cli.train(run, resolve_config())
    if results is not None:
        print(results["table"])


if __name__ == "__main__":
    _cli.run(main)
