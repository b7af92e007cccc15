"""CNN-rand, narrow convolution, Adam 1e-3, 6 epochs, MR: results row `kim_cnn_mr_narrow_adam` (docs/results.md)."""

from vaecnn import config as vconfig

from configs import kim_cnn_mr


def get_config():
    return vconfig.override(kim_cnn_mr.get_config(), dict(workdir="runs/cnn_mr_narrow", wide=False,
                                                          optimizer="adam", learning_rate=1e-3, epochs=6))
