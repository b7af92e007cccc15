"""The 2-D CNN exercise (TD-2, Exercise 1): the notes' answers, and the dense-versus-convolution rows
that show what goes wrong with dense layers on large images."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp

from vaecnn.arith.formulas import (require_positive_int, conv_output_shape, conv_params, count_params,
                                   dense_params)


# --------------------------------------------------------------------------- #
# Dense vs convolution: what goes wrong with large inputs
# --------------------------------------------------------------------------- #

@dataclasses.dataclass(frozen=True)
class DenseVsConvRow:
    """One input size of :func:`dense_vs_conv_table`.

    Attributes:
        input_size: ``n``, the image side; the input is ``n x n x C_in``.
        input_shape: ``(n, n, C_in)``.
        kernel_size: the conv kernel side ``k`` (a ``k x k`` conv).
        dense_params: bias-free dense layer ``n*n*C_in -> n*n*C_out`` (flattened):
            ``(n^2 C_in) (n^2 C_out)`` -- grows as n^4.
        dense_weight_bytes: ``dense_params * bytes_per_float``.
        conv_params: ``k*k*C_in*C_out + C_out`` -- independent of n.
        feature_map_shape: the conv's output without padding, ``(n-k+1, n-k+1, C_out)``.
        activation_bytes: input plus conv output feature maps, ``bytes_per_float``
            each -- grows as n^2.
        source: ``'flax shapes'`` when the counts and the feature-map shape were
            read from flax's own initialisation of the two layers, traced by
            jax.eval_shape (nothing allocated, so even the 264 TB layer is read
            this way), ``'formulas'`` when they come from this module's formulas.
    """

    input_size: int
    input_shape: tuple[int, int, int]
    kernel_size: int
    dense_params: int
    dense_weight_bytes: int
    conv_params: int
    feature_map_shape: tuple[int, int, int]
    activation_bytes: int
    source: Literal["flax shapes", "formulas"]


def _flax_dense_and_conv(
    input_shape: tuple[int, int, int], out_channels: int, kernel: int
) -> tuple[int, int, tuple[int, ...]]:
    """(dense parameter count, conv parameter count, feature-map shape) of one table
    row, read from flax's initialisation of the two layers on one image, traced by
    jax.eval_shape: shapes only, so a dense matrix of any size costs nothing."""
    height, width, in_channels = input_shape
    dense = nn.Dense(height * width * out_channels, use_bias=False)
    conv = nn.Conv(out_channels, (kernel, kernel), padding="VALID")

    def init_both(rng, flat_images, images):
        return dense.init(rng, flat_images), conv.init_with_output(rng, images)

    dense_variables, (feature_maps, conv_variables) = jax.eval_shape(
        init_both,
        jax.random.key(0),
        jax.ShapeDtypeStruct((1, height * width * in_channels), jnp.float32),
        jax.ShapeDtypeStruct((1, *input_shape), jnp.float32),
    )
    return (
        count_params(dense_variables["params"]),
        count_params(conv_variables["params"]),
        tuple(feature_maps.shape[1:]),
    )


def dense_vs_conv_table(
    sizes: Sequence[int] = (28, 64, 224, 1024),
    in_channels: int = 3,
    out_channels: int = 20,
    kernel: int = 3,
    bytes_per_float: int = 4,
    from_flax: bool = True,
) -> list[DenseVsConvRow]:
    """Parameters and memory of a dense layer vs a convolution as images grow.

    For every square input ``n x n x C_in`` (the notes use 10x10x3 -> 20 maps):

    * bias-free dense ``n^2 C_in -> n^2 C_out``: ``n^4 C_in C_out`` floats;
    * ``k x k`` conv with bias: ``k^2 C_in C_out + C_out`` floats (560 for the
      notes' 3x3, 3 -> 20), whatever n;
    * feature maps without padding: ``(n-k+1) x (n-k+1) x C_out``;
    * activations (input + feature maps): ``(n^2 C_in + (n-k+1)^2 C_out)`` floats.

    With ``from_flax`` (default) the counts and the feature-map shape are read
    from ``nn.Dense(n*n*C_out, use_bias=False)`` and ``nn.Conv`` initialised under
    :func:`jax.eval_shape` (shapes only: at n = 1024 the dense matrix would hold
    6.6e13 floats, 264 TB, which no machine can allocate); without it, from
    :func:`dense_params`, :func:`conv_params` and :func:`conv_output_shape`
    (the tests check the two agree). Bytes are ``count * bytes_per_float``.

    This answers the notes' "what problem do we have if the input size is
    high?": dense parameters grow as n^4, the conv's stay constant, and the
    activation memory grows only as n^2.
    """
    in_channels = require_positive_int("in_channels", in_channels)
    out_channels = require_positive_int("out_channels", out_channels)
    kernel = require_positive_int("kernel", kernel)
    rows = []
    for n in sizes:
        n = require_positive_int("sizes entries", n)
        input_shape = (n, n, in_channels)
        # The formulas first: they also reject inputs smaller than the kernel,
        # for which XLA would silently return empty feature maps.
        dense_count = dense_params(n * n * in_channels, n * n * out_channels, bias=False)
        conv_count = conv_params((kernel, kernel), in_channels, out_channels)
        feature_map_shape = conv_output_shape((n, n), (kernel, kernel)) + (out_channels,)
        source = "flax shapes" if from_flax else "formulas"
        if from_flax:
            dense_count, conv_count, feature_map_shape = _flax_dense_and_conv(
                input_shape, out_channels, kernel
            )
        rows.append(
            DenseVsConvRow(
                input_size=n,
                input_shape=input_shape,
                kernel_size=kernel,
                dense_params=dense_count,
                dense_weight_bytes=dense_count * bytes_per_float,
                conv_params=conv_count,
                feature_map_shape=feature_map_shape,
                activation_bytes=(math.prod(input_shape) + math.prod(feature_map_shape))
                * bytes_per_float,
                source=source,
            )
        )
    return rows


# --------------------------------------------------------------------------- #
# The notes' exercise
# --------------------------------------------------------------------------- #


def notes_exercise_answers() -> dict[str, Any]:
    """The four answers of the notes' CNN exercise (input 10x10x3, 20 outputs, 3x3 kernels).

    Keys:
        ``dense_params_no_bias``: flattened 300 -> 2000 without bias, 300 * 2000 = 600,000.
        ``dense_params_no_bias_224``: the same layer for a 224x224x3 image,
            (224^2 * 3) * (224^2 * 20) -- the "large input" problem (n^4 growth).
        ``conv_params``: 3*3*3*20 + 20 = 560.
        ``conv_params_no_bias``: 3*3*3*20 = 540.
        ``feature_maps_no_padding``: (10 - 3 + 1) = 8 -> (8, 8, 20).
        ``feature_maps_stride_2``: floor((10 - 3) / 2) + 1 = 4 -> (4, 4, 20).
    """
    side, in_channels, out_channels, kernel = 10, 3, 20, (3, 3)
    large_side = 224
    return {
        "dense_params_no_bias": dense_params(
            side * side * in_channels, side * side * out_channels, bias=False
        ),
        "dense_params_no_bias_224": dense_params(
            large_side**2 * in_channels, large_side**2 * out_channels, bias=False
        ),
        "conv_params": conv_params(kernel, in_channels, out_channels),
        "conv_params_no_bias": conv_params(kernel, in_channels, out_channels, bias=False),
        "feature_maps_no_padding": conv_output_shape((side, side), kernel) + (out_channels,),
        "feature_maps_stride_2": (
            conv_output_shape((side, side), kernel, strides=2) + (out_channels,)
        ),
    }
