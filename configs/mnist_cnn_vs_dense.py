"""The small CNN and the dense net on MNIST, each in workdir/<model>, 12 epochs: results rows
`mnist_cnn_vs_dense` (docs/results.md)."""

import dataclasses

from configs import cnn_mnist


def get_config():
    return dataclasses.replace(cnn_mnist.get_config(), model="both")
