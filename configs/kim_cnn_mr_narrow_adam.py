"""CNN-rand, narrow convolution, Adam 1e-3, 6 epochs, MR: results row `kim_cnn_mr_narrow_adam` (docs/results.md)."""

import dataclasses

from configs import kim_cnn_mr
from vaecnn.models.text_cnn import CNNConfig


def get_config():
    return dataclasses.replace(kim_cnn_mr.get_config(), workdir="runs/cnn_mr_narrow", model=CNNConfig(wide=False),
                               optimizer="adam", learning_rate=1e-3, epochs=6)
