"""README "2-D CNN exercise": the small CNN and the dense net on MNIST, each in workdir/<model>, 12 epochs
(0.9939 and 0.9847)."""

from vaecnn import config as vconfig

from configs import cnn_mnist


def get_config():
    return vconfig.override(cnn_mnist.get_config(), dict(model="both"))
