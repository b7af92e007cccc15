"""Tests of vaecnn.models.rnn: the notes' Elman recurrence, flax SimpleCell equivalence, padding invariance.

Compiling dominates the run time on CPU, so parameters are drawn with numpy and init/apply go through
module-level jitted functions with the (hashable) module as a static argument: one compilation per
(module configuration, input shapes), shared by all tests.
"""

import functools

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vaecnn.models import rnn


@functools.partial(jax.jit, static_argnums=0)
def _init(model, key, *args):
    return model.init(key, *args)


@functools.partial(jax.jit, static_argnums=0)
def _apply(model, variables, *args):
    return model.apply(variables, *args)


def _np_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _normal(seed, shape, scale=1.0):
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def _cell_params(D, H, seed, scale=0.5):
    """Random ElmanCell params (every bias non-zero), laid out as flax's Dense: kernel [in, out]."""
    return {"i": {"kernel": _normal(seed, (D, H), scale), "bias": _normal(seed + 1, (H,), scale)},
            "h": {"kernel": _normal(seed + 2, (H, H), scale), "bias": _normal(seed + 3, (H,), scale)}}


def _notes_recurrence(x_BxTxD, cell_params, act, h0=None):
    """h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), h_0 = 0, written with numpy in the notes' form."""
    W_ih = np.asarray(cell_params["i"]["kernel"]).T  # [H, D]
    b_ih = np.asarray(cell_params["i"]["bias"])
    W_hh = np.asarray(cell_params["h"]["kernel"]).T  # [H, H]
    b_hh = np.asarray(cell_params["h"]["bias"])
    B, T, _ = x_BxTxD.shape
    h = np.zeros((B, W_hh.shape[0])) if h0 is None else np.asarray(h0, np.float64)
    states = []
    for t in range(T):
        h = act(np.einsum("hd,bd->bh", W_ih, x_BxTxD[:, t]) + b_ih + np.einsum("hk,bk->bh", W_hh, h) + b_hh)
        states.append(h)
    return np.stack(states, axis=1)


# ---------------------------------------------------------------------------------------------------------
# The cell and the recurrence
# ---------------------------------------------------------------------------------------------------------


def test_cell_param_structure_and_orthogonal_recurrent_init():
    cell = rnn.ElmanCell(features=5)
    carry = cell.initialize_carry(jax.random.key(0), (3, 4))
    chex.assert_shape(carry, (3, 5))
    np.testing.assert_array_equal(carry, 0.0)
    variables = _init(cell, jax.random.key(1), carry, jnp.ones((3, 4)))
    shapes = jax.tree.map(jnp.shape, variables["params"])
    assert shapes == {"i": {"kernel": (4, 5), "bias": (5,)}, "h": {"kernel": (5, 5), "bias": (5,)}}
    W_hh = np.asarray(variables["params"]["h"]["kernel"])
    np.testing.assert_allclose(W_hh @ W_hh.T, np.eye(5), atol=1e-5)  # orthogonal by default
    np.testing.assert_array_equal(variables["params"]["h"]["bias"], 0.0)


@pytest.mark.parametrize("activation, act, other", [("sigmoid", _np_sigmoid, np.tanh),
                                                    ("tanh", np.tanh, _np_sigmoid)])
def test_rnn_matches_the_notes_recurrence(activation, act, other):
    x = _normal(0, (2, 5, 3))
    params = {"cell": _cell_params(3, 4, seed=1, scale=1.0)}
    h_BxTxH = np.asarray(_apply(rnn.ElmanRNN(hidden_size=4, activation=activation), {"params": params}, x))
    chex.assert_shape(h_BxTxH, (2, 5, 4))
    np.testing.assert_allclose(h_BxTxH, _notes_recurrence(x, params["cell"], act), rtol=1e-5, atol=1e-6)
    assert not np.allclose(h_BxTxH, _notes_recurrence(x, params["cell"], other), atol=1e-3)
    if activation == "sigmoid":
        assert np.all((h_BxTxH > 0) & (h_BxTxH < 1))
    else:
        assert np.any(h_BxTxH < 0)  # impossible for a sigmoid


def test_unknown_activation_is_rejected():
    with pytest.raises(ValueError, match="activation"):
        rnn.ElmanRNN(hidden_size=4, activation="relu").init(jax.random.key(0), np.ones((1, 2, 3), np.float32))


