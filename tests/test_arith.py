"""Tests for vaecnn.arith: the formulas against jax.lax / flax.linen layers that really run."""

from __future__ import annotations

import dataclasses
import functools
import itertools

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vaecnn import arith

# Real initialisations use the 'rbg' generator: the values do not matter here, and XLA's
# CPU compile of threefry (JAX's default) takes seconds per small 4-D conv kernel shape.
# Each test runs all its cases inside one jit: one XLA compile instead of one per case.
RNG = jax.random.key(0, impl="rbg")


def _run_all(functions, *inputs):
    """Calls every function on ``inputs`` inside a single jit."""
    return jax.jit(lambda *xs: [function(*xs) for function in functions])(*inputs)


def _declared_variables(layers_and_inputs):
    """The variables' shapes flax's init declares for every (layer, input) pair: jax.eval_shape traces
    each init as it runs, without compiling it (a count of parameters needs no values)."""
    return [jax.eval_shape(layer.init, RNG, inputs) for layer, inputs in layers_and_inputs]


def _conv_forward(layer: nn.Conv, inputs):
    """Runs a flax conv with all-ones weights (no initialiser needed for shapes)."""
    kernel_shape = (*layer.kernel_size, inputs.shape[-1], layer.features)
    return layer.apply({"params": {"kernel": jnp.ones(kernel_shape)}}, inputs)


def _num_params(variables) -> int:
    return sum(leaf.size for leaf in jax.tree.leaves(variables["params"]))


# --------------------------------------------------------------------------- #
# The notes' answers
# --------------------------------------------------------------------------- #


def test_notes_exercise_answers_are_exact():
    answers = arith.notes_exercise_answers()
    assert answers["dense_params_no_bias"] == 600_000
    assert answers["conv_params"] == 560
    assert answers["conv_params_no_bias"] == 540
    assert answers["feature_maps_no_padding"] == (8, 8, 20)
    # (10 - 3) / 2 + 1 = 4.5 -> 4: the last window would overhang the image.
    assert answers["feature_maps_stride_2"] == (4, 4, 20)
    assert answers["dense_params_no_bias_224"] == (224 * 224 * 3) * (224 * 224 * 20)


def test_format_notes_exercise_answers_mentions_every_answer():
    text = arith.format_notes_exercise_answers(arith.notes_exercise_answers())
    for expected in ("600,000", "560", "540", "8×8×20", "4×4×20", "604 GB"):
        assert expected in text


def test_notes_sequence_cnn_toy_example():
    # "Tensor size calculation": T = 11 words; width-2 conv with 4 channels -> 10x4,
    # width-4 conv with 5 channels -> 8x5 (VALID, stride 1).
    assert arith.conv_output_size(11, 2, padding="VALID") == 10
    assert arith.conv_output_size(11, 4, padding="VALID") == 8
    features = 7  # D, any embedding size
    layers = [(2, 4, (10, 4)), (4, 5, (8, 5))]
    results = _run_all(
        [
            functools.partial(nn.Conv(channels, (width,), padding="VALID").init_with_output, RNG)
            for width, channels, _ in layers
        ],
        jnp.ones((1, 11, features)),
    )
    for (width, channels, expected), (output, variables) in zip(layers, results):
        assert arith.conv_output_shape((11,), (width,)) + (channels,) == expected
        chex.assert_shape(output, (1, *expected))
        assert _num_params(variables) == width * features * channels + channels


# --------------------------------------------------------------------------- #
# conv_output_size against convolutions and pools that really run
# --------------------------------------------------------------------------- #


