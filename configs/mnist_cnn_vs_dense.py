"""The small CNN and the dense net on MNIST, each in workdir/<model>, 12 epochs: results rows
`mnist_cnn_vs_dense` (docs/results.md)."""

from vaecnn import config as vconfig

from configs import cnn_mnist


def get_config():
    return vconfig.override(cnn_mnist.get_config(), dict(model="both"))
