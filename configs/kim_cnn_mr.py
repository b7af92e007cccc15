"""CNN-rand, Kim's full recipe, MR 10-fold cross-validation: results row `kim_cnn_mr` (docs/results.md)."""

from vaecnn import config as vconfig

from configs import kim_cnn


def get_config():
    return vconfig.override(kim_cnn.get_config(), dict(workdir="runs/cnn_mr", dataset="mr"))
