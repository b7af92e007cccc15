"""The formulas: feature-map sizes (VALID, SAME and explicit padding, strides, dilation), parameter
counts and multiply-accumulates of dense, convolution and embedding layers, all pure integer arithmetic."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np



# --------------------------------------------------------------------------- #
# Output sizes
# --------------------------------------------------------------------------- #

#: Padding of one spatial axis: a padding name, ``p`` (meaning ``(p, p)``) or
#: an explicit ``(low, high)`` pair of zero-padding widths.
AxisPadding = str | int | tuple[int, int]

#: Padding names whose output size is ``ceil(n / stride)``. 'SAME' and
#: 'SAME_LOWER' are XLA's (``jax.lax``); flax.linen.Conv adds 'CIRCULAR',
#: 'REFLECT' and 'CAUSAL', which pad ``dilation * (k - 1)`` elements in total
#: and therefore produce the same size as 'SAME'.
_CEIL_PADDINGS = ("SAME", "SAME_LOWER", "CIRCULAR", "REFLECT", "CAUSAL")
_PADDING_NAMES = ("VALID",) + _CEIL_PADDINGS


def require_positive_int(name: str, value: Any) -> int:
    """Returns ``value`` as an int, or raises ValueError if it is not >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _explicit_padding_pair(padding: int | Sequence[int]) -> tuple[int, int]:
    """Normalises ``p`` or ``(low, high)`` to a ``(low, high)`` pair of ints."""
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        return int(padding), int(padding)
    if (
        isinstance(padding, Sequence)
        and len(padding) == 2
        and all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in padding)
    ):
        return int(padding[0]), int(padding[1])
    raise ValueError(
        f"padding must be one of {', '.join(repr(p) for p in _PADDING_NAMES)}, an int, "
        f"or a (low, high) pair of ints; got {padding!r}"
    )


