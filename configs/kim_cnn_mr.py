"""CNN-rand, Kim's full recipe, MR 10-fold cross-validation: results row `kim_cnn_mr` (docs/results.md)."""

import dataclasses

from configs import kim_cnn


def get_config():
    return dataclasses.replace(kim_cnn.get_config(), workdir="runs/cnn_mr", dataset="mr")
