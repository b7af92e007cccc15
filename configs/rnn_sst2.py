"""Elman RNN on SST-2, trained on the 67,349 labelled phrases, selected on stsa.binary.dev, tested on
stsa.binary.test; 3 epochs, cosine: results row `rnn_sst2` (docs/results.md)."""

from vaecnn import config as vconfig

from configs import rnn_sentiment


def get_config():
    return vconfig.override(rnn_sentiment.get_config(), dict(workdir="runs/rnn_sst2", dataset="sst2.phrases",
                                                             epochs=3, lr_schedule="cosine"))
