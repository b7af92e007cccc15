"""Architecture arithmetic: output sizes, parameter counts and MACs of layers.

This module answers the course notes' CNN exercise (TD-2, Exercise 1) and the
"Tensor size calculation" of the sequence-CNN note with small, pure functions
(tests/test_arith.py checks them against real flax.linen layers and jax.lax):

* :func:`conv_output_size` / :func:`conv_output_shape` / :func:`pool_output_size`
  -- feature-map sizes for VALID, SAME and explicit padding, strides, dilation;
* :func:`dense_params`, :func:`conv_params`, :func:`embedding_params` -- the
  number of trainable floats of a layer;
* :func:`dense_macs`, :func:`conv_macs` -- multiply-accumulates of one forward pass;
* :func:`summarize` / :func:`format_summary` -- a per-layer table (output shape,
  parameters, MACs) for any ``flax.linen`` model, computed with
  :func:`jax.eval_shape` so that nothing is allocated;
* :func:`dense_vs_conv_table` -- why a dense layer on images does not scale: its
  weights grow as n^4 with the image side n, a convolution's stay constant;
* :func:`notes_exercise_answers` -- the notes' four answers.

Shapes follow flax's channels-last convention: images are ``(N, H, W, C)``,
sequences ``(N, T, D)``, conv kernels ``(*kernel_size, C_in, C_out)``.
Nothing here reads flags or touches the file system.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "AxisPadding",
    "conv_output_size",
    "conv_output_shape",
    "pool_output_size",
    "dense_params",
    "conv_params",
    "embedding_params",
    "dense_macs",
    "conv_macs",
    "LayerSummary",
    "ModelSummary",
    "summarize",
    "format_summary",
    "DEFAULT_MEASURE_LIMIT_PARAMS",
    "DenseVsConvRow",
    "dense_vs_conv_table",
    "format_bytes",
    "format_dense_vs_conv_table",
    "notes_exercise_answers",
    "format_notes_exercise_answers",
]

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


def _require_positive_int(name: str, value: Any) -> int:
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
    input_size = _require_positive_int("input_size", input_size)
    kernel_size = _require_positive_int("kernel_size", kernel_size)
    stride = _require_positive_int("stride", stride)
    dilation = _require_positive_int("dilation", dilation)
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
    return tuple(_require_positive_int("kernel_shape entries", k) for k in sizes)


def dense_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Trainable floats of a dense (fully connected) layer ``y = x W + b``.

    ``W`` has shape ``(in_features, out_features)``, ``b`` has ``out_features``::

        params = in_features * out_features + (out_features if bias else 0)

    The notes' image example flattens 10x10x3 -> 10x10x20:
    ``dense_params(300, 2000, bias=False) == 600_000``.
    """
    in_features = _require_positive_int("in_features", in_features)
    out_features = _require_positive_int("out_features", out_features)
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
    in_channels = _require_positive_int("in_channels", in_channels)
    out_channels = _require_positive_int("out_channels", out_channels)
    return math.prod(kernel) * in_channels * out_channels + (out_channels if bias else 0)


def embedding_params(vocab_size: int, dim: int) -> int:
    """Trainable floats of an embedding table ``(vocab_size, dim)``: ``vocab_size * dim``."""
    return _require_positive_int("vocab_size", vocab_size) * _require_positive_int("dim", dim)


def dense_macs(in_features: int, out_features: int) -> int:
    """Multiply-accumulates of a dense layer for one input vector: ``in_features * out_features``.

    The bias add is not a MAC; multiply by the number of vectors (batch, time
    steps) for a whole batch.
    """
    return _require_positive_int("in_features", in_features) * _require_positive_int(
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
        * _require_positive_int("in_channels", in_channels)
        * _require_positive_int("out_channels", out_channels)
    )


# --------------------------------------------------------------------------- #
# Summary of any flax.linen model
# --------------------------------------------------------------------------- #


