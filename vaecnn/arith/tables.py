"""Formatting only: the text and Markdown renderings of summaries, byte counts and the exercise's tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


from vaecnn.arith.exercise import DenseVsConvRow
from vaecnn.arith.summary import LayerSummary, ModelSummary


def _format_shapes(shapes: tuple[tuple[int, ...], ...]) -> str:
    return ", ".join("(" + ", ".join(str(d) for d in shape) + ")" for shape in shapes) or "-"


def format_summary(summary: ModelSummary | Sequence[LayerSummary]) -> str:
    """Renders summary rows as an aligned text table ending in a ``total`` row.

    Columns: layer (path, indented by depth), module type, input and output
    shape(s), parameters, MACs ('-' where not defined). Accepts a
    :class:`ModelSummary` or a plain sequence of rows (whose totals are then summed).
    """
    rows = summary.rows if isinstance(summary, ModelSummary) else tuple(summary)
    total_params = sum(row.params for row in rows)
    total_macs = sum(row.macs for row in rows if row.macs is not None)
    table = [("layer", "type", "input shape", "output shape", "params", "MACs")]
    table += [
        (
            "  " * len(row.path) + row.name,
            row.module_type,
            _format_shapes(row.input_shapes),
            _format_shapes(row.output_shapes),
            f"{row.params:,}",
            "-" if row.macs is None else f"{row.macs:,}",
        )
        for row in rows
    ]
    table.append(("total", "", "", "", f"{total_params:,}", f"{total_macs:,}"))
    widths = [max(len(line[column]) for line in table) for column in range(6)]
    rule = "  ".join("-" * width for width in widths)

    def render(line: tuple[str, ...]) -> str:
        left = [cell.ljust(width) for cell, width in zip(line[:4], widths[:4])]
        right = [cell.rjust(width) for cell, width in zip(line[4:], widths[4:])]  # numbers
        return "  ".join(left + right).rstrip()

    return "\n".join([render(table[0]), rule, *map(render, table[1:-1]), rule, render(table[-1])])


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
