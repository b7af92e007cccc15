"""Kim's (2014) CNN-rand recipe, cnn_sentiment's defaults: widths 3, 4, 5 x 100 channels, wide convolution,
300-d embeddings, dropout 0.5, max-norm 3, batch 50, Adadelta (rho 0.95) for 25 epochs, no clipping."""

from vaecnn import config as vconfig
from vaecnn.models.text_cnn import CNNConfig
from vaecnn.recipes.text_classifier import TextClassifierConfig


def get_config() -> TextClassifierConfig:
    return vconfig.override(TextClassifierConfig(workdir="runs/cnn_sentiment", model=CNNConfig()),
                            dict(optimizer="adadelta", learning_rate=1.0, clip_norm=0.0, epochs=25))