def conv_output_size(
    input_size: int,
    kernel_size: int,
    stride: int = 1,
    padding: AxisPadding = "VALID",
    dilation: int = 1,
) -> int:
    """Output length of a convolution (or pooling window) along one axis.

    With the dilated kernel size ``k_eff = dilation * (kernel_size - 1) + 1``:

    * ``'VALID'`` (no padding)::

        out = floor((n - k_eff) / stride) + 1          requires n >= k_eff

    * explicit ``(low, high)`` zero padding (an int ``p`` means ``(p, p)``;
      negative widths crop, as in ``jax.lax``)::

        out = floor((n + low + high - k_eff) / stride) + 1

    * ``'SAME'`` as XLA and flax define it (also ``'SAME_LOWER'`` and flax's
      ``'CIRCULAR'``, ``'REFLECT'``, ``'CAUSAL'``, which pad ``k_eff - 1`` in
      total) -- independent of the kernel::

        out = ceil(n / stride)

    Examples from the notes: a 3x3 kernel on a 10x10 image gives
    ``conv_output_size(10, 3) == 8``; with stride 2,
    ``conv_output_size(10, 3, stride=2) == floor(7 / 2) + 1 == 4``.

    Args:
        input_size: ``n``, the length of the input along this axis.
        kernel_size: the kernel (window) length along this axis.
        stride: the step between consecutive windows.
        padding: a padding name, an int, or a ``(low, high)`` pair.
        dilation: the kernel dilation (spacing between kernel taps), 1 = dense.

    Returns:
        The number of output positions along this axis.

    Raises:
        ValueError: for non-positive sizes, an unknown padding, or a (dilated)
            kernel larger than the padded input, which would leave no output.
    """
    input_size = require_positive_int("input_size", input_size)
    kernel_size = require_positive_int("kernel_size", kernel_size)
    stride = require_positive_int("stride", stride)
    dilation = require_positive_int("dilation", dilation)
    dilated_kernel = dilation * (kernel_size - 1) + 1

    if isinstance(padding, str):
        if padding in _CEIL_PADDINGS:
            return -(-input_size // stride)  # ceil division on ints, no float rounding
        if padding != "VALID":
            raise ValueError(
                f"unknown padding {padding!r}; expected one of "
                f"{', '.join(repr(p) for p in _PADDING_NAMES)} (upper case, as in "
                "jax.lax and flax), an int, or a (low, high) pair of ints"
            )
        low, high = 0, 0
    else:
        low, high = _explicit_padding_pair(padding)

    padded_size = input_size + low + high
    if dilated_kernel > padded_size:
        raise ValueError(
            f"kernel does not fit: the dilated kernel spans {dilated_kernel} elements "
            f"(kernel_size={kernel_size}, dilation={dilation}) but the padded input has "
            f"only {padded_size} (input_size={input_size}, padding=({low}, {high})); "
            "use a smaller kernel, more padding, or padding='SAME'"
        )
    return (padded_size - dilated_kernel) // stride + 1


def pool_output_size(
    input_size: int,
    window_size: int,
    stride: int = 1,
    padding: AxisPadding = "VALID",
) -> int:
    """Output length of a pooling window along one axis.

    Pooling slides a window exactly like an undilated convolution kernel, so this
    is :func:`conv_output_size` with ``dilation=1``:
    ``out = floor((n + low + high - window) / stride) + 1`` ('VALID': no
    padding), ``ceil(n / stride)`` for 'SAME'.

    Note that ``flax.linen.max_pool``/``avg_pool`` default to stride 1 (PyTorch's
    pooling defaults to ``stride = window``); pass the stride explicitly.
    """
    return conv_output_size(input_size, window_size, stride, padding, dilation=1)


def _per_axis(name: str, value: int | Sequence[int], num_axes: int) -> tuple[int, ...]:
    """Broadcasts an int to ``num_axes`` axes, or checks a sequence's length."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * num_axes
    if len(value) != num_axes:
        raise ValueError(
            f"{name} has {len(value)} entries but the input has {num_axes} spatial axes"
        )
    return tuple(value)


def conv_output_shape(
    input_shape: Sequence[int],
    kernel_shape: Sequence[int],
    strides: int | Sequence[int] = 1,
    padding: str | int | Sequence[int | tuple[int, int]] = "VALID",
    dilation: int | Sequence[int] = 1,
) -> tuple[int, ...]:
    """Spatial output shape of a convolution with any number of spatial axes.

    Applies :func:`conv_output_size` per axis ``i``::

        out[i] = conv_output_size(input_shape[i], kernel_shape[i], strides[i],
                                  padding[i], dilation[i])

    ``input_shape`` and ``kernel_shape`` are spatial only (e.g. ``(H, W)`` and
    ``(kh, kw)``, no batch or channel axes). ``strides`` and ``dilation`` are an
    int for every axis or one per axis; ``padding`` is a name for every axis
    ('CAUSAL' only for one axis, as in flax), an int ``p`` for ``(p, p)`` on every
    axis, or one int / ``(low, high)`` pair per axis -- flax.linen.Conv's
    conventions.

    Example: ``conv_output_shape((10, 10), (3, 3), strides=2) == (4, 4)``.
    """
    num_axes = len(input_shape)
    if len(kernel_shape) != num_axes:
        raise ValueError(
            f"kernel_shape {tuple(kernel_shape)} and input_shape {tuple(input_shape)} "
            "must have the same number of spatial axes"
        )
    strides = _per_axis("strides", strides, num_axes)
    dilation = _per_axis("dilation", dilation, num_axes)
    if isinstance(padding, str):
        if padding == "CAUSAL" and num_axes != 1:
            raise ValueError("'CAUSAL' padding is only defined for 1-D convolutions (as in flax)")
        axis_paddings: Sequence[AxisPadding] = (padding,) * num_axes
    elif isinstance(padding, (int, np.integer)):
        axis_paddings = ((int(padding), int(padding)),) * num_axes
    else:
        if len(padding) != num_axes:
            raise ValueError(
                f"padding has {len(padding)} entries but the input has {num_axes} spatial axes"
            )
        axis_paddings = tuple(padding)
    return tuple(
        conv_output_size(n, k, s, p, d)
        for n, k, s, p, d in zip(input_shape, kernel_shape, strides, axis_paddings, dilation)
    )


# --------------------------------------------------------------------------- #
# Parameter and MAC counts
# --------------------------------------------------------------------------- #


def _kernel_tuple(kernel_shape: int | Sequence[int]) -> tuple[int, ...]:
    """``k`` -> ``(k,)``; validates every kernel extent."""
    sizes = (kernel_shape,) if isinstance(kernel_shape, (int, np.integer)) else tuple(kernel_shape)
    if not sizes:
        raise ValueError("kernel_shape must have at least one spatial axis")
    return tuple(require_positive_int("kernel_shape entries", k) for k in sizes)


def dense_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Trainable floats of a dense (fully connected) layer ``y = x W + b``.

    ``W`` has shape ``(in_features, out_features)``, ``b`` has ``out_features``::

        params = in_features * out_features + (out_features if bias else 0)

    The notes' image example flattens 10x10x3 -> 10x10x20:
    ``dense_params(300, 2000, bias=False) == 600_000``.
    """
    in_features = require_positive_int("in_features", in_features)
    out_features = require_positive_int("out_features", out_features)
    return in_features * out_features + (out_features if bias else 0)


def conv_params(
    kernel_shape: int | Sequence[int],
    in_channels: int,
    out_channels: int,
    bias: bool = True,
) -> int:
    """Trainable floats of a convolution with any number of spatial axes.

    The kernel has shape ``(*kernel_shape, in_channels, out_channels)`` and there
    is one bias per output channel::

        1-D (sequence, width k, D features -> C channels):  k * D * C + C
        2-D (image, kh x kw, Cin -> Cout):                  kh * kw * Cin * Cout + Cout

    The count does not depend on the input's spatial size -- the weights are
    shared across positions. Notes' example: ``conv_params((3, 3), 3, 20) == 560``
    (540 without bias).

    Args:
        kernel_shape: an int (1-D) or the tuple of kernel extents.
        in_channels: channels (features) of the input.
        out_channels: number of filters, i.e. output feature maps.
        bias: whether each filter has a bias.
    """
    kernel = _kernel_tuple(kernel_shape)
    in_channels = require_positive_int("in_channels", in_channels)
    out_channels = require_positive_int("out_channels", out_channels)
    return math.prod(kernel) * in_channels * out_channels + (out_channels if bias else 0)


def embedding_params(vocab_size: int, dim: int) -> int:
    """Trainable floats of an embedding table ``(vocab_size, dim)``: ``vocab_size * dim``."""
    return require_positive_int("vocab_size", vocab_size) * require_positive_int("dim", dim)


def dense_macs(in_features: int, out_features: int) -> int:
    """Multiply-accumulates of a dense layer for one input vector: ``in_features * out_features``.

    The bias add is not a MAC; multiply by the number of vectors (batch, time
    steps) for a whole batch.
    """
    return require_positive_int("in_features", in_features) * require_positive_int(
        "out_features", out_features
    )


def conv_macs(
    output_spatial_shape: int | Sequence[int],
    kernel_shape: int | Sequence[int],
    in_channels: int,
    out_channels: int,
) -> int:
    """Multiply-accumulates of a convolution for one example.

    Every output position of every output channel is a dot product of the
    ``prod(kernel_shape) * in_channels`` inputs under the kernel::

        macs = prod(output_spatial_shape) * prod(kernel_shape) * in_channels * out_channels

    Example: 3x3 conv, 3 -> 20 channels, 8x8 output: ``64 * 9 * 3 * 20 == 34_560``.
    """
    output = _kernel_tuple(output_spatial_shape)
    kernel = _kernel_tuple(kernel_shape)
    return (
        math.prod(output)
        * math.prod(kernel)
        * require_positive_int("in_channels", in_channels)
        * require_positive_int("out_channels", out_channels)
    )


def count_params(tree: Any) -> int:
    """Total number of scalars in a pytree of arrays (or of jax.ShapeDtypeStruct)."""
    return int(sum(math.prod(np.shape(leaf)) for leaf in jax.tree.leaves(tree)))