@dataclasses.dataclass(frozen=True)
class LayerSummary:
    """One method call of one (sub)module recorded by :func:`summarize`.

    Attributes:
        path: the submodule path in the parameter tree, ``()`` for the root.
        method: the method that was called (usually ``'__call__'``).
        module_type: the module's class name, e.g. ``'Conv'``.
        output_shapes: the shape of every array in the method's output (one
            entry for a plain array; several for tuples/dicts).
        params: trainable floats owned by this module and not by a recorded
            submodule (so the rows add up to the model total). A module called
            several times (weight sharing) is counted on its first row only.
        macs: multiply-accumulates of this call for the whole input batch, for
            ``nn.Dense`` and ``nn.Conv`` (``prod(output.shape[:-1]) * kernel.size``);
            ``None`` for other modules (containers' work is in their children's rows).
    """

    path: tuple[str, ...]
    method: str
    module_type: str
    output_shapes: tuple[tuple[int, ...], ...]
    params: int
    macs: int | None

    @property
    def name(self) -> str:
        """``'Block_0/Dense_1'``-style path; the root is shown by its class name."""
        name = "/".join(self.path) if self.path else self.module_type
        return name if self.method == "__call__" else f"{name}.{self.method}"


@dataclasses.dataclass(frozen=True)
class ModelSummary:
    """The rows of :func:`summarize` plus totals over the whole model.

    ``total_params`` is the size of the initialised ``params`` collection (and
    equals ``sum(row.params for row in rows)``); ``total_macs`` sums the rows'
    known MACs.
    """

    rows: tuple[LayerSummary, ...]
    total_params: int
    total_macs: int


def _is_array_like(leaf: Any) -> bool:
    return isinstance(leaf, (jax.Array, np.ndarray, jax.ShapeDtypeStruct))


def _array_shapes(tree: Any) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(leaf.shape) for leaf in jax.tree.leaves(tree) if hasattr(leaf, "shape"))


def _layer_macs(module: nn.Module, output: Any) -> int | None:
    """MACs of a Dense/Conv call: ``prod(output.shape[:-1]) * kernel.size``.

    The kernel is ``(in, out)`` for Dense and ``(*k, in / groups, out)`` for
    Conv, so each of the ``prod(output.shape[:-1])`` output vectors costs
    ``kernel.size`` multiply-accumulates (grouped convolutions included).
    """
    # nn.ConvLocal and nn.ConvTranspose are not nn.Conv subclasses: their kernels
    # do not follow this formula, so they are (correctly) left without MACs.
    if not isinstance(module, (nn.Dense, nn.Conv)) or not hasattr(output, "shape"):
        return None
    kernel = nn.unbox(module.get_variable("params", "kernel"))
    return math.prod(output.shape[:-1]) * math.prod(kernel.shape)


