r"""Train a VAE on MNIST (or Fashion-MNIST, or the offline 8x8 digits) and evaluate it.

    python -m experiments.vae_mnist --data_dir=../shared/datasets --workdir=runs/vae_mnist
    python -m experiments.vae_mnist --config=vae_mnist_iw          # a README row's preset (configs/)
    python -m experiments.vae_mnist --arch=conv --objective=iwae --num_samples=5 --eval_iw_samples=5000

Every field of vaecnn.recipes.vae.VAEConfig is a flag; rerunning with the same --workdir resumes.
"""

from experiments import _cli
from vaecnn.recipes.vae import run

resolve_config = _cli.define_config("vae_mnist")


def main(argv):
    del argv
    config = resolve_config()
    results = run(config)
    print(f"test negative ELBO {results['test_neg_elbo']:.2f} nats "
          f"(recon {results['test_recon']:.2f} + KL {results['test_kl']:.2f}) after {results['epochs']} epochs; "
          f"results in {config.workdir}/results.json")
    if "test_nll_iw" in results:
        print(f"test -log p(x) ~ {results['test_nll_iw']:.2f} nats ({results['iw_samples']} importance samples)")


if __name__ == "__main__":
    _cli.run(main)