def _random_conv_case(rng: np.random.Generator, padding_kind: str, stride: int, dilation: int):
    """Random 2-D input sizes, kernel sizes and padding where the kernel fits."""
    kernel = tuple(int(k) for k in rng.integers(1, 5, size=2))
    if padding_kind == "explicit":  # negative widths crop, as jax.lax allows
        padding = [tuple(int(p) for p in rng.integers(-1, 4, size=2)) for _ in range(2)]
    else:
        padding = padding_kind
    pads = padding if padding_kind == "explicit" else [(0, 0), (0, 0)]
    sizes = []
    for k, (low, high) in zip(kernel, pads):
        smallest = max(1, dilation * (k - 1) + 1 - low - high)
        if padding_kind in ("SAME", "SAME_LOWER"):
            smallest = 1  # SAME also works for inputs smaller than the kernel
        sizes.append(int(rng.integers(smallest, smallest + 12)))
    return tuple(sizes), kernel, padding


STRIDES_AND_DILATIONS = list(itertools.product((1, 2, 3), (1, 2)))


@pytest.mark.parametrize("padding_kind", ["VALID", "SAME", "SAME_LOWER", "explicit"])
def test_conv_output_size_matches_lax_conv(padding_kind):
    rng = np.random.default_rng(list(padding_kind.encode()))  # stable per-case seed
    in_channels, out_channels = 2, 3
    cases = [
        (*_random_conv_case(rng, padding_kind, stride, dilation), stride, dilation)
        for stride, dilation in STRIDES_AND_DILATIONS
        for _ in range(3)
    ]

    @jax.jit
    def run_all_convs():
        return [
            jax.lax.conv_general_dilated(
                jnp.ones((1, *sizes, in_channels)),
                jnp.ones((*kernel, in_channels, out_channels)),
                window_strides=(stride, stride),
                padding=padding,
                rhs_dilation=(dilation, dilation),
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
            )
            for sizes, kernel, padding, stride, dilation in cases
        ]

    for (sizes, kernel, padding, stride, dilation), output in zip(cases, run_all_convs()):
        expected_spatial = arith.conv_output_shape(sizes, kernel, stride, padding, dilation)
        chex.assert_shape(output, (1, *expected_spatial, out_channels))
        for axis in range(2):
            axis_padding = padding if isinstance(padding, str) else padding[axis]
            assert (
                arith.conv_output_size(sizes[axis], kernel[axis], stride, axis_padding, dilation)
                == output.shape[1 + axis]
            ), (sizes, kernel, padding, stride, dilation)


@pytest.mark.parametrize("padding", ["CIRCULAR", "REFLECT", 2, ((1, 0), (0, 2))])
def test_conv_output_shape_matches_flax_conv_paddings(padding):
    # flax-only paddings (CIRCULAR/REFLECT) and flax's int / per-axis conventions.
    input_hw, kernel = (9, 6), (3, 2)
    layers = [
        nn.Conv(4, kernel, stride, padding, kernel_dilation=dilation, use_bias=False)
        for stride, dilation in STRIDES_AND_DILATIONS
    ]
    outputs = _run_all(
        [functools.partial(_conv_forward, layer) for layer in layers], jnp.ones((1, *input_hw, 2))
    )
    for (stride, dilation), output in zip(STRIDES_AND_DILATIONS, outputs):
        expected = arith.conv_output_shape(input_hw, kernel, stride, padding, dilation)
        chex.assert_shape(output, (1, *expected, 4))


def test_causal_padding_matches_flax_conv_1d():
    layers = [
        nn.Conv(3, (4,), stride, "CAUSAL", kernel_dilation=dilation, use_bias=False)
        for stride, dilation in STRIDES_AND_DILATIONS
    ]
    outputs = _run_all(
        [functools.partial(_conv_forward, layer) for layer in layers], jnp.ones((2, 13, 5))
    )
    for (stride, dilation), output in zip(STRIDES_AND_DILATIONS, outputs):
        expected = arith.conv_output_shape((13,), (4,), stride, "CAUSAL", dilation)
        chex.assert_shape(output, (2, *expected, 3))


