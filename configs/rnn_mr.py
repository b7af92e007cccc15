"""Elman RNN on MR, stratified 10-fold cross-validation, 128/128, Adam 2e-3 cosine, 5 epochs: results row
`rnn_mr` (docs/results.md)."""

import dataclasses

from configs import rnn_sentiment
from vaecnn.models.rnn import RNNConfig


def get_config():
    return dataclasses.replace(rnn_sentiment.get_config(), workdir="runs/rnn_mr", dataset="mr", cv_folds=10,
                               model=RNNConfig(embed_dim=128, hidden_size=128), learning_rate=2e-3,
                               lr_schedule="cosine", epochs=5)
