"""CNN-rand, narrow convolution, Adam 1e-3, 4 epochs, trained on the phrases of sst2/train.tsv, tested on
stsa.binary.test: results row `kim_cnn_sst2` (docs/results.md)."""

import dataclasses

from configs import kim_cnn
from vaecnn.models.text_cnn import CNNConfig


def get_config():
    return dataclasses.replace(kim_cnn.get_config(), workdir="runs/cnn_sst2", dataset="sst2.phrases",
                               model=CNNConfig(wide=False), optimizer="adam", learning_rate=1e-3, epochs=4)
