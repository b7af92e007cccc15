r"""Sentence sentiment with the notes' Elman RNN (section 4): train and evaluate, or predict.

    python -m experiments.rnn_sentiment --dataset=stsa.binary --data_dir=../shared/datasets --workdir=runs/rnn
    python -m experiments.rnn_sentiment --dataset=mr --cv_folds=10 --workdir=runs/rnn_mr
    python -m experiments.rnn_sentiment --workdir=runs/rnn --predict="a gorgeous , witty film"
    echo "dull and lifeless" | python -m experiments.rnn_sentiment --workdir=runs/rnn --predict=-

Flags shared with cnn_sentiment are in experiments/_text_flags.py.
"""

from absl import flags

from experiments import _cli, _text_flags
from vaecnn.models.rnn import ACTIVATIONS
from vaecnn.recipes.text_classifier import TextClassifierConfig

FLAGS = flags.FLAGS
_text_flags.define_flags(workdir="runs/rnn_sentiment")
flags.DEFINE_integer("hidden_size", TextClassifierConfig.hidden_size, "Hidden units H of the Elman RNN.",
                     lower_bound=1)
flags.DEFINE_enum("activation", TextClassifierConfig.activation, sorted(ACTIVATIONS), "σ of the recurrence.")


def main(argv):
    del argv
    _text_flags.main(model="rnn", hidden_size=FLAGS.hidden_size, activation=FLAGS.activation)


if __name__ == "__main__":
    _cli.run(main)
