"""README "Kim (2014) CNN", row 1: CNN-rand, Kim's full recipe, MR 10-fold cross-validation (75.96 +- 1.62)."""

import dataclasses

from configs import kim_cnn


def get_config():
    return dataclasses.replace(kim_cnn.get_config(), workdir="runs/cnn_mr", dataset="mr")