def test_initial_state_is_used():
    x = _normal(0, (2, 3, 2))
    params = {"cell": _cell_params(2, 3, seed=5)}
    h0 = np.full((2, 3), 0.7, np.float32)
    got = _apply(rnn.ElmanRNN(hidden_size=3), {"params": params}, x, h0)
    expected = _notes_recurrence(x, params["cell"], np.tanh, h0=h0)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_equivalent_to_flax_simple_cell_with_the_same_weights():
    x = _normal(0, (3, 6, 4))
    ours, theirs = nn.RNN(rnn.ElmanCell(features=5)), nn.RNN(nn.SimpleCell(features=5))
    our_params = {"cell": _cell_params(4, 5, seed=2)}
    their_init = jax.eval_shape(theirs.init, jax.random.key(3), x)["params"]
    # flax 0.12.8's SimpleCell: Dense 'i' with a bias, Dense 'h' without one.
    assert jax.tree.map(jnp.shape, their_init["cell"]) == {"i": {"kernel": (4, 5), "bias": (5,)},
                                                           "h": {"kernel": (5, 5)}}
    # Ours -> SimpleCell: the two biases add up.
    our_h = _apply(ours, {"params": our_params}, x)
    converted = {"cell": rnn.to_simple_cell_params(our_params["cell"])}
    np.testing.assert_allclose(our_h, _apply(theirs, {"params": converted}, x), rtol=1e-5, atol=1e-6)
    # SimpleCell -> ours: b_hh = 0.
    their_params = {"cell": {"i": {"kernel": _normal(7, (4, 5)), "bias": _normal(8, (5,))},
                             "h": {"kernel": _normal(9, (5, 5), 0.5)}}}
    back = {"cell": rnn.from_simple_cell_params(their_params["cell"])}
    np.testing.assert_allclose(_apply(ours, {"params": back}, x), _apply(theirs, {"params": their_params}, x),
                               rtol=1e-5, atol=1e-6)
    # Our flax.linen.scan-based ElmanRNN agrees with nn.RNN over the same cell.
    scanned = _apply(rnn.ElmanRNN(hidden_size=5), {"params": our_params}, x)
    np.testing.assert_allclose(scanned, our_h, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------
# The classifier
# ---------------------------------------------------------------------------------------------------------

VOCAB, CLASSES, EMBED, HIDDEN = 30, 3, 8, 12


def _classifier(**kwargs):
    return rnn.RNNClassifier(vocab_size=VOCAB, num_classes=CLASSES, embed_dim=EMBED, hidden_size=HIDDEN,
                             **kwargs)


@functools.cache
def _classifier_params():
    """Random params with every leaf non-zero, in the structure the module's init produces (checked)."""
    tokens, length = np.ones((2, 3), np.int32), np.array([3, 1], np.int32)
    shapes = jax.eval_shape(_classifier().init, jax.random.key(0), tokens, length)["params"]
    assert jax.tree.map(jnp.shape, shapes) == {
        "embed": {"embedding": (VOCAB, EMBED)},
        "rnn": {"cell": {"i": {"kernel": (EMBED, HIDDEN), "bias": (HIDDEN,)},
                         "h": {"kernel": (HIDDEN, HIDDEN), "bias": (HIDDEN,)}}},
        "out": {"kernel": (HIDDEN, CLASSES), "bias": (CLASSES,)}}
    return {"embed": {"embedding": _normal(10, (VOCAB, EMBED))},
            "rnn": {"cell": _cell_params(EMBED, HIDDEN, seed=11)},
            "out": {"kernel": _normal(15, (HIDDEN, CLASSES)), "bias": _normal(16, (CLASSES,))}}


def _reference_logits(params, tokens, length):
    """The notes' classifier in numpy: ŷ = W_hy h_T + b_y, h_T the state after the last real token."""
    x = params["embed"]["embedding"][tokens]
    h = _notes_recurrence(x, params["rnn"]["cell"], np.tanh)
    h_T = h[np.arange(len(tokens)), length - 1]
    return h_T @ params["out"]["kernel"] + params["out"]["bias"]


def test_classifier_shapes_and_last_step_readout():
    params = _classifier_params()
    tokens = np.random.default_rng(0).integers(1, VOCAB, (4, 9)).astype(np.int32)
    length = np.array([9, 1, 5, 3], np.int32)
    logits = _apply(_classifier(), {"params": params}, tokens, length)
    chex.assert_shape(logits, (4, CLASSES))
    chex.assert_tree_all_finite(logits)
    # ŷ = W_hy h_T + b_y with h_T the state after each row's last real token (notes, section 4).
    np.testing.assert_allclose(logits, _reference_logits(params, tokens, length), rtol=1e-5, atol=1e-5)


class PaddingInvarianceTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    def test_padding_never_changes_logits(self):
        model, params = _classifier(), _classifier_params()
        sentences = [[5, 9, 2, 17, 4], [3], [8, 8, 1, 2, 29, 11, 6]]
        length = np.array([len(s) for s in sentences], np.int32)
        rng = np.random.default_rng(0)

        def padded(T, garbage=False):
            pad = lambda n: rng.integers(1, VOCAB, n).tolist() if garbage else [0] * n  # noqa: E731
            return np.array([s + pad(T - len(s)) for s in sentences], np.int32)

        apply = self.variant(lambda tokens, lengths: model.apply({"params": params}, tokens, lengths))
        logits_7 = np.asarray(apply(padded(7), length))
        logits_20 = np.asarray(apply(padded(20), length))
        np.testing.assert_allclose(logits_7, logits_20, rtol=1e-6, atol=1e-6)
        # Not even the content of the padded positions matters.
        np.testing.assert_allclose(apply(padded(20, garbage=True), length), logits_20, rtol=1e-6, atol=1e-6)
        # The test can fail: reading the final (padded) position instead changes the logits.
        reads_padding = apply(padded(20), np.full_like(length, 20))
        assert not np.allclose(logits_20, reads_padding, atol=1e-4)


def test_gradients_are_finite_and_padding_gets_none():
    model, params = _classifier(), _classifier_params()
    tokens = np.array([[4, 5, 6, 0, 0], [7, 8, 9, 10, 11], [12, 0, 0, 0, 0]], np.int32)
    length = np.array([3, 5, 1], np.int32)
    labels = np.array([0, 2, 1], np.int32)

    @jax.jit
    def grad(p):
        def loss(p):
            logits = model.apply({"params": p}, tokens, length)
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        return jax.grad(loss)(p)

    grads = grad(params)
    chex.assert_tree_all_finite(grads)
    for path, g in jax.tree_util.tree_leaves_with_path(grads):
        assert float(jnp.abs(g).max()) > 0, jax.tree_util.keystr(path)
    embed_grad = np.asarray(grads["embed"]["embedding"])
    assert np.all(embed_grad[0] == 0.0)  # the padding id only sits after each row's last real token
    assert np.all(embed_grad[13:] == 0.0) and np.any(embed_grad[4] != 0.0)


def test_dropout():
    params = {"params": _classifier_params()}
    model = _classifier(dropout_rate=0.5)
    tokens = np.random.default_rng(0).integers(1, VOCAB, (4, 9)).astype(np.int32)
    length = np.array([9, 1, 5, 3], np.int32)
    eval_logits = _apply(model, params, tokens, length)  # deterministic=True by default: no dropout
    np.testing.assert_allclose(eval_logits, _reference_logits(params["params"], tokens, length), rtol=1e-5,
                               atol=1e-5)
    train = jax.jit(lambda key: model.apply(params, tokens, length, deterministic=False,
                                            rngs={"dropout": key}))
    train_a, train_b = train(jax.random.key(2, impl="rbg")), train(jax.random.key(3, impl="rbg"))  # compiles faster
    assert not np.allclose(train_a, eval_logits) and not np.allclose(train_a, train_b)
    with pytest.raises(Exception, match="dropout"):  # flax: no 'dropout' rng given (fails while tracing)
        jax.eval_shape(lambda: model.apply(params, tokens, length, deterministic=False))


def test_last_hidden_clips_padding_rows():
    h = np.arange(2 * 4 * 1, dtype=np.float32).reshape(2, 4, 1)
    np.testing.assert_array_equal(rnn.last_hidden(h, np.array([0, 9]))[:, 0], [0.0, 7.0])
    np.testing.assert_array_equal(rnn.last_hidden(h, np.array([2, 1]))[:, 0], [1.0, 4.0])