@pytest.mark.parametrize("padding", ["VALID", "SAME", ((1, 1), (0, 2))])
def test_pool_output_size_matches_flax_pooling(padding):
    input_hw, window = (11, 8), (3, 2)
    cases = list(itertools.product((nn.max_pool, nn.avg_pool), (1, 2, 3)))
    outputs = _run_all(
        [
            functools.partial(pool, window_shape=window, strides=(stride, stride), padding=padding)
            for pool, stride in cases
        ],
        jnp.ones((1, *input_hw, 2)),
    )
    for (_, stride), output in zip(cases, outputs):
        for axis in range(2):
            axis_padding = padding if isinstance(padding, str) else padding[axis]
            assert (
                arith.pool_output_size(input_hw[axis], window[axis], stride, axis_padding)
                == output.shape[1 + axis]
            )


def test_conv_output_size_formulas_by_hand():
    assert arith.conv_output_size(10, 3) == 8
    assert arith.conv_output_size(10, 3, stride=2) == 4
    assert arith.conv_output_size(10, 3, stride=2, padding="SAME") == 5
    assert arith.conv_output_size(10, 3, padding=(1, 1)) == 10
    assert arith.conv_output_size(10, 3, padding=1) == 10
    assert arith.conv_output_size(10, 3, dilation=2) == 6  # dilated kernel spans 5
    assert arith.conv_output_size(2, 5, padding="SAME") == 2  # SAME ignores the kernel


# --------------------------------------------------------------------------- #
# Parameter counts against initialised flax layers
# --------------------------------------------------------------------------- #


def test_dense_params_match_flax():
    cases = [(i, o, bias) for i, o in [(1, 1), (300, 2000), (17, 5)] for bias in (True, False)]
    all_variables = _declared_variables(
        [(nn.Dense(o, use_bias=bias), jnp.ones((1, i))) for i, o, bias in cases]
    )
    for (in_features, out_features, bias), variables in zip(cases, all_variables):
        assert arith.dense_params(in_features, out_features, bias=bias) == _num_params(variables)


CONV_CASES = [
    ((2,), (11, 50), 4),  # 1-D over a sentence: k * D * C + C
    (4, (11, 50), 5),  # an int kernel means 1-D
    ((3, 3), (10, 10, 3), 20),  # the notes' image layer
    ((5, 2), (9, 7, 6), 8),
]


def test_conv_params_match_flax():
    cases = [(*case, bias) for case in CONV_CASES for bias in (True, False)]
    all_variables = _declared_variables([
        (
            nn.Conv(out_channels, (k,) if isinstance(k, int) else k, use_bias=bias),
            jnp.ones((1, *input_shape)),
        )
        for k, input_shape, out_channels, bias in cases
    ])
    for (k, input_shape, out_channels, bias), variables in zip(cases, all_variables):
        assert arith.conv_params(k, input_shape[-1], out_channels, bias=bias) == _num_params(
            variables
        )


def test_conv_params_by_hand():
    assert arith.conv_params(2, 50, 4) == 2 * 50 * 4 + 4
    assert arith.conv_params((3, 3), 3, 20) == 560
    assert arith.conv_params((3, 3), 3, 20, bias=False) == 540


def test_embedding_params_match_flax():
    cases = [(1, 1), (1000, 50), (37, 8)]
    all_variables = _declared_variables(
        [(nn.Embed(vocab, dim), jnp.zeros((1, 3), jnp.int32)) for vocab, dim in cases]
    )
    for (vocab_size, dim), variables in zip(cases, all_variables):
        assert arith.embedding_params(vocab_size, dim) == _num_params(variables)


def test_mac_counts():
    assert arith.dense_macs(300, 2000) == 600_000
    assert arith.conv_macs((8, 8), (3, 3), 3, 20) == 64 * 9 * 3 * 20
    assert arith.conv_macs(10, 2, 50, 4) == 10 * 2 * 50 * 4


# --------------------------------------------------------------------------- #
# summarize
# --------------------------------------------------------------------------- #


