"""The summary of any flax.linen model: per-layer input and output shapes, parameters and MACs, read
from its own init traced by jax.eval_shape (nothing allocated)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import numpy as np



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
        input_shapes: the same for its positional array arguments (what a dense
            layer reads is what the layers before it produced: e.g. a concatenation).
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
    input_shapes: tuple[tuple[int, ...], ...] = ()

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
        if context.method_name == "setup" or (
            context.method_name.startswith("_") and context.method_name != "__call__"
        ):  # set-up and private helpers (a config check) are not layers
            return next_fun(*args, **kwargs)
        # Reserve the row before calling so that parents precede their children.
        record = {
            "path": tuple(context.module.path),
            "method": context.method_name,
            "module_type": type(context.module).__name__,
            "input_shapes": _array_shapes(args),
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
            input_shapes=record["input_shapes"],
        )
        for index, record in enumerate(records)
    )
    return ModelSummary(
        rows=rows,
        total_params=sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(params)),
        total_macs=sum(row.macs for row in rows if row.macs is not None),
    )
