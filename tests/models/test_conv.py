"""vaecnn.models.conv: lax's convolution with canonical gradient convolutions, and the property that
keeps the engine fast on XLA:CPU: every convolution of a compiled chunk program is canonical."""

import re

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from absl.testing import parameterized
from jax import lax

from vaecnn import engine, sharding, train
from vaecnn.classification import ClassifierTask
from vaecnn.data.batching import ArrayBatcher
from vaecnn.models import conv
from vaecnn.models.image_cnn import SmallCNN
from vaecnn.models.text_cnn import TextCNN
from vaecnn.models.vae import make_vae

# (input shape, kernel shape, strides, padding, input dilation): 1-D and 2-D, VALID, SAME and explicit
# asymmetric padding, strides that do and do not divide the input, input dilation (transposed conv).
CASES = [
    ((2, 11, 3), (2, 3, 4), (1,), "VALID", None),
    ((2, 11, 3), (4, 3, 5), (1,), [(3, 3)], None),
    ((3, 10, 4), (3, 4, 2), (3,), [(0, 2)], (2,)),
    ((2, 9, 9, 3), (3, 3, 3, 5), (1, 1), "SAME", None),
    ((2, 9, 9, 3), (3, 3, 3, 5), (2, 2), "SAME", None),
    ((2, 8, 8, 3), (3, 3, 3, 5), (2, 2), "SAME", None),
    ((2, 7, 7, 2), (3, 3, 2, 4), (1, 1), [(1, 2), (2, 1)], (2, 2)),
    ((2, 5, 6, 2), (2, 3, 2, 3), (2, 1), [(1, 0), (0, 1)], None),
]


def _lax_value_and_gradients(x, w, cotangent, strides, padding, lhs_dilation):
    """lax's convolution and the gradients of sum(conv(x, w) * cotangent), as one jitted program (the
    reference side needs no eager variant; compiled op by op it cost more than the convolution under test)."""
    numbers = conv.canonical_dimension_numbers(x.ndim)

    def reference(x, w):
        return lax.conv_general_dilated(x, w, strides, padding, lhs_dilation=lhs_dilation,
                                        dimension_numbers=numbers)

    return jax.jit(lambda x, w: (reference(x, w), jax.grad(lambda x, w: jnp.sum(reference(x, w) * cotangent),
                                                           argnums=(0, 1))(x, w)))(x, w)


