"""Flags and main shared by the sentence-classification experiments (rnn_sentiment, cnn_sentiment).

An experiment defines these flags plus its model's own, then calls main() with the model's fields:

    _text_flags.define_flags(workdir="runs/cnn_sentiment", optimizer="adadelta", learning_rate=1.0)
    flags.DEFINE_list("widths", ...)
    def main(argv):
        _text_flags.main(model="cnn", widths=tuple(int(w) for w in FLAGS.widths))

Training: python -m experiments.<name> --dataset=stsa.binary (or --train_file=... [--dev_file, --test_file]).
Prediction: python -m experiments.<name> --workdir=<trained> --predict="a sentence" [--predict=...], or
--predict=- for one sentence per line of stdin; prints "label<TAB>probability<TAB>sentence" per sentence.
"""

import dataclasses
import sys

from absl import flags

from experiments import _cli
from vaecnn.data.text import TEXT_DATASETS
from vaecnn.optim import OPTIMIZERS, SCHEDULES
from vaecnn.recipes.text_classifier import TextClassifierConfig, predict, run

FLAGS = flags.FLAGS
STDIN = "-"


def define_flags(workdir: str, **defaults) -> None:
    """Defines the shared flags; `defaults` overrides TextClassifierConfig's defaults by field name."""
    default = {field.name: field.default for field in dataclasses.fields(TextClassifierConfig)}
    if set(defaults) - set(default):
        raise ValueError(f"not TextClassifierConfig fields: {sorted(set(defaults) - set(default))}")
    default.update(defaults)
    flags.DEFINE_string("dataset", "stsa.binary", f"Data set: {', '.join(sorted(TEXT_DATASETS))} or tfds:<name>; "
                        "a test split is evaluated directly, none (mr) by --cv_folds cross-validation. Ignored "
                        "when --train_file is given (unless given too, which is an error).")
    flags.DEFINE_string("data_dir", None, "Folder holding mr/ and sst2/ (default: $VAECNN_DATA_DIR).")
    flags.DEFINE_string("train_file", None, "Training file instead of --dataset: GLUE TSV (*.tsv, with a "
                        "sentence/label header) or 'label text' lines.")
    flags.DEFINE_string("dev_file", None, "With --train_file: dev file; the epoch with the best dev accuracy is kept.")
    flags.DEFINE_string("test_file", None, "With --train_file: test file; without one, cross-validation.")
    flags.DEFINE_integer("cv_folds", default["cv_folds"], "Folds of the cross-validation of data without a "
                         "test split.", lower_bound=2)
    flags.DEFINE_float("cv_dev_fraction", default["cv_dev_fraction"], "In cross-validation, the share of each "
                       "fold's training data held out as its dev set (0: none, keep the last epoch).",
                       lower_bound=0.0, upper_bound=0.5)
    flags.DEFINE_integer("max_len", default["max_len"], "Tokens kept per sentence; longer ones are cut and counted in the log.", lower_bound=1)
    flags.DEFINE_integer("min_freq", default["min_freq"], "Training tokens seen fewer times become <unk>.",
                         lower_bound=1)
    flags.DEFINE_integer("max_vocab", default["max_vocab"], "Largest vocabulary, <pad> and <unk> included.",
                         lower_bound=2)
    flags.DEFINE_integer("num_buckets", default["num_buckets"], "Sentence-length buckets (compiled shapes).",
                         lower_bound=1)
    flags.DEFINE_integer("embed_dim", default["embed_dim"], "Word-embedding size (randomly initialised).",
                         lower_bound=1)
    flags.DEFINE_float("dropout", default["dropout"], "Dropout rate.", lower_bound=0.0, upper_bound=0.99)
    flags.DEFINE_enum("optimizer", default["optimizer"], OPTIMIZERS, "Optimizer.")
    flags.DEFINE_float("learning_rate", default["learning_rate"], "Peak learning rate.", lower_bound=0.0)
    flags.DEFINE_enum("lr_schedule", default["lr_schedule"], SCHEDULES, "Learning-rate schedule.")
    flags.DEFINE_integer("warmup_steps", default["warmup_steps"], "Warm-up steps of warmup_cosine.", lower_bound=0)
    flags.DEFINE_float("clip_norm", default["clip_norm"], "Clip gradients to this global norm (0: no clipping).",
                       lower_bound=0.0)
    flags.DEFINE_float("weight_decay", default["weight_decay"], "AdamW weight decay.", lower_bound=0.0)
    flags.DEFINE_integer("epochs", default["epochs"], "Training epochs.", lower_bound=1)
    flags.DEFINE_integer("batch_size", default["batch_size"], "Training batch size.", lower_bound=1)
    flags.DEFINE_integer("eval_batch_size", default["eval_batch_size"], "Evaluation batch size.", lower_bound=1)
    flags.DEFINE_integer("seed", default["seed"], "Seed of every random draw (initialisation, order, folds).")
    flags.DEFINE_multi_string("predict", [], f"Sentence(s) to classify with the model in --workdir, instead of "
                              f"training; {STDIN} reads one per line from stdin.")
    _cli.define_workdir(workdir, "Output folder: metrics, checkpoints, vocabulary, results. Rerunning resumes; "
                        "with --predict, the trained folder to predict with.", read_only_with="predict")