class SmallCNN(nn.Module):
    """Conv -> pool -> BatchNorm -> Conv -> flatten -> Dropout -> Dense -> Dense."""

    @nn.compact
    def __call__(self, images_NxHxWxC, train: bool = False):
        x = nn.relu(nn.Conv(6, (3, 3), padding="VALID", name="conv1")(images_NxHxWxC))
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = nn.BatchNorm(use_running_average=not train, name="norm")(x)
        x = nn.relu(nn.Conv(8, (3, 3), strides=2, padding="SAME", name="conv2")(x))
        x = x.reshape(x.shape[0], -1)
        x = nn.Dropout(0.5, deterministic=not train)(x)
        x = nn.relu(nn.Dense(16, name="hidden")(x))
        return nn.Dense(10, name="logits")(x)


class Block(nn.Module):
    """Submodules defined in setup, a helper method, and a tuple output."""

    features: int

    def setup(self):
        self.inner = nn.Dense(self.features)
        self.gate = nn.Sequential([nn.Dense(self.features), nn.sigmoid])

    def __call__(self, x):
        hidden = self.activate(self.inner(x))
        return hidden * self.gate(x), hidden

    def activate(self, x):
        return nn.gelu(x)


class NestedModel(nn.Module):
    """Nested blocks, a weight-shared block called twice, an embedding and a 1-D conv."""

    @nn.compact
    def __call__(self, tokens_NxT):
        x = nn.Embed(50, 12, name="embed")(tokens_NxT)
        x = nn.Conv(12, (3,), padding="SAME", name="conv1d")(x)
        shared = Block(12, name="shared")
        x, _ = shared(x)
        x, first_hidden = shared(x)  # same weights, second call
        x, _ = Block(6, name="head")(x + first_hidden)
        return x.mean(axis=1)


def _check_summary_against_init_and_apply(model, *inputs, **kwargs):
    summary = arith.summarize(model, *inputs, **kwargs)
    apply = functools.partial(
        model.apply, capture_intermediates=True, mutable=["intermediates"], **kwargs
    )

    @jax.jit  # init, then apply: one compiled program (one compile instead of one per eager op)
    def init_and_apply(rng, *inputs):
        variables = model.init(rng, *inputs, **kwargs)
        return variables, apply(variables, *inputs)[1]

    variables, state = init_and_apply(RNG, *inputs)
    num_params = sum(leaf.size for leaf in jax.tree.leaves(variables["params"]))
    assert summary.total_params == num_params
    assert sum(row.params for row in summary.rows) == num_params

    # Every __call__ row's output shapes equal what the layer outputs when really applied.
    captured = {
        tuple(k.key for k in key_path[:-1]): [
            tuple(tuple(a.shape) for a in jax.tree.leaves(output)) for output in outputs
        ]
        for key_path, outputs in jax.tree_util.tree_flatten_with_path(
            state["intermediates"], is_leaf=lambda x: isinstance(x, tuple)
        )[0]
    }
    recorded: dict[tuple[str, ...], list] = {}
    for row in summary.rows:
        if row.method == "__call__":
            recorded.setdefault(row.path, []).append(row.output_shapes)
    assert recorded == captured
    return summary, variables


def test_summarize_small_cnn_rows_totals_and_macs():
    batch = 3
    images = jnp.ones((batch, 16, 16, 1))
    summary, variables = _check_summary_against_init_and_apply(SmallCNN(), images, train=False)
    rows = {row.name: row for row in summary.rows}

    call_order = ["SmallCNN", "conv1", "norm", "conv2", "Dropout_0", "hidden", "logits"]
    assert [row.name for row in summary.rows] == call_order
    assert rows["conv1"].output_shapes == ((batch, 14, 14, 6),)
    assert rows["conv2"].output_shapes == ((batch, 4, 4, 8),)
    assert rows["logits"].output_shapes == ((batch, 10),)
    assert rows["conv1"].params == arith.conv_params((3, 3), 1, 6)
    assert rows["norm"].params == 2 * 6  # scale and bias; batch_stats are not trainable
    assert rows["hidden"].params == arith.dense_params(4 * 4 * 8, 16)
    assert "batch_stats" in variables

    assert rows["conv1"].macs == batch * arith.conv_macs((14, 14), (3, 3), 1, 6)
    assert rows["conv2"].macs == batch * arith.conv_macs((4, 4), (3, 3), 6, 8)
    assert rows["hidden"].macs == batch * arith.dense_macs(128, 16)
    assert rows["norm"].macs is None and rows["SmallCNN"].macs is None
    assert summary.total_macs == sum(row.macs for row in summary.rows if row.macs is not None)


