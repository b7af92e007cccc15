"""Image classifiers of TD-2, Exercise 1: a dense network and a small convolutional network.

Both map ``image_BxHxWx1`` (uint8 in 0..255, or floats already in [0, 1]) to ``logits_BxC``; the
softmax is applied inside the loss (vaecnn.classification). They are the two sides of the
exercise's question "what problem do we have if the input is large?":

* :class:`DenseNet` flattens the image: its first layer has ``H*W*1*h + h`` weights (784 * 512 +
  512 = 401,920 on MNIST), a number that grows with the image area, and it has to learn the same
  stroke detector separately at every position.
* :class:`SmallCNN` convolves: a 3x3 layer from C_in to C_out channels has ``9*C_in*C_out + C_out``
  weights whatever the image size, shared across positions; pooling halves the maps so the final
  dense layer sees ``(H/4)*(W/4)*64`` features instead of ``H*W``.

Shape suffixes: B batch, H x W image, F flattened features, C classes; literal numbers are
channels or units.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vaecnn.models.conv import Conv


def to_unit_interval(image_BxHxWx1: jax.Array) -> jax.Array:
    """float32 pixels in [0, 1]: integer images are divided by 255, float images taken as they are.

    Scaling inside the model lets the batchers keep MNIST on the device as uint8 (4x less memory).
    """
    if jnp.issubdtype(image_BxHxWx1.dtype, jnp.integer):
        return image_BxHxWx1.astype(jnp.float32) / 255.0
    return image_BxHxWx1.astype(jnp.float32)


def max_pool_2x2(x_BxHxWxF: jax.Array) -> jax.Array:
    """Max over non-overlapping 2x2 windows: ``out[b, i, j, f] = max_{p,q in {0,1}} x[b, 2i+p, 2j+q, f]``,
    shape ``B x floor(H/2) x floor(W/2) x F`` (an odd last row or column is dropped).

    Equal to ``nn.max_pool(x, (2, 2), strides=(2, 2))``, written as a reshape and a max because the
    gradient of nn.max_pool (XLA's select-and-scatter) is slow on CPU: with it a SmallCNN training
    step took 2-3x as long on this project's 2-core machine; a max over axes differentiates into
    elementwise compares.
    """
    batch, height, width, features = x_BxHxWxF.shape
    x_BxHxWxF = x_BxHxWxF[:, :height // 2 * 2, :width // 2 * 2]
    return x_BxHxWxF.reshape(batch, height // 2, 2, width // 2, 2, features).max(axis=(2, 4))


class DenseNet(nn.Module):
    """flatten -> [Dense(h) -> ReLU -> Dropout] for h in hidden_sizes -> Dense(num_classes).

    Parameters: ``sum_i (f_i * f_(i+1) + f_(i+1))`` with ``f = (H*W, *hidden_sizes, num_classes)``;
    669,706 for MNIST with hidden_sizes (512, 512).
    """
    num_classes: int = 10
    hidden_sizes: Sequence[int] = (512, 512)
    dropout_rate: float = 0.0

    @nn.compact
    def __call__(self, image_BxHxWx1: jax.Array, deterministic: bool = True) -> jax.Array:
        x_BxF = to_unit_interval(image_BxHxWx1).reshape(image_BxHxWx1.shape[0], -1)
        for size in self.hidden_sizes:
            x_BxF = nn.relu(nn.Dense(size)(x_BxF))
            x_BxF = nn.Dropout(self.dropout_rate, deterministic=deterministic)(x_BxF)
        return nn.Dense(self.num_classes, name="logits")(x_BxF)


class SmallCNN(nn.Module):
    """[Conv 3x3 SAME (f) -> ReLU -> max-pool 2x2 stride 2] for f in features -> flatten -> Dropout
    -> Dense(hidden_size) -> ReLU -> Dropout -> Dense(num_classes).

    SAME convolutions keep H x W; each pool floors it to H/2 x W/2, so with features (32, 64) a
    28x28x1 image becomes 28x28x32 -> 14x14x32 -> 14x14x64 -> 7x7x64 = 3,136 features. Parameters:
    ``sum_i (9 * f_(i-1) * f_i + f_i)`` (f_0 = 1) for the convolutions, then
    ``(H/4)(W/4) f_last * hidden + hidden`` and ``hidden * C + C``: 421,642 on MNIST with the
    defaults, of which 401,536 sit in the dense layer after the convolutions.
    """
    num_classes: int = 10
    features: Sequence[int] = (32, 64)
    hidden_size: int = 128
    dropout_rate: float = 0.25

    @nn.compact
    def __call__(self, image_BxHxWx1: jax.Array, deterministic: bool = True) -> jax.Array:
        x = to_unit_interval(image_BxHxWx1)
        for size in self.features:
            x = nn.relu(Conv(size, (3, 3), padding="SAME")(x))
            x = max_pool_2x2(x)
        x_BxF = x.reshape(x.shape[0], -1)
        x_BxF = nn.Dropout(self.dropout_rate, deterministic=deterministic)(x_BxF)
        x_BxF = nn.relu(nn.Dense(self.hidden_size, name="hidden")(x_BxF))
        x_BxF = nn.Dropout(self.dropout_rate, deterministic=deterministic)(x_BxF)
        return nn.Dense(self.num_classes, name="logits")(x_BxF)