def config_from_flags(**model_fields) -> TextClassifierConfig:
    """The config of the shared flags plus the experiment's model fields (model=..., its sizes)."""
    # --dataset has a default, so that a bare run works; explicit files replace it unless it is given too.
    dataset = FLAGS.dataset if FLAGS["dataset"].present or not FLAGS.train_file else None
    return TextClassifierConfig(
        workdir=FLAGS.workdir, dataset=dataset, data_dir=FLAGS.data_dir, train_file=FLAGS.train_file,
        dev_file=FLAGS.dev_file, test_file=FLAGS.test_file, cv_folds=FLAGS.cv_folds,
        cv_dev_fraction=FLAGS.cv_dev_fraction, max_len=FLAGS.max_len, min_freq=FLAGS.min_freq,
        max_vocab=FLAGS.max_vocab, num_buckets=FLAGS.num_buckets, embed_dim=FLAGS.embed_dim, dropout=FLAGS.dropout,
        optimizer=FLAGS.optimizer, learning_rate=FLAGS.learning_rate, lr_schedule=FLAGS.lr_schedule,
        warmup_steps=FLAGS.warmup_steps, clip_norm=FLAGS.clip_norm, weight_decay=FLAGS.weight_decay,
        epochs=FLAGS.epochs, batch_size=FLAGS.batch_size, eval_batch_size=FLAGS.eval_batch_size, seed=FLAGS.seed,
        **model_fields)


def _sentences(arguments: list[str]) -> list[str]:
    sentences = []
    for argument in arguments:
        if argument == STDIN:
            sentences.extend(line.strip() for line in sys.stdin if line.strip())
        else:
            sentences.append(argument)
    return sentences


def main(**model_fields) -> None:
    """With --predict: one "label<TAB>probability<TAB>sentence" line per sentence. Otherwise trains and
    evaluates the model of `model_fields` and prints one summary line."""
    if FLAGS.predict:
        sentences = _sentences(FLAGS.predict)
        for sentence, (label, probability) in zip(sentences, predict(FLAGS.workdir, sentences)):
            print(f"{label}\t{probability:.4f}\t{sentence}")
        return
    config = config_from_flags(**model_fields)
    results = run(config)
    if "cv_accuracy_mean" in results:
        accuracy = (f"{results['cv_folds']}-fold cross-validation accuracy {results['cv_accuracy_mean']:.4f} "
                    f"± {results['cv_accuracy_std']:.4f}")
    else:
        accuracy = f"test accuracy {results['test_accuracy']:.4f} (epoch {results['selected_epoch']})"
    print(f"{results['dataset']}: {accuracy}, {results['num_params']:,} parameters, "
          f"{results['train_seconds']:.0f} s training; results in {config.workdir}/results.json")
