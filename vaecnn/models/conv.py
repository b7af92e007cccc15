"""A convolution whose forward and backward passes are all in XLA:CPU's fast form.

Why this exists: XLA:CPU hands a convolution to its Eigen kernels only when it is *canonical*: input
N x spatial x C, kernel spatial x I x O, output N x spatial x C, and no window reversal. Its
ConvCanonicalization pass transposes any other convolution into that form, but it visits only the
program's entry computation (xla/service/cpu/conv_canonicalization.cc walks
`module->entry_computation()`). A convolution inside a while loop, which is every step of
vaecnn.engine's chunks, is left as it is, and a non-canonical one is emitted as a plain
element-by-element loop. Autodiff's gradient convolutions are not canonical: the input gradient uses
the kernel with I and O swapped and reversed, the kernel gradient contracts over the batch axis. Inside
the engine the Kim CNN's step therefore ran 9x slower than the same step jitted alone.

:func:`conv_general_dilated` computes exactly what ``jax.lax.conv_general_dilated`` computes for
canonical layouts (flax's ``nn.Conv`` passes NWC / WIO and NHWC / HWIO), and its custom VJP writes both
gradients as canonical convolutions of explicitly transposed operands, so that every convolution of a
training step stays on the fast path wherever the step runs. :func:`Conv` and :func:`ConvTranspose` are
flax's layers computed this way; every model here uses them.

With one spatial axis of size S_in, kernel K, stride s, input dilation l and padding (lo, hi), the
output has S_out = floor((dil(S_in, l) + lo + hi - K) / s) + 1 positions (dil(n, d) = 1 + d (n - 1)),
and for an output cotangent g (N x S_out x O):

    dx = conv(g, flip(w) with I and O swapped;  stride l, input dilation s,
              padding (K - 1 - lo,  dil(S_in, l) + K - 1 - dil(S_out, s) - (K - 1 - lo)))
    dw = conv(x as (I, S_in, N), g as (S_out, N, O);  stride 1, input dilation l, kernel dilation s,
              padding (lo,  dil(S_out, s) - dil(S_in, l) + K - 1 - lo))      -> (I, K, O) -> (K, I, O)

(the same for each spatial axis). When g is larger than x (a transposed convolution), dw is computed
with the roles of x and g exchanged, because XLA's algebraic simplifier swaps the operands of any
convolution whose kernel is larger than its input, and a swapped convolution carries a window reversal.
tests/models/test_conv.py checks values and gradients against jax.lax for strides, paddings and
dilations in 1 and 2 dimensions, and that the engine's compiled chunk programs contain only canonical
convolutions.
"""

from collections.abc import Sequence
from functools import partial
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

Padding = tuple[tuple[int, int], ...]


def _dilated(size: int, dilation: int) -> int:
    return 0 if size == 0 else 1 + dilation * (size - 1)


def canonical_dimension_numbers(ndim: int) -> lax.ConvDimensionNumbers:
    """N, spatial..., C for input and output; spatial..., I, O for the kernel (XLA:CPU's Eigen form)."""
    spatial = tuple(range(1, ndim - 1))
    return lax.ConvDimensionNumbers(lhs_spec=(0, ndim - 1, *spatial), rhs_spec=(ndim - 1, ndim - 2, *range(ndim - 2)),
                                    out_spec=(0, ndim - 1, *spatial))


def _conv(x, w, strides, padding, lhs_dilation, rhs_dilation=None, precision=None):
    return lax.conv_general_dilated(x, w, strides, padding, lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
                                    dimension_numbers=canonical_dimension_numbers(x.ndim), precision=precision)


@partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def _canonical_conv(x, w, strides: tuple[int, ...], padding: Padding, lhs_dilation: tuple[int, ...], precision):
    return _conv(x, w, strides, padding, lhs_dilation, precision=precision)


def _canonical_conv_fwd(x, w, strides, padding, lhs_dilation, precision):
    return _conv(x, w, strides, padding, lhs_dilation, precision=precision), (x, w)


class _Axis(NamedTuple):
    """One spatial axis of a convolution: dilated input and output lengths, kernel size, low padding."""
    input: int     # dil(S_in, l)
    output: int    # dil(S_out, s)
    kernel: int
    low: int


def _axes(x_shape, kernel_sizes, g_shape, strides, padding, lhs_dilation) -> list[_Axis]:
    return [_Axis(_dilated(size_in, dilation), _dilated(size_out, stride), k, lo)
            for size_in, k, size_out, stride, (lo, _), dilation
            in zip(x_shape[1:-1], kernel_sizes, g_shape[1:-1], strides, padding, lhs_dilation)]


def _input_gradient(g, w, axes, strides, lhs_dilation, precision):
    """dx[i] = sum over o of g[o] w[l i + lo - s o]: g (dilated by s) convolved with the kernel reversed,
    I and O swapped.

    Where the kernel is larger than the output map (a 3x3 kernel giving 2x2), XLA's operand swap (see
    _kernel_gradient) still rewrites this one into a non-canonical convolution: correct, but on the slow
    path inside a loop. No model here meets that on MNIST or the text sets (only an 8x8-pixel conv VAE).
    """
    pads = tuple((a.kernel - 1 - a.low, a.input - a.output + a.low) for a in axes)
    w_reversed_KxOxI = jnp.swapaxes(lax.rev(w, tuple(range(w.ndim - 2))), -1, -2)
    return _conv(g, w_reversed_KxOxI, lhs_dilation, pads, strides, precision=precision)


