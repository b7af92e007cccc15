"""Elman RNN on MR, stratified 10-fold cross-validation, 128/128, Adam 2e-3 cosine, 5 epochs: results row
`rnn_mr` (docs/results.md)."""

from vaecnn import config as vconfig

from configs import rnn_sentiment


def get_config():
    return vconfig.override(rnn_sentiment.get_config(), dict(workdir="runs/rnn_mr", dataset="mr", cv_folds=10,
                                                             embed_dim=128, hidden_size=128, learning_rate=2e-3,
                                                             lr_schedule="cosine", epochs=5))
