"""Elman RNN on SST-2, trained on the 67,349 labelled phrases, selected on stsa.binary.dev, tested on
stsa.binary.test; 3 epochs, cosine: results row `rnn_sst2` (docs/results.md)."""

import dataclasses

from configs import rnn_sentiment


def get_config():
    return dataclasses.replace(rnn_sentiment.get_config(), workdir="runs/rnn_sst2", dataset="sst2.phrases",
                               epochs=3, lr_schedule="cosine")
