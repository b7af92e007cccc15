r"""TD-2, Exercise 1: train a small CNN and/or a dense net on MNIST (or Fashion-MNIST, or the
offline 8x8 digits), and answer the exercise's arithmetic.

    python -m experiments.cnn_mnist --data_dir=../shared/datasets --config=mnist_cnn_vs_dense
    python -m experiments.cnn_mnist --arith_only --workdir=runs/cnn_mnist    # trains nothing
    python -m experiments.cnn_mnist --workdir=runs/cnn_mnist --mode=evaluate # the trained models' test accuracy

Every run writes workdir/arithmetic.md (the notes' answers and the dense-vs-conv table); --model=both
trains the two models in workdir/cnn and workdir/dense and writes workdir/comparison.md.
Rerunning with the same --workdir resumes from the newest checkpoints.
"""

import os

from absl import flags

from experiments import _cli, _flags, _modes
from vaecnn import files, lifecycle
from vaecnn.recipes.image_classifier import MODELS, RECIPE, ImageClassifierConfig, arithmetic_report

FLAGS = flags.FLAGS
resolve_config = _flags.define_config("cnn_mnist")
flags.DEFINE_bool("arith_only", False, "Only print and write arithmetic.md (the notes' answers); train nothing.")
_modes.define_mode(["train", "evaluate"])


def _per_model(results) -> list:
    """Each trained model's results: both models' (--model=both) or the one's."""
    return [results[name] for name in MODELS] if "test_accuracy" not in results else [results]


def _accuracy(metrics) -> str:
    return f"{metrics['model']}: test accuracy {metrics['test_accuracy']:.4f} (loss {metrics['test_loss']:.4f})"


def main(argv):
    del argv
    if FLAGS.mode == "evaluate":
        results = lifecycle.evaluate(RECIPE, FLAGS.workdir, overrides=_modes.given_settings(ImageClassifierConfig))
        for metrics in _per_model(results):
            print(f"{_accuracy(metrics)} of the checkpoint of epoch {metrics['epoch']} in {FLAGS.workdir}")
        return
    text = arithmetic_report()
    if FLAGS.arith_only:
        files.make_workdir(FLAGS.workdir)
        files.write_text(os.path.join(FLAGS.workdir, "arithmetic.md"), text)
        print(text)
        return

    config = resolve_config()
    results = _modes.train(RECIPE, config)
    if results is None:  # --seeds: printed by _modes.train
        return
    files.write_text(os.path.join(config.workdir, "arithmetic.md"), text)
    for metrics in _per_model(results):
        print(f"{_accuracy(metrics)} after {metrics['epochs']} epochs, {metrics['num_params']:,} parameters, "
              f"{metrics['train_seconds']:.0f} s of training")
    print(f"results in {config.workdir}/" + ("comparison.md" if config.model == "both" else "results.json"))


if __name__ == "__main__":
    _cli.run(main)