def test_summarize_nested_model_with_shared_weights():
    tokens = jnp.zeros((2, 9), jnp.int32)
    summary, _ = _check_summary_against_init_and_apply(NestedModel(), tokens)
    names = [row.name for row in summary.rows]
    assert names.count("shared") == 2  # one row per call
    assert "shared.activate" in names and "shared/gate/layers_0" in names
    shared_rows = [row for row in summary.rows if row.name == "shared"]
    assert shared_rows[0].output_shapes == ((2, 9, 12), (2, 9, 12))  # tuple output
    # Shared weights are counted once: on the first call of each submodule.
    inner_rows = [row for row in summary.rows if row.path == ("shared", "inner")]
    assert [row.params for row in inner_rows] == [arith.dense_params(12, 12), 0]
    assert [row.macs for row in inner_rows] == [2 * 9 * 12 * 12] * 2
    rows = {row.name: row for row in summary.rows}
    assert rows["embed"].params == arith.embedding_params(50, 12)
    assert rows["conv1d"].params == arith.conv_params(3, 12, 12)
    assert rows["conv1d"].macs == 2 * arith.conv_macs(9, 3, 12, 12)


def test_summarize_grouped_conv_macs():
    layer = nn.Conv(8, (3, 3), feature_group_count=2, padding="VALID")
    summary = arith.summarize(layer, jnp.ones((1, 7, 7, 4)))
    (row,) = summary.rows
    # Each output value sums over the 3x3 window of its group's 4 / 2 = 2 input channels.
    assert row.macs == 5 * 5 * 8 * (3 * 3 * 2)
    assert row.params == 3 * 3 * 2 * 8 + 8


def test_summarize_allocates_nothing_for_huge_models():
    # 1e12 parameters (4 TB of float32) cannot be allocated anywhere: only shapes may be computed.
    features = 1_000_000
    summary = arith.summarize(nn.Dense(features), jax.ShapeDtypeStruct((1, features), jnp.float32))
    assert summary.total_params == features * features + features
    assert summary.rows[0].macs == features * features
    assert summary.rows[0].output_shapes == ((1, features),)


def test_format_summary_table():
    summary = arith.summarize(SmallCNN(), jnp.ones((2, 16, 16, 1)))
    text = arith.format_summary(summary)
    lines = text.splitlines()
    assert len(lines) == len(summary.rows) + 4  # header, rule, rows, rule, total
    assert lines[0].split() == ["layer", "type", "input", "shape", "output", "shape", "params", "MACs"]
    assert lines[-1].split() == ["total", f"{summary.total_params:,}", f"{summary.total_macs:,}"]
    assert "(2, 14, 14, 6)" in text and "(2, 16, 16, 1)" in text  # an output and the input
    # A plain row sequence renders the same table.
    assert arith.format_summary(list(summary.rows)) == text


# --------------------------------------------------------------------------- #
# Dense vs conv table
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def default_table():
    return arith.dense_vs_conv_table()


