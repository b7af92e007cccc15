"""cnn_mnist's defaults: the small CNN on MNIST, 12 epochs, Adam 1e-3 cosine, batch 128."""

from vaecnn.recipes.image_classifier import ImageClassifierConfig


def get_config() -> ImageClassifierConfig:
    return ImageClassifierConfig()
