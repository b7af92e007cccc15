r"""Sentence sentiment with the notes' Elman RNN (section 4): train and evaluate, or predict.

    python -m experiments.rnn_sentiment --dataset=stsa.binary --data_dir=../shared/datasets --workdir=runs/rnn
    python -m experiments.rnn_sentiment --config=rnn_mr                       # a results row's preset
    python -m experiments.rnn_sentiment --workdir=runs/rnn --predict="a gorgeous , witty film"
    echo "dull and lifeless" | python -m experiments.rnn_sentiment --workdir=runs/rnn --predict=-

Every field of TextClassifierConfig and RNNConfig is a flag (experiments/_text_main.py).
"""

from experiments import _cli, _text_main

resolve_config = _text_main.define("rnn_sentiment")


def main(argv):
    del argv
    _text_main.main(resolve_config)


if __name__ == "__main__":
    _cli.run(main)
