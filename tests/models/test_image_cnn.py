"""Tests for vaecnn.models.image_cnn: shapes, parameter counts, input scaling, pooling, dropout.

XLA compiles dominate on CPU: every model is initialised once (jitted, with the 'rbg' generator,
whose CPU compile is much faster than threefry's for conv kernels) and shared between tests.
"""

import functools

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vaecnn import arith
from vaecnn.models.image_cnn import DenseNet, SmallCNN, max_pool_2x2

MNIST_SHAPE, DIGITS_SHAPE = (28, 28, 1), (8, 8, 1)
MODELS = {"cnn": SmallCNN(), "dense": DenseNet()}


def _key(seed: int) -> jax.Array:
    return jax.random.key(seed, impl="rbg")


def _images(shape, batch: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (batch, *shape), dtype=np.uint8)


@functools.cache
def _params(name: str, image_shape: tuple[int, ...]):
    model = MODELS[name]
    images = jnp.zeros((1, *image_shape), jnp.uint8)
    return jax.jit(lambda key: model.init(key, images)["params"])(_key(0))


def _num_params(params) -> int:
    return sum(leaf.size for leaf in jax.tree.leaves(params))


def _dense_net_params(image_shape, hidden_sizes=(512, 512), num_classes=10) -> int:
    sizes = (int(np.prod(image_shape)), *hidden_sizes, num_classes)
    return sum(arith.dense_params(fan_in, fan_out) for fan_in, fan_out in zip(sizes, sizes[1:]))


def _small_cnn_params(image_shape, features=(32, 64), hidden_size=128, num_classes=10) -> int:
    height, width, channels = image_shape
    convs = sum(arith.conv_params((3, 3), fan_in, fan_out)
                for fan_in, fan_out in zip((channels, *features), features))
    for _ in features:  # SAME convs keep the size; each 2x2 pool floors it to half
        height, width = arith.pool_output_size(height, 2, 2), arith.pool_output_size(width, 2, 2)
    flat = height * width * features[-1]
    return convs + arith.dense_params(flat, hidden_size) + arith.dense_params(hidden_size, num_classes)


@pytest.mark.parametrize("image_shape", [MNIST_SHAPE, DIGITS_SHAPE])
def test_param_counts_match_formulas_and_arith_summarize(image_shape):
    expected = {"cnn": _small_cnn_params(image_shape), "dense": _dense_net_params(image_shape)}
    if image_shape == MNIST_SHAPE:  # the numbers quoted in the docstrings
        assert expected == {"cnn": 421_642, "dense": 669_706}
    images = jax.ShapeDtypeStruct((1, *image_shape), jnp.uint8)
    for name, model in MODELS.items():
        summary = arith.summarize(model, images, deterministic=True)
        # Shapes only (no compile): the parameter tree init would allocate.
        params = jax.eval_shape(model.init, _key(0), images)["params"]
        assert summary.total_params == _num_params(params) == expected[name], name


def test_small_cnn_layer_shapes_on_mnist():
    summary = arith.summarize(SmallCNN(), jax.ShapeDtypeStruct((1, *MNIST_SHAPE), jnp.uint8))
    shapes = {row.name: row.output_shapes[0] for row in summary.rows}
    assert shapes["Conv_0"] == (1, 28, 28, 32)
    assert shapes["Conv_1"] == (1, 14, 14, 64)   # after the first pool
    assert shapes["Dropout_0"] == (1, 7 * 7 * 64)  # after the second pool, flattened
    assert shapes["hidden"] == (1, 128)
    assert shapes["logits"] == (1, 10)


class ForwardTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    def test_logits_shape_and_uint8_scaling(self):
        for name, model in MODELS.items():
            apply = self.variant(model.apply)  # parameters as arguments, not as compiled-in constants
            for image_shape in (MNIST_SHAPE, DIGITS_SHAPE):
                variables = {"params": _params(name, image_shape)}
                images = _images(image_shape, batch=5)
                logits_BxC = apply(variables, images)
                chex.assert_shape(logits_BxC, (5, 10))
                chex.assert_tree_all_finite(logits_BxC)
                # uint8 pixels are scaled to [0, 1] inside; floats are taken as already scaled.
                np.testing.assert_allclose(apply(variables, images.astype(np.float32) / 255.0), logits_BxC,
                                           rtol=1e-5, atol=1e-5)
                assert not np.allclose(apply(variables, images.astype(np.float32)), logits_BxC, atol=1e-3)

    @chex.variants(with_jit=True, without_jit=True)
    def test_dropout_only_in_training(self):
        model, variables = MODELS["cnn"], {"params": _params("cnn", MNIST_SHAPE)}
        images = _images(MNIST_SHAPE)
        train = self.variant(lambda variables, images, key: model.apply(
            variables, images, deterministic=False, rngs={"dropout": key}))
        evaluate = self.variant(lambda variables, images: model.apply(variables, images, deterministic=True))
        deterministic = evaluate(variables, images)
        np.testing.assert_array_equal(evaluate(variables, images), deterministic)
        first, second = train(variables, images, _key(1)), train(variables, images, _key(2))
        assert not np.allclose(first, second) and not np.allclose(first, deterministic)
        np.testing.assert_array_equal(train(variables, images, _key(1)), first)  # same key, same mask


@pytest.mark.parametrize("height, width", [(28, 28), (7, 7), (6, 9)])
def test_max_pool_2x2_equals_flax_max_pool_and_its_gradient(height, width):
    # Random floats: no ties, so the two gradients (one-hot at each window's maximum) must agree.
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, height, width, 3)), jnp.float32)
    flax_pool = functools.partial(nn.max_pool, window_shape=(2, 2), strides=(2, 2))
    ours, theirs = jax.jit(lambda x: (max_pool_2x2(x), flax_pool(x)))(x)
    chex.assert_shape(ours, (2, height // 2, width // 2, 3))
    np.testing.assert_array_equal(ours, theirs)
    weights = jnp.asarray(np.random.default_rng(1).normal(size=ours.shape), jnp.float32)
    grads = jax.jit(lambda x: [jax.grad(lambda x: jnp.sum(pool(x) * weights))(x)
                               for pool in (max_pool_2x2, flax_pool)])(x)
    np.testing.assert_array_equal(grads[0], grads[1])


def test_gradients_reach_every_parameter():
    images, labels = _images(MNIST_SHAPE, batch=8), np.arange(8) % 10
    for name, model in MODELS.items():

        @jax.jit
        def grad(params):
            def loss(params):
                log_probs_BxC = jax.nn.log_softmax(model.apply({"params": params}, images))
                return -jnp.mean(log_probs_BxC[np.arange(8), labels])
            return jax.grad(loss)(params)

        grads = grad(_params(name, MNIST_SHAPE))
        chex.assert_tree_all_finite(grads)
        for path, leaf in jax.tree_util.tree_leaves_with_path(grads):
            assert float(jnp.abs(leaf).max()) > 0, (name, jax.tree_util.keystr(path))