def test_dense_vs_conv_default_table(default_table):
    by_size = {row.input_size: row for row in default_table}
    assert sorted(by_size) == [28, 64, 224, 1024]
    assert by_size[28].dense_params == (28 * 28 * 3) * (28 * 28 * 20)
    # Every row from flax's own layers, traced for shapes: even the 264 TB matrix allocates nothing.
    assert {row.source for row in default_table} == {"flax shapes"}
    assert by_size[1024].dense_params == 3 * 1024**2 * 20 * 1024**2  # exact Python int
    assert by_size[1024].dense_weight_bytes == 4 * 3 * 1024**2 * 20 * 1024**2
    assert all(row.conv_params == 560 for row in default_table)
    assert by_size[1024].feature_map_shape == (1022, 1022, 20)
    # The dense layer grows as n^4; activations as n^2 (input + unpadded feature maps).
    assert by_size[224].dense_params == by_size[28].dense_params * (224 // 28) ** 4
    assert by_size[1024].activation_bytes == 4 * (1024**2 * 3 + 1022**2 * 20)


def test_dense_vs_conv_flax_rows_agree_with_formulas(default_table):
    from_flax = arith.dense_vs_conv_table((6,)) + default_table
    formulas = arith.dense_vs_conv_table((6, 28, 64, 224, 1024), from_flax=False)
    assert [row.source for row in from_flax] == ["flax shapes"] * 5
    assert [row.source for row in formulas] == ["formulas"] * 5
    for row_flax, row_formulas, n in zip(from_flax, formulas, (6, 28, 64, 224, 1024)):
        assert row_flax.dense_params == arith.dense_params(n * n * 3, n * n * 20, bias=False)
        assert row_flax.conv_params == arith.conv_params((3, 3), 3, 20) == 560
        assert row_flax.feature_map_shape == (n - 2, n - 2, 20)
        assert dataclasses.replace(row_flax, source="formulas") == row_formulas


def test_format_dense_vs_conv_table(default_table):
    text = arith.format_dense_vs_conv_table(default_table)
    lines = text.splitlines()
    assert len(lines) == 2 + len(default_table)
    assert lines[0].startswith("| input |") and set(lines[1]) <= set("|-: ")
    assert "| 28×28×3 | 36,879,360 | 148 MB | 560 | 26×26×20 |" in text
    assert "264 TB" in text and "flax shapes" in lines[-1]


def test_format_bytes():
    assert arith.format_bytes(0) == "0 B"
    assert arith.format_bytes(999) == "999 B"
    assert arith.format_bytes(1000) == "1.00 kB"
    assert arith.format_bytes(2_400_000_000) == "2.40 GB"
    assert arith.format_bytes(4 * 3 * 1024**2 * 20 * 1024**2) == "264 TB"


# --------------------------------------------------------------------------- #
# Errors
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("padding", ["FULL", "same", "valid", (1, 2, 3), (1.5, 0), "CAUSALX"])
def test_bad_padding_raises(padding):
    with pytest.raises(ValueError, match="padding"):
        arith.conv_output_size(10, 3, padding=padding)


def test_kernel_larger_than_input_raises_helpful_error():
    with pytest.raises(ValueError, match="kernel does not fit.*spans 5.*only 4"):
        arith.conv_output_size(4, 5)
    with pytest.raises(ValueError, match="dilation=2"):
        arith.conv_output_size(4, 3, dilation=2)  # dilated kernel spans 5
    with pytest.raises(ValueError, match="padding=\\(0, 1\\)"):
        arith.conv_output_size(3, 5, padding=(0, 1))
    assert arith.conv_output_size(3, 5, padding=(1, 1)) == 1  # just fits once padded


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: arith.conv_output_size(0, 3), "input_size must be a positive integer"),
        (lambda: arith.conv_output_size(10, 3, stride=0), "stride"),
        (lambda: arith.conv_output_shape((10, 10), (3,)), "same number of spatial axes"),
        (lambda: arith.conv_output_shape((10, 10), (3, 3), strides=(1, 2, 3)), "strides"),
        (lambda: arith.conv_output_shape((10, 10), (3, 3), padding=[(1, 1)]), "padding has 1"),
        (lambda: arith.conv_output_shape((10, 10), (3, 3), padding="CAUSAL"), "1-D"),
        (lambda: arith.conv_params((3, 0), 3, 20), "kernel_shape"),
        (lambda: arith.dense_params(0, 5), "in_features"),
        (lambda: arith.dense_vs_conv_table((2,)), "kernel does not fit"),
    ],
)
def test_invalid_arguments_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
