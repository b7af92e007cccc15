"""CNN-rand, narrow convolution, Adam 1e-3, 4 epochs, trained on the phrases of sst2/train.tsv, tested on
stsa.binary.test: results row `kim_cnn_sst2` (docs/results.md)."""

from vaecnn import config as vconfig

from configs import kim_cnn


def get_config():
    return vconfig.override(kim_cnn.get_config(), dict(workdir="runs/cnn_sst2", dataset="sst2.phrases",
                                                       wide=False, optimizer="adam", learning_rate=1e-3, epochs=4))