def _kernel_gradient(x, g, axes, strides, lhs_dilation, precision):
    """dw[j] = sum over examples and positions o of xpad[s o + j] g[o] (xpad: x dilated and padded).

    A convolution over the batch axis, with the smaller of x and g (by spatial size) as its kernel: XLA's
    algebraic simplifier swaps the operands of a convolution whose kernel is larger than its input, and
    the swapped one is not canonical (a transposed convolution's g is larger than its x).
    """
    ndim = x.ndim
    spatial = tuple(range(1, ndim - 1))
    ones = (1,) * len(spatial)
    if np.prod(g.shape[1:-1]) <= np.prod(x.shape[1:-1]):  # x as the input (I as its batch), g as the kernel
        pads = tuple((a.low, a.output - a.input + a.kernel - 1 - a.low) for a in axes)
        dw_IxKxO = _conv(x.transpose(ndim - 1, *spatial, 0), g.transpose(*spatial, 0, ndim - 1), ones, pads,
                         lhs_dilation, rhs_dilation=strides, precision=precision)
        return dw_IxKxO.transpose(*spatial, 0, ndim - 1)
    # g as the input (O as its batch), x as the kernel: sum_i x[i] gd[l i + lo - j] with gd = g dilated by s,
    # which yields the kernel positions j in reverse.
    pads = tuple((a.kernel - 1 - a.low, a.input - a.output + a.low) for a in axes)
    dw_reversed_OxKxI = _conv(g.transpose(ndim - 1, *spatial, 0), x.transpose(*spatial, 0, ndim - 1), ones, pads,
                              strides, rhs_dilation=lhs_dilation, precision=precision)
    return lax.rev(dw_reversed_OxKxI.transpose(*spatial, ndim - 1, 0), tuple(range(len(spatial))))


def _canonical_conv_bwd(strides, padding, lhs_dilation, precision, residuals, g):
    x, w = residuals
    axes = _axes(x.shape, w.shape[:-2], g.shape, strides, padding, lhs_dilation)
    return (_input_gradient(g, w, axes, strides, lhs_dilation, precision),
            _kernel_gradient(x, g, axes, strides, lhs_dilation, precision))


_canonical_conv.defvjp(_canonical_conv_fwd, _canonical_conv_bwd)


def conv_general_dilated(lhs: jax.Array, rhs: jax.Array, window_strides: Sequence[int],
                         padding: str | Sequence[tuple[int, int]], lhs_dilation: Sequence[int] | None = None,
                         rhs_dilation: Sequence[int] | None = None, dimension_numbers=None,
                         feature_group_count: int = 1, precision=None) -> jax.Array:
    """``jax.lax.conv_general_dilated`` for canonical layouts, with canonical gradient convolutions.

    lhs: N x spatial... x I; rhs: spatial... x I x O (flax's layouts); returns N x spatial... x O. Takes
    the arguments flax's ``nn.Conv`` passes. Kernel dilation and feature groups are not needed by any
    model here and raise ValueError, as do other layouts.
    """
    ndim = lhs.ndim
    num_spatial = ndim - 2
    if dimension_numbers is not None:
        given = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
        if given != canonical_dimension_numbers(ndim):
            raise ValueError(f"conv_general_dilated takes N..C inputs and ..IO kernels only, got {dimension_numbers}")
    if feature_group_count != 1 or any(d != 1 for d in (rhs_dilation or ())):
        raise ValueError("conv_general_dilated: kernel dilation and feature groups are not supported")
    strides = tuple(int(s) for s in window_strides)
    lhs_dilation = tuple(int(d) for d in lhs_dilation) if lhs_dilation else (1,) * num_spatial
    if isinstance(padding, str):
        dilated_in = tuple(_dilated(n, d) for n, d in zip(lhs.shape[1:-1], lhs_dilation))
        padding = lax.padtype_to_pads(dilated_in, rhs.shape[:-2], strides, padding)
    padding = tuple((int(lo), int(hi)) for lo, hi in padding)
    return _canonical_conv(lhs, rhs, strides, padding, lhs_dilation, precision)


def Conv(features: int, kernel_size: Sequence[int], **kwargs) -> nn.Conv:
    """``nn.Conv`` (same parameters, names and initialisation) computed by :func:`conv_general_dilated`."""
    return nn.Conv(features, tuple(kernel_size), conv_general_dilated=conv_general_dilated, **kwargs)


def transposed_conv_padding(kernel_size: int, stride: int) -> tuple[int, int]:
    """The padding of the input-dilated convolution that ``lax.conv_transpose(..., padding="SAME")``
    (transpose_kernel=False) computes: output = input x stride along each axis."""
    total = kernel_size + stride - 2
    before = kernel_size - 1 if stride > kernel_size - 1 else -(-total // 2)
    return before, total - before


def ConvTranspose(features: int, kernel_size: Sequence[int], strides: Sequence[int], **kwargs) -> nn.Conv:
    """``nn.ConvTranspose(features, kernel_size, strides, padding="SAME")`` as what it computes: a
    convolution of the input dilated by `strides` (same kernel shape and initialisation; pass the
    ConvTranspose's name to keep a parameter tree's names)."""
    padding = [transposed_conv_padding(k, s) for k, s in zip(kernel_size, strides)]
    return Conv(features, kernel_size, input_dilation=tuple(strides), padding=padding, **kwargs)
