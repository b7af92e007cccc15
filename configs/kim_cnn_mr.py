"""README "Kim (2014) CNN", row 1: CNN-rand, Kim's full recipe, MR 10-fold cross-validation (75.96 +- 1.62)."""

from vaecnn import config as vconfig

from configs import kim_cnn


def get_config():
    return vconfig.override(kim_cnn.get_config(), dict(workdir="runs/cnn_mr", dataset="mr"))