def summarize(
    module: nn.Module,
    *init_args: Any,
    rngs: jax.Array | Mapping[str, jax.Array] | None = None,
    **init_kwargs: Any,
) -> ModelSummary:
    """Per-layer output shapes, parameter counts and MACs of a flax.linen model.

    Runs ``module.init(rngs, *init_args, **init_kwargs)`` under
    :func:`jax.eval_shape` -- only shapes are computed, nothing is allocated, so
    models with billions of parameters can be summarised -- while a method
    interceptor (:func:`flax.linen.intercept_methods`) records every submodule
    method call (except ``setup``) with its output shapes, in call order (parents
    before children). Each leaf of the initialised ``params`` collection is then
    attributed to the deepest recorded module whose path is a prefix of the
    leaf's path, so the rows add up exactly to the model total. Other collections
    (``batch_stats``, ...) are not trainable and not counted.

    Args:
        module: any flax.linen module.
        *init_args: the inputs to ``init``: arrays, or :class:`jax.ShapeDtypeStruct`
            to avoid even allocating the input. Non-array arguments (flags such as
            ``train=False``) are passed unchanged as Python values.
        rngs: the ``init`` RNGs; default ``jax.random.key(0)`` (the ``params``
            stream). Pass a dict for models that draw other streams at init
            (e.g. ``{'params': k1, 'dropout': k2}``).
        **init_kwargs: keyword inputs to ``init`` (same rules as ``init_args``).

    Returns:
        A :class:`ModelSummary`; see :func:`format_summary` to print it.
        Inside lifted transforms (``nn.scan``, ``nn.vmap``) a row describes one
        traced call, i.e. one step / one slice.
    """
    rngs = jax.random.key(0) if rngs is None else rngs
    leaves, treedef = jax.tree.flatten((init_args, init_kwargs))
    is_dynamic = [_is_array_like(leaf) for leaf in leaves]
    dynamic_leaves = [leaf for leaf, dynamic in zip(leaves, is_dynamic) if dynamic]

    records: list[dict[str, Any]] = []

    def record_call(next_fun: Callable[..., Any], args, kwargs, context) -> Any:
        if context.method_name == "setup":
            return next_fun(*args, **kwargs)
        # Reserve the row before calling so that parents precede their children.
        record = {
            "path": tuple(context.module.path),
            "method": context.method_name,
            "module_type": type(context.module).__name__,
        }
        records.append(record)
        output = next_fun(*args, **kwargs)
        record["output_shapes"] = _array_shapes(output)
        record["macs"] = _layer_macs(context.module, output)
        return output

    def init_shapes(rngs, dynamic_leaves):
        # Static (non-array) arguments are closed over so that Python flags stay
        # Python values instead of becoming tracers.
        dynamic_iter = iter(dynamic_leaves)
        merged = [
            next(dynamic_iter) if dynamic else leaf for leaf, dynamic in zip(leaves, is_dynamic)
        ]
        args, kwargs = jax.tree.unflatten(treedef, merged)
        with nn.intercept_methods(record_call):
            return module.init(rngs, *args, **kwargs)

    variables = jax.eval_shape(init_shapes, rngs, dynamic_leaves)
    params = nn.unbox(variables.get("params", {}))

    first_row_of_path: dict[tuple[str, ...], int] = {}
    for index, record in enumerate(records):
        first_row_of_path.setdefault(record["path"], index)
    params_per_row = [0] * len(records)
    for key_path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        names = []
        for key in key_path:
            if not isinstance(key, jax.tree_util.DictKey):
                break
            names.append(str(key.key))
        # Deepest recorded ancestor; the root row (index 0) catches the rest.
        owner = next(
            (
                first_row_of_path[tuple(names[:depth])]
                for depth in range(len(names), -1, -1)
                if tuple(names[:depth]) in first_row_of_path
            ),
            0,
        )
        params_per_row[owner] += math.prod(leaf.shape)

    rows = tuple(
        LayerSummary(
            path=record["path"],
            method=record["method"],
            module_type=record["module_type"],
            output_shapes=record["output_shapes"],
            params=params_per_row[index],
            macs=record["macs"],
        )
        for index, record in enumerate(records)
    )
    return ModelSummary(
        rows=rows,
        total_params=sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(params)),
        total_macs=sum(row.macs for row in rows if row.macs is not None),
    )


def _format_shapes(shapes: tuple[tuple[int, ...], ...]) -> str:
    return ", ".join("(" + ", ".join(str(d) for d in shape) + ")" for shape in shapes) or "-"


def format_summary(summary: ModelSummary | Sequence[LayerSummary]) -> str:
    """Renders summary rows as an aligned text table ending in a ``total`` row.

    Columns: layer (path, indented by depth), module type, output shape(s),
    parameters, MACs ('-' where not defined). Accepts a :class:`ModelSummary` or
    a plain sequence of rows (whose totals are then summed).
    """
    rows = summary.rows if isinstance(summary, ModelSummary) else tuple(summary)
    total_params = sum(row.params for row in rows)
    total_macs = sum(row.macs for row in rows if row.macs is not None)
    table = [("layer", "type", "output shape", "params", "MACs")]
    table += [
        (
            "  " * len(row.path) + row.name,
            row.module_type,
            _format_shapes(row.output_shapes),
            f"{row.params:,}",
            "-" if row.macs is None else f"{row.macs:,}",
        )
        for row in rows
    ]
    table.append(("total", "", "", f"{total_params:,}", f"{total_macs:,}"))
    widths = [max(len(line[column]) for line in table) for column in range(5)]
    rule = "  ".join("-" * width for width in widths)

    def render(line: tuple[str, ...]) -> str:
        left = [cell.ljust(width) for cell, width in zip(line[:3], widths[:3])]
        right = [cell.rjust(width) for cell, width in zip(line[3:], widths[3:])]  # numbers
        return "  ".join(left + right).rstrip()

    return "\n".join([render(table[0]), rule, *map(render, table[1:-1]), rule, render(table[-1])])


