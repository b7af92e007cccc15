"""The main shared by the sentence-classification experiments (rnn_sentiment, cnn_sentiment).

Training: python -m experiments.<name> --dataset=stsa.binary (or --train_file=... [--dev_file, --test_file]).
Prediction: python -m experiments.<name> --workdir=<trained> --predict="a sentence" [--predict=...], or
--predict=- for one sentence per line of stdin; prints "label<TAB>probability<TAB>sentence" per sentence.
Evaluation: --mode=evaluate --workdir=<trained> gives the test accuracy again (of a cross-validation: every
fold's, and their mean; of one fold's folder: that fold's); --eval_file=<labelled file> gives its accuracy
and writes a TSV of per-example predictions.
"""

import sys
from collections.abc import Callable

from absl import flags

from experiments import _flags, _modes
from vaecnn import lifecycle
from vaecnn.recipes.text_classifier import RECIPE, TextClassifierConfig, with_vector_size
from vaecnn.recipes.text_predict import evaluate_file, predict

FLAGS = flags.FLAGS
STDIN = "-"


def define(default_preset: str) -> Callable[[], TextClassifierConfig]:
    """--predict, --config and one flag per config field; returns the config resolver."""
    flags.DEFINE_multi_string("predict", [], f"Sentence(s) to classify with the model in --workdir, instead of "
                              f"training; {STDIN} reads one per line from stdin.", module_name=sys.argv[0])
    flags.DEFINE_string("eval_file", None, "A labelled file (GLUE TSV or 'label text' lines) to classify with the "
                        "model in --workdir: prints its accuracy, writes workdir/predictions_<file>.tsv.",
                        module_name=sys.argv[0])
    _modes.define_mode(["train", "evaluate"])
    resolve = _flags.define_config(default_preset, read_only_with="predict", complete=with_vector_size)
    # The presets name a data set, so that a bare run works; explicit files replace it unless it is given too.
    return lambda: resolve(**({"dataset": None} if _flags.given("train_file") and not _flags.given("dataset") else {}))


def _sentences(arguments: list[str]) -> list[str]:
    sentences = []
    for argument in arguments:
        if argument == STDIN:
            sentences.extend(line.strip() for line in sys.stdin if line.strip())
        else:
            sentences.append(argument)
    return sentences


def _accuracy(results) -> str:
    """The headline figure: k-fold cross-validation accuracy as mean ± std, or the test accuracy."""
    if "cv_accuracy_mean" in results:
        return (f"{results['cv_folds']}-fold cross-validation accuracy {results['cv_accuracy_mean']:.4f} ± "
                f"{results['cv_accuracy_std']:.4f}")
    return f"test accuracy {results['test_accuracy']:.4f}"


def main(resolve_config: Callable[[], TextClassifierConfig]) -> None:
    """With --predict: one "label<TAB>probability<TAB>sentence" line per sentence. Otherwise trains and
    evaluates the configured model and prints one summary line."""
    if FLAGS.predict:
        sentences = _sentences(FLAGS.predict)
        for sentence, (label, probability) in zip(sentences, predict(FLAGS.workdir, sentences)):
            print(f"{label}\t{probability:.4f}\t{sentence}")
        return
    if FLAGS.eval_file:
        result = evaluate_file(FLAGS.workdir, FLAGS.eval_file)
        print(f"{FLAGS.eval_file}: accuracy {result['accuracy']:.4f} on {result['count']} examples; predictions "
              f"in {result['predictions_file']}")
        return
    if FLAGS.mode == "evaluate":
        results = lifecycle.evaluate(RECIPE, FLAGS.workdir, overrides=_modes.given_settings(TextClassifierConfig))
        print(f"{_accuracy(results)} of the model in {FLAGS.workdir}")
        return
    config = resolve_config()
    results = _modes.train(RECIPE, config)
    if results is None:  # --seeds: printed by _modes.train
        return
    epoch = "" if "cv_accuracy_mean" in results else f" (epoch {results['selected_epoch']})"
    print(f"{results['dataset']}: {_accuracy(results)}{epoch}, {results['num_params']:,} parameters, "
          f"{results['train_seconds']:.0f} s training; results in {config.workdir}/results.json")
