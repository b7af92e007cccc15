"""The Elman RNN's defaults: stsa.binary, embedding and hidden 300, Adam 1e-3, clipping 5, 10 epochs."""

from vaecnn.models.rnn import RNNConfig
from vaecnn.recipes.text_classifier import TextClassifierConfig


def get_config() -> TextClassifierConfig:
    return TextClassifierConfig(workdir="runs/rnn_sentiment", model=RNNConfig())
