r"""TD-2, Exercise 1: train a small CNN and/or a dense net on MNIST (or Fashion-MNIST, or the
offline 8x8 digits), and answer the exercise's arithmetic.

    python -m experiments.cnn_mnist --data_dir=../shared/datasets --model=both --workdir=runs/cnn_mnist
    python -m experiments.cnn_mnist --arith_only --workdir=runs/cnn_mnist    # trains nothing

Every run writes workdir/arithmetic.md (the notes' answers and the dense-vs-conv table); --model=both
trains the two models in workdir/cnn and workdir/dense and writes workdir/comparison.md.
Rerunning with the same --workdir resumes from the newest checkpoints.
"""

import os

from absl import flags

from experiments import _cli
from vaecnn.data.images import DATASETS
from vaecnn import report
from vaecnn.optim import OPTIMIZERS, SCHEDULES
from vaecnn.recipes.image_classifier import MODELS, ImageClassifierConfig, arithmetic_report, compare, run

_DEFAULTS = ImageClassifierConfig(workdir="")
FLAGS = flags.FLAGS
_cli.define_workdir("runs/cnn_mnist", "Output folder: metrics, checkpoints, plots, results.")
flags.DEFINE_integer("measure_limit_params", 2_000_000_000,
                     "Dense-vs-conv table: initialise the dense layer for real when its matrix has at most this "
                     "many floats (2e9 = 8 GB of float32 fits this 24 GB machine; n = 64 is 1e9), compute above.",
                     lower_bound=0)
flags.DEFINE_bool("arith_only", False, "Only print and write arithmetic.md (the notes' answers); train nothing.")
flags.DEFINE_enum("model", _DEFAULTS.model, [*MODELS, "both"], "Which classifier; both: each in workdir/<model>.")
flags.DEFINE_enum("dataset", _DEFAULTS.dataset, DATASETS, "Image dataset.")
flags.DEFINE_string("data_dir", None, "Folder with <dataset>/ IDX files (default: $VAECNN_DATA_DIR, then TFDS).")
_cli.define_integers("cnn_features", _DEFAULTS.cnn_features, "CNN: channels of the 3x3 convs.")
flags.DEFINE_integer("cnn_hidden_size", _DEFAULTS.cnn_hidden_size, "CNN: units of the dense layer.", lower_bound=1)
_cli.define_integers("dense_hidden_sizes", _DEFAULTS.dense_hidden_sizes, "Dense net: hidden sizes.")
flags.DEFINE_float("dropout_rate", _DEFAULTS.dropout_rate, "Dropout rate of both models (training only).")
flags.DEFINE_integer("train_examples", None, "Train on the first N training images only (default: all).",
                     lower_bound=1)
flags.DEFINE_integer("epochs", _DEFAULTS.epochs, "Training epochs.", lower_bound=1)
flags.DEFINE_integer("batch_size", _DEFAULTS.batch_size, "Training batch size.", lower_bound=1)
flags.DEFINE_enum("optimizer", _DEFAULTS.optimizer, OPTIMIZERS, "Optimizer.")
flags.DEFINE_float("learning_rate", _DEFAULTS.learning_rate, "Peak learning rate.", lower_bound=0.0)
flags.DEFINE_enum("lr_schedule", _DEFAULTS.lr_schedule, SCHEDULES, "Learning-rate schedule.")
flags.DEFINE_integer("seed", _DEFAULTS.seed, "Seed of every random draw.")
flags.DEFINE_integer("eval_batch_size", _DEFAULTS.eval_batch_size, "Evaluation batch size.", lower_bound=1)


def _print_results(results: dict) -> None:
    print(f"{results['model']}: test accuracy {results['test_accuracy']:.4f} (loss {results['test_loss']:.4f}) "
          f"after {results['epochs']} epochs, {results['num_params']:,} parameters, "
          f"{results['train_seconds']:.0f} s of training")


def _write_arithmetic(workdir: str) -> str:
    text = arithmetic_report(FLAGS.measure_limit_params)
    report.make_workdir(workdir)
    with open(os.path.join(workdir, "arithmetic.md"), "w", encoding="utf-8") as f:
        f.write(text)
    return text


def main(argv):
    del argv
    if FLAGS.arith_only:
        print(_write_arithmetic(FLAGS.workdir))
        return
    config = ImageClassifierConfig(
        workdir=FLAGS.workdir, dataset=FLAGS.dataset, data_dir=FLAGS.data_dir,
        model=MODELS[0] if FLAGS.model == "both" else FLAGS.model,  # compare() sets it per model
        cnn_features=FLAGS.cnn_features, cnn_hidden_size=FLAGS.cnn_hidden_size,
        dense_hidden_sizes=FLAGS.dense_hidden_sizes, dropout_rate=FLAGS.dropout_rate,
        train_examples=FLAGS.train_examples, epochs=FLAGS.epochs, batch_size=FLAGS.batch_size,
        optimizer=FLAGS.optimizer, learning_rate=FLAGS.learning_rate, lr_schedule=FLAGS.lr_schedule,
        seed=FLAGS.seed, eval_batch_size=FLAGS.eval_batch_size)
    _write_arithmetic(config.workdir)
    if FLAGS.model == "both":
        for results in compare(config).values():
            _print_results(results)
        print(f"comparison in {config.workdir}/comparison.md")
    else:
        _print_results(run(config))
        print(f"results in {config.workdir}/results.json")

if __name__ == "__main__":
    _cli.run(main)