class ConvTest(chex.TestCase, parameterized.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(*CASES)
    def test_values_and_gradients_equal_lax(self, x_shape, w_shape, strides, padding, lhs_dilation):
        draw = np.random.default_rng(0).standard_normal  # NumPy's draws: no PRNG program to compile per shape
        x, w = jnp.asarray(draw(x_shape), jnp.float32), jnp.asarray(draw(w_shape), jnp.float32)
        y_shape = jax.eval_shape(lambda x, w: conv.conv_general_dilated(x, w, strides, padding,
                                                                         lhs_dilation=lhs_dilation), x, w).shape
        cotangent = jnp.asarray(draw(y_shape), jnp.float32)
        reference_y, reference_grads = _lax_value_and_gradients(x, w, cotangent, strides, padding, lhs_dilation)

        def ours(x, w):
            return conv.conv_general_dilated(x, w, strides, padding, lhs_dilation=lhs_dilation)

        grads = jax.grad(lambda x, w: jnp.sum(ours(x, w) * cotangent), argnums=(0, 1))
        chex.assert_trees_all_close(self.variant(ours)(x, w), reference_y, rtol=1e-5, atol=1e-5)
        chex.assert_trees_all_close(self.variant(grads)(x, w), reference_grads, rtol=1e-5, atol=1e-4)


@pytest.mark.slow
def test_transposed_conv_equals_flax_conv_transpose_with_the_same_parameters():
    x = jax.random.normal(jax.random.key(1), (2, 7, 7, 4))
    for kernel, stride in [(3, 2), (4, 2), (3, 1), (2, 3)]:
        flax_layer = nn.ConvTranspose(3, (kernel, kernel), strides=(stride, stride), padding="SAME")
        ours = conv.ConvTranspose(3, (kernel, kernel), (stride, stride))
        params = flax_layer.init(jax.random.key(2), x)
        chex.assert_trees_all_equal_shapes(params, ours.init(jax.random.key(2), x))
        chex.assert_trees_all_close(ours.apply(params, x), flax_layer.apply(params, x), rtol=1e-5, atol=1e-5)


def test_other_layouts_and_kernel_dilation_are_refused():
    x, w = jnp.zeros((1, 5, 2)), jnp.zeros((2, 2, 3))
    with pytest.raises(ValueError, match="N..C inputs"):
        conv.conv_general_dilated(x, w, (1,), "VALID", dimension_numbers=("NCH", "OIH", "NCH"))
    with pytest.raises(ValueError, match="kernel dilation"):
        conv.conv_general_dilated(x, w, (1,), "VALID", rhs_dilation=(2,))


CANONICAL = re.compile(r"dim_labels=(b0f_0io->b0f|b01f_01io->b01f)\b")


def non_canonical_convolutions(hlo_text: str) -> list[str]:
    """The convolutions of an optimized HLO module that XLA:CPU cannot run through Eigen."""
    convolutions = [line for line in hlo_text.splitlines() if " convolution(" in line]
    return [line.strip()[:160] for line in convolutions if not CANONICAL.search(line) or "rhs_reversal" in line]


def _chunk_program_text(model: nn.Module, inputs: dict, input_fields, optimizer=None) -> str:
    mesh = sharding.data_mesh()
    task = ClassifierTask(model, input_fields)
    optimizer = optimizer or optax.adam(1e-3)
    chunks = engine.ChunkedEpochs(task, optimizer, ArrayBatcher(inputs, 4), mesh, steps_per_chunk=2)
    state = train.init_state(task, optimizer, chunks.first_batch(), jax.random.key(0), mesh)
    return chunks.lower_chunk(state, chunks.zero_sums(state), jax.random.key(1), 0).compile().as_text()


needs_cpu = pytest.mark.skipif(jax.default_backend() != "cpu", reason="a property of XLA:CPU's compiled programs")
rng = np.random.default_rng(0)
TEXT = {"tokens": rng.integers(1, 30, (8, 9)).astype(np.int32), "label": rng.integers(0, 2, 8).astype(np.int32)}
IMAGES = {"image": rng.integers(0, 255, (8, 8, 8, 1)).astype(np.uint8),
          "label": rng.integers(0, 10, 8).astype(np.int32)}


@pytest.mark.slow
@needs_cpu
@pytest.mark.parametrize("wide", [True, False], ids=["wide", "narrow"])
def test_text_cnn_chunk_program_has_only_canonical_convolutions(wide):
    model = TextCNN(2, widths=(2, 3), channels=(4, 5), embed_dim=6, vocab_size=30, wide=wide)
    text = _chunk_program_text(model, TEXT, ("tokens",), optax.adadelta(1.0, rho=0.95, eps=1e-6))
    assert text.count(" convolution(") == 6  # forward, input and kernel gradient of each width
    assert non_canonical_convolutions(text) == []


@pytest.mark.slow
@needs_cpu
def test_image_cnn_chunk_program_has_only_canonical_convolutions():
    text = _chunk_program_text(SmallCNN(features=(4, 8), hidden_size=8), IMAGES, ("image",))
    assert text.count(" convolution(") >= 5  # the first layer needs no input gradient
    assert non_canonical_convolutions(text) == []


@pytest.mark.slow
@needs_cpu
def test_conv_vae_loss_program_has_only_canonical_convolutions():
    # 16x16 images: every output map is at least as large as the 3x3 kernels (see _input_gradient).
    vae = make_vae((16, 16, 1), (8,), 2, arch="conv", conv_features=(4, 8))
    x = jnp.asarray(rng.random((4, 16, 16, 1)), jnp.float32)
    params = vae.init(jax.random.key(0), x, jax.random.key(1))

    def loop(params):  # the gradient inside a loop body, where XLA:CPU canonicalizes nothing
        grad = jax.grad(lambda p, key: jnp.sum(vae.apply(p, x, key)[1].elbo))
        return lax.fori_loop(0, 2, lambda i, p: jax.tree.map(lambda a, g: a - 1e-3 * g, p,
                                                             grad(p, jax.random.key(i))), params)

    text = jax.jit(loop).lower(params).compile().as_text()
    assert text.count(" convolution(") >= 8
    assert non_canonical_convolutions(text) == []


@pytest.mark.slow
@needs_cpu
def test_the_check_finds_lax_gradient_convolutions_in_a_loop():
    """The property above is not vacuous: flax's own nn.Conv, differentiated inside a loop, fails it."""
    x, w = jnp.ones((2, 9, 3)), jnp.ones((3, 3, 4))

    def loop(w):
        grad = jax.grad(lambda w: jnp.sum(nn.Conv(4, (3,)).apply({"params": {"kernel": w, "bias": jnp.zeros(4)}}, x)))
        return lax.fori_loop(0, 2, lambda i, w: w - 0.1 * grad(w), w)

    assert non_canonical_convolutions(jax.jit(loop).lower(w).compile().as_text()) != []