# --------------------------------------------------------------------------- #
# Dense vs convolution: what goes wrong with large inputs
# --------------------------------------------------------------------------- #

#: Largest dense weight matrix (in floats) that :func:`dense_vs_conv_table`
#: really allocates: 1e8 float32 = 400 MB, which a jit-compiled initialiser
#: fills in about a second on a laptop CPU and which fits easily in the memory
#: of the machines this project runs on (24 GiB and up). Above it the numbers
#: are computed (at n = 64 the matrix is already 4 GB; at n = 1024, 264 TB).
DEFAULT_MEASURE_LIMIT_PARAMS = 100_000_000


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
        source: ``'measured'`` when the layers were initialised with flax and the
            counts and shape read from the result, ``'computed'`` when the dense
            matrix exceeds the allocation limit and the formulas were used.
    """

    input_size: int
    input_shape: tuple[int, int, int]
    kernel_size: int
    dense_params: int
    dense_weight_bytes: int
    conv_params: int
    feature_map_shape: tuple[int, int, int]
    activation_bytes: int
    source: Literal["measured", "computed"]


def _tree_size(tree: Any) -> int:
    return sum(leaf.size for leaf in jax.tree.leaves(tree))


def _measure_dense_and_conv(
    input_shape: tuple[int, int, int], out_channels: int, kernel: int
) -> tuple[int, int, tuple[int, ...]]:
    """Initialises the dense and conv layers of one table row on a zero image.

    Returns (dense parameter count, conv parameter count, feature-map shape),
    read from the allocated parameter trees and the conv's real output.
    """
    # Only the sizes matter, not the random values: the 'rbg' generator keeps
    # XLA's CPU compile of the initialisers fast (threefry takes seconds to
    # compile for small 4-D conv kernels), and one jit compiles both layers and
    # fuses the initialiser, so the only large buffer is the weight matrix itself.
    height, width, in_channels = input_shape
    dense = nn.Dense(height * width * out_channels, use_bias=False)
    conv = nn.Conv(out_channels, (kernel, kernel), padding="VALID")

    @jax.jit
    def init_both(rng, flat_images, images):
        return dense.init(rng, flat_images), conv.init_with_output(rng, images)

    dense_variables, (feature_maps, conv_variables) = init_both(
        jax.random.key(0, impl="rbg"),
        jnp.zeros((1, height * width * in_channels), jnp.float32),
        jnp.zeros((1, *input_shape), jnp.float32),
    )
    return (
        _tree_size(dense_variables["params"]),
        _tree_size(conv_variables["params"]),
        tuple(feature_maps.shape[1:]),
    )


def dense_vs_conv_table(
    sizes: Sequence[int] = (28, 64, 224, 1024),
    in_channels: int = 3,
    out_channels: int = 20,
    kernel: int = 3,
    bytes_per_float: int = 4,
    measure_limit_params: int = DEFAULT_MEASURE_LIMIT_PARAMS,
) -> list[DenseVsConvRow]:
    """Parameters and memory of a dense layer vs a convolution as images grow.

    For every square input ``n x n x C_in`` (the notes use 10x10x3 -> 20 maps):

    * bias-free dense ``n^2 C_in -> n^2 C_out``: ``n^4 C_in C_out`` floats;
    * ``k x k`` conv with bias: ``k^2 C_in C_out + C_out`` floats (560 for the
      notes' 3x3, 3 -> 20), whatever n;
    * feature maps without padding: ``(n-k+1) x (n-k+1) x C_out``;
    * activations (input + feature maps): ``(n^2 C_in + (n-k+1)^2 C_out)`` floats.

    Rows whose dense matrix has at most ``measure_limit_params`` floats are
    *measured*: ``nn.Dense(n*n*C_out, use_bias=False)`` and ``nn.Conv`` are really
    initialised (``.init`` allocates the weights) on a zero batch of one image,
    and the parameter counts and feature-map shape are read from the result.
    Larger rows are *computed* from :func:`dense_params`, :func:`conv_params` and
    :func:`conv_output_shape` -- at n = 1024 the dense matrix would hold
    6.6e13 floats (264 TB), which no machine can allocate. Bytes are
    ``count * bytes_per_float`` in both cases.

    This answers the notes' "what problem do we have if the input size is
    high?": dense parameters grow as n^4, the conv's stay constant, and the
    activation memory grows only as n^2.
    """
    in_channels = _require_positive_int("in_channels", in_channels)
    out_channels = _require_positive_int("out_channels", out_channels)
    kernel = _require_positive_int("kernel", kernel)
    rows = []
    for n in sizes:
        n = _require_positive_int("sizes entries", n)
        input_shape = (n, n, in_channels)
        # The formulas first: they also reject inputs smaller than the kernel,
        # for which XLA would silently return empty feature maps.
        dense_count = dense_params(n * n * in_channels, n * n * out_channels, bias=False)
        conv_count = conv_params((kernel, kernel), in_channels, out_channels)
        feature_map_shape = conv_output_shape((n, n), (kernel, kernel)) + (out_channels,)
        source = "measured" if dense_count <= measure_limit_params else "computed"
        if source == "measured":
            dense_count, conv_count, feature_map_shape = _measure_dense_and_conv(
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


def format_bytes(num_bytes: int) -> str:
    """Human-readable decimal (SI) size: ``2_640_000`` -> ``'2.64 MB'``, 2.64e14 -> ``'264 TB'``."""
    value = float(num_bytes)
    units = ("B", "kB", "MB", "GB", "TB", "PB", "EB")
    unit = units[0]
    for unit in units:
        if value < 1000 or unit == units[-1]:
            break
        value /= 1000
    if unit == "B":
        return f"{int(value)} B"
    digits = 0 if value >= 100 else 1 if value >= 10 else 2
    return f"{value:.{digits}f} {unit}"


def _shape_text(shape: Sequence[int]) -> str:
    return "×".join(str(d) for d in shape)


def format_dense_vs_conv_table(rows: Sequence[DenseVsConvRow]) -> str:
    """Renders :func:`dense_vs_conv_table` rows as a Markdown table (exact counts, SI bytes)."""
    kernel = rows[0].kernel_size if rows else 3
    header = (
        "| input | dense params (no bias) | dense weights | "
        f"conv {kernel}×{kernel} params | feature maps (no padding) | activations | source |"
    )
    lines = [header, "|---|---:|---:|---:|---|---:|---|"]
    lines += [
        f"| {_shape_text(row.input_shape)} | {row.dense_params:,} "
        f"| {format_bytes(row.dense_weight_bytes)} "
        f"| {row.conv_params:,} | {_shape_text(row.feature_map_shape)} "
        f"| {format_bytes(row.activation_bytes)} | {row.source} |"
        for row in rows
    ]
    return "\n".join(lines)


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


def format_notes_exercise_answers(answers: Mapping[str, Any]) -> str:
    """A short text rendering of :func:`notes_exercise_answers`."""
    return "\n".join([
        "Q1  dense 10×10×3 -> 10×10×20, no bias: "
        f"{answers['dense_params_no_bias']:,} parameters",
        "    large inputs: parameters grow as n⁴ (224×224×3 -> 224×224×20: "
        f"{answers['dense_params_no_bias_224']:,} = "
        f"{format_bytes(4 * answers['dense_params_no_bias_224'])} of float32)",
        f"Q2  conv 3×3, 3 -> 20 maps: {answers['conv_params']:,} parameters "
        f"({answers['conv_params_no_bias']:,} without bias)",
        f"Q3  feature maps without padding: {_shape_text(answers['feature_maps_no_padding'])}; "
        f"with stride 2: {_shape_text(answers['feature_maps_stride_2'])}",
    ])
