"""Tests for vaecnn.models.text_cnn (Kim 2014 CNN, the notes' toy network).

XLA compiles dominate the runtime on CPU, so the tests share a few cached (model, variables)
pairs and jitted functions instead of compiling per test.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from absl.testing import parameterized

from vaecnn import arith
from vaecnn.models import text_cnn as tc
from vaecnn.models import toy_cnn
from vaecnn.models.text_cnn import TextCNN

# Shared small configuration: V words, D features, three widths, one of them (5) wider
# than the short rows below.
V, D, K = 20, 6, 3
WIDTHS, CHANNELS = (2, 3, 5), (3, 4, 2)
TOKENS = jnp.array(
    [
        [5, 7, 9, 11, 13, 2, 4, 6, 8],  # full row, no padding
        [3, 4, 19, 1, 0, 0, 0, 0, 0],  # length 4 < 5
        [8, 0, 0, 0, 0, 0, 0, 0, 0],  # length 1 < every width
        [12, 14, 16, 18, 10, 17, 0, 0, 0],
    ],
    dtype=jnp.int32,
)
LENGTHS = np.array([9, 4, 1, 6])
LABELS = jnp.array([0, 1, 2, 1])


def _key(seed):
    # rbg keys: much cheaper XLA compiles on CPU than threefry (keeps the tests fast).
    return jax.random.key(seed, impl="rbg")


def _params_size(tree):
    return sum(int(np.size(x)) for x in jax.tree_util.tree_leaves(tree))


def _pretrained():
    return np.asarray(np.random.default_rng(0).normal(size=(V, D)), np.float32)


@functools.cache
def _small(mode, wide=False):
    """(model, variables, jitted forward, jitted pooled_features, jitted grad) for a mode."""
    model = TextCNN(
        num_classes=K, vocab_size=V, embed_dim=D, widths=WIDTHS, channels=CHANNELS,
        embedding_mode=mode, pretrained=None if mode == "rand" else _pretrained(), wide=wide,
    )
    variables = jax.jit(lambda k, t: model.init(k, t, deterministic=True))(_key(0), TOKENS)

    @jax.jit
    def forward(variables, tokens, length=None):
        return model.apply(variables, tokens, length, deterministic=True)

    @jax.jit
    def pooled(variables, x, length):
        return model.apply(variables, x, length, method=TextCNN.pooled_features)

    @jax.jit
    def grad(params):
        def loss(params):
            logits = model.apply({"params": params}, TOKENS, deterministic=True)
            return optax.softmax_cross_entropy_with_integer_labels(logits, LABELS).mean()

        return jax.grad(loss)(params)

    return model, variables, forward, pooled, grad


def _brute_force_pooled(x_BxTxD, length_B, params, wide=False):
    """numpy reference: relu(conv) max over valid windows; short rows: first window zero-padded.
    wide: Kim's code, each sentence between k - 1 zero vectors on either side, every window."""
    x = np.asarray(x_BxTxD, np.float64)
    B, T, Dx = x.shape
    out = []
    for b in range(B):
        L = int(length_B[b])
        xb = x[b, :L]
        feats = []
        for i, k in enumerate(WIDTHS):
            W = np.asarray(params[f"convs_{i}"]["kernel"], np.float64)  # k x D x C
            bias = np.asarray(params[f"convs_{i}"]["bias"], np.float64)
            if wide:
                edge = np.zeros((k - 1, Dx))
                padded = np.concatenate([edge, xb, edge], axis=0)
                windows = [padded[s:s + k] for s in range(max(L, 1) + k - 1)]
            elif L >= k:
                windows = [xb[s:s + k] for s in range(L - k + 1)]
            else:
                windows = [np.concatenate([xb, np.zeros((k - L, Dx))], axis=0)]
            z = np.stack([np.einsum("kd,kdc->c", w, W) + bias for w in windows])
            feats.append(np.maximum(z, 0.0).max(axis=0))
        out.append(np.concatenate(feats))
    return np.stack(out)


def _brute_force_logits(tokens, params, mode):
    tables = []
    if mode in ("rand", "non-static", "multichannel"):
        tables.append(np.asarray(params["embedding"]))
    if mode in ("static", "multichannel"):
        tables.append(np.asarray(params["embedding_static"]))
    x = sum(t[np.asarray(tokens)] for t in tables)  # each filter on every channel, summed
    feat = _brute_force_pooled(x, LENGTHS, params)
    return feat @ np.asarray(params["dense"]["kernel"]) + np.asarray(params["dense"]["bias"])


# ----------------------------------------------------------------------------- toy table
@pytest.mark.parametrize("D_toy", [1, 3, 50, 300])
def test_toy_layer_table_matches_notes(D_toy):
    Dt = D_toy
    summary = toy_cnn.toy_summary(Dt)
    rows = {row.name: row for row in summary.rows}
    # The input, each convolution and its parameters, the pooled concatenation the dense layer reads.
    assert rows["TextCNN.classify_embedded"].input_shapes == ((1, 11, Dt),)
    assert (rows["convs_0"].output_shapes, rows["convs_0"].params) == (((1, 10, 4),), 2 * Dt * 4 + 4)
    assert (rows["convs_1"].output_shapes, rows["convs_1"].params) == (((1, 8, 5),), 4 * Dt * 5 + 5)
    assert rows["TextCNN.pooled_features"].output_shapes == ((1, 4 + 5),)
    assert rows["dense"].input_shapes == ((1, 9),)
    assert (rows["dense"].output_shapes, rows["dense"].params) == (((1, 2),), 9 * 2 + 2) == (((1, 2),), 20)
    assert rows["TextCNN.classify_embedded"].output_shapes == ((1, 2),)  # the softmax keeps the 2 logits' shape

    # Each max-pool keeps one value per channel: the sown pooled vectors are 4 and 5. (Shapes only:
    # jax.eval_shape traces the model's init and apply without compiling them.)
    model = toy_cnn.toy_model(Dt)
    x = jnp.zeros((1, 11, Dt))
    shapes = jax.eval_shape(
        lambda k: model.init(k, x, method=TextCNN.classify_embedded, deterministic=True), _key(0))
    _, state = jax.eval_shape(lambda variables: model.apply(variables, x, method=TextCNN.predict_proba_embedded,
                                                            mutable=["intermediates"]), shapes)
    inter = {name: value[0].shape for name, value in state["intermediates"].items()}
    assert inter["pool0"] == (1, 4) and inter["pool1"] == (1, 5) and inter["concat"] == (1, 9)
    assert inter["softmax"] == (1, 2)

    # Total = size of the parameter tree of the toy model's init (its shapes, above).
    total = sum(r.params for r in summary.rows)
    assert total == summary.total_params == arith.count_params(shapes["params"])
    assert total == (2 * Dt * 4 + 4) + (4 * Dt * 5 + 5) + 20
    assert set(shapes["params"]) == {"convs_0", "convs_1", "dense"}  # no embedding layer

    text = arith.format_summary(summary)
    last = text.splitlines()[-1].split()
    assert last[0] == "total" and last[1] == f"{total:,}"
    assert "(1, 10, 4)" in text and "(1, 8, 5)" in text


def test_toy_network_runs_on_an_11xD_matrix():
    assert toy_cnn.TOY_NETWORK.seq_len == 11
    assert (toy_cnn.TOY_NETWORK.widths, toy_cnn.TOY_NETWORK.channels) == ((2, 4), (4, 5))
    assert toy_cnn.TOY_NETWORK.num_classes == 2
    cfg = toy_cnn.toy_config(3)
    assert cfg["widths"] == (2, 4) and cfg["channels"] == (4, 5) and cfg["num_classes"] == 2
    model = toy_cnn.toy_model(3)
    x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 11, 3)), jnp.float32)

    @jax.jit
    def run(x):
        variables = model.init(_key(0), x, method=TextCNN.classify_embedded, deterministic=True)
        return model.apply(variables, x, method=TextCNN.predict_proba_embedded)

    probs = run(x)
    chex.assert_shape(probs, (2, 2))
    np.testing.assert_allclose(np.asarray(probs).sum(-1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="no embedding layer"):
        model.init(_key(0), jnp.ones((1, 11), jnp.int32), deterministic=True)


def test_kim_default_shapes_and_param_count():
    Vk, Dk, Kk, B, T = 40, 16, 2, 4, 12
    model = TextCNN(num_classes=Kk, vocab_size=Vk, embed_dim=Dk)
    assert tuple(model.widths) == (3, 4, 5) and tuple(model.channels) == (100, 100, 100)
    assert model.dropout_rate == 0.5 and model.embedding_mode == "rand"
    tokens = jnp.asarray(np.random.default_rng(1).integers(1, Vk, size=(B, T)), jnp.int32)

    @jax.jit
    def run(key, tokens):
        variables = model.init(key, tokens, deterministic=True)
        logits, state = model.apply(
            variables, tokens, deterministic=True, mutable=["intermediates"]
        )
        probs = model.apply(variables, tokens, method=TextCNN.predict_proba)
        dropped = model.apply(variables, tokens, deterministic=False, rngs={"dropout": _key(1)})
        return variables, logits, state["intermediates"], probs, dropped

    variables, logits, inter, probs, dropped = run(_key(0), tokens)
    params = variables["params"]
    expected = Vk * Dk + sum(k * Dk * 100 + 100 for k in (3, 4, 5)) + 300 * Kk + Kk
    assert arith.count_params(params) == expected == _params_size(params)
    chex.assert_shape(params["embedding"], (Vk, Dk))
    for i, k in enumerate((3, 4, 5)):
        chex.assert_shape(params[f"convs_{i}"]["kernel"], (k, Dk, 100))
        chex.assert_shape(inter[f"conv{i}"][0], (B, T - k + 1, 100))
        chex.assert_shape(inter[f"pool{i}"][0], (B, 100))
    chex.assert_shape(params["dense"]["kernel"], (300, Kk))
    chex.assert_shape(inter["concat"][0], (B, 300))
    np.testing.assert_array_equal(np.asarray(params["embedding"][0]), 0.0)
    assert np.abs(np.asarray(params["embedding"][1:])).max() <= 0.25  # Kim's U[-0.25, 0.25]

    chex.assert_shape(logits, (B, Kk))
    chex.assert_tree_all_finite(logits)
    np.testing.assert_allclose(np.asarray(probs), np.asarray(jax.nn.softmax(logits)), rtol=1e-5)
    # Dropout is active only when deterministic=False.
    chex.assert_shape(dropped, (B, Kk))
    assert not np.allclose(np.asarray(dropped), np.asarray(logits))


def test_config_errors():
    def init(**kw):
        TextCNN(num_classes=2, **kw).init(_key(0), jnp.ones((1, 6), jnp.int32),
                                          deterministic=True)

    with pytest.raises(ValueError, match="same length"):
        init(vocab_size=5, embed_dim=3, widths=(3, 4), channels=(5,))
    with pytest.raises(ValueError, match="embedding_mode"):
        init(vocab_size=5, embed_dim=3, embedding_mode="frozen")
    with pytest.raises(ValueError, match="pretrained"):
        init(vocab_size=5, embed_dim=3, embedding_mode="static")
    with pytest.raises(ValueError, match="pretrained=None"):
        init(embedding_mode="rand", pretrained=np.zeros((5, 3), np.float32))
    with pytest.raises(ValueError, match="make them match"):
        init(embedding_mode="static", pretrained=np.zeros((5, 3), np.float32), embed_dim=4)
    with pytest.raises(ValueError, match="needs embed_dim"):
        init(vocab_size=5)
    # V and D may be left to the pretrained matrix.
    model = TextCNN(num_classes=2, embedding_mode="non-static",
                    pretrained=np.zeros((5, 3), np.float32))
    shapes = jax.eval_shape(
        lambda k: model.init(k, jnp.ones((1, 6), jnp.int32), deterministic=True), _key(0))
    assert shapes["params"]["embedding"].shape == (5, 3)


# ----------------------------------------------------------------------------- padding
def test_pooled_features_match_brute_force_including_short_rows():
    _, variables, _, pooled, _ = _small("rand")
    x = jnp.asarray(np.random.default_rng(3).normal(size=(4, 9, D)), jnp.float32)
    out = pooled(variables, x, jnp.asarray(LENGTHS))
    expected = _brute_force_pooled(x, LENGTHS, variables["params"])
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-5, atol=1e-5)
    # Length 0 (no word at all) is well defined too: relu(bias) from the all-zero window.
    out0 = pooled(variables, x, jnp.array([0, 9, 9, 9]))
    np.testing.assert_allclose(
        np.asarray(out0[0]), _brute_force_pooled(x[:1], [0], variables["params"])[0], atol=1e-6
    )


@pytest.mark.slow
def test_wide_convolution_matches_kims_explicit_zero_padding():
    """wide=True equals a narrow convolution of each sentence between k - 1 zero vectors on each
    side (Kim's code), with no window made only of padding; extra batch padding changes nothing."""
    model, variables, forward, pooled, _ = _small("rand", wide=True)
    x = jnp.asarray(np.random.default_rng(4).normal(size=(4, 9, D)), jnp.float32)
    expected = _brute_force_pooled(x, LENGTHS, variables["params"], wide=True)
    np.testing.assert_allclose(np.asarray(pooled(variables, x, jnp.asarray(LENGTHS))), expected,
                               rtol=1e-5, atol=1e-5)
    x_padded = jnp.pad(x, ((0, 0), (0, 6), (0, 0)), constant_values=40.0)  # junk past each length
    np.testing.assert_allclose(np.asarray(pooled(variables, x_padded, jnp.asarray(LENGTHS))), expected,
                               rtol=1e-5, atol=1e-5)
    assert not np.allclose(expected, _brute_force_pooled(x, LENGTHS, variables["params"]), atol=1e-3)
    _, intermediates = model.apply(variables, TOKENS, deterministic=True, mutable="intermediates")
    for i, k in enumerate(WIDTHS):  # T + k - 1 windows per layer
        assert intermediates["intermediates"][f"conv{i}"][0].shape == (4, 9 + k - 1, CHANNELS[i])
    mask = tc.valid_window_mask(jnp.array([5, 1, 0]), num_windows=7, width=3, wide=True)
    np.testing.assert_array_equal(np.asarray(mask), [[1] * 7, [1, 1, 1, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0, 0]])


def test_padding_would_win_without_mask():
    """Real windows are all negative pre-ReLU; padding windows give relu(bias) = 1."""
    _, variables, _, pooled, _ = _small("rand")
    params = dict(variables["params"])
    for i, (k, c) in enumerate(zip(WIDTHS, CHANNELS)):
        params[f"convs_{i}"] = {"kernel": -jnp.ones((k, D, c)), "bias": jnp.ones((c,))}
    x = jnp.ones((4, 9, D))  # real words are all-ones vectors
    length = jnp.array([9, 6, 5, 7])  # >= every width: only complete windows count
    out = pooled({"params": params}, x, length)
    np.testing.assert_array_equal(np.asarray(out), 0.0)  # relu(-k*D + 1) = 0
    # Without the mask a padding window (zeros . W + b = 1) would have won the max:
    assert 1.0 > 0.0 == float(np.asarray(out).max())
    np.testing.assert_allclose(np.asarray(out), _brute_force_pooled(x, np.asarray(length), params))
    # ... and the same x without any padding (length 9) gives 0 as well: padding never leaks.
    np.testing.assert_array_equal(np.asarray(pooled({"params": params}, x, jnp.full((4,), 9))), 0.0)


def test_extra_padding_does_not_change_logits():
    model, variables, forward, _, _ = _small("rand")
    # Make the padding row large so any leak of padding would show.
    params = dict(variables["params"])
    params["embedding"] = params["embedding"].at[0].set(50.0)
    variables = {"params": params}
    base = forward(variables, TOKENS)
    np.testing.assert_allclose(
        np.asarray(base), _brute_force_logits(TOKENS, params, "rand"), rtol=1e-5, atol=1e-5
    )
    padded = jnp.pad(TOKENS, ((0, 0), (0, 7)))
    np.testing.assert_allclose(np.asarray(forward(variables, padded)), np.asarray(base),
                               rtol=1e-6, atol=1e-6)
    # The length-1 row alone: T = 1 < widest kernel, padded to T = 5 inside the model.
    alone = forward(variables, TOKENS[2:3, :1])
    np.testing.assert_allclose(np.asarray(alone[0]), np.asarray(base[2]), rtol=1e-5, atol=1e-5)
    # Explicit lengths override tokens != 0: junk after the length is ignored.
    junk = jnp.where(padded == 0, 17, padded)
    np.testing.assert_allclose(
        np.asarray(forward(variables, junk, jnp.asarray(LENGTHS))), np.asarray(base),
        rtol=1e-6, atol=1e-6,
    )


def test_sequence_lengths():
    np.testing.assert_array_equal(np.asarray(tc.sequence_lengths(TOKENS)), LENGTHS)
    tokens = jnp.array([[1, 2, 0, 0], [0, 0, 0, 0], [3, 0, 4, 0], [1, 1, 1, 1]])
    np.testing.assert_array_equal(np.asarray(tc.sequence_lengths(tokens)), [2, 0, 3, 4])
    mask = tc.valid_window_mask(jnp.array([5, 2]), num_windows=4, width=3)
    np.testing.assert_array_equal(np.asarray(mask), [[1, 1, 1, 0], [1, 0, 0, 0]])


# ----------------------------------------------------------------------------- embedding modes
def test_static_mode_zero_gradient():
    _, variables, _, _, grad = _small("static")
    params = variables["params"]
    grads = grad(params)
    assert set(params) == {"embedding_static", "convs_0", "convs_1", "convs_2", "dense"}
    np.testing.assert_array_equal(np.asarray(params["embedding_static"]), _pretrained())
    np.testing.assert_array_equal(np.asarray(grads["embedding_static"]), 0.0)
    assert np.abs(np.asarray(grads["convs_0"]["kernel"])).sum() > 0
    chex.assert_tree_all_finite(grads)
    # An optimiser step leaves the table unchanged.
    opt = optax.sgd(1.0)

    @jax.jit
    def sgd_step(params, grads):
        updates, _ = opt.update(grads, opt.init(params), params)
        return optax.apply_updates(params, updates)

    new = sgd_step(params, grads)
    np.testing.assert_array_equal(np.asarray(new["embedding_static"]), _pretrained())


def test_non_static_mode_nonzero_gradient():
    _, variables, _, _, grad = _small("non-static")
    params = variables["params"]
    grads = grad(params)
    assert set(params) == {"embedding", "convs_0", "convs_1", "convs_2", "dense"}
    np.testing.assert_array_equal(np.asarray(params["embedding"]), _pretrained())
    g = np.asarray(grads["embedding"])
    assert np.abs(g).sum() > 0
    np.testing.assert_array_equal(g[0], 0.0)  # padding row: masked out of every window
    chex.assert_tree_all_finite(grads)


def test_rand_mode_gradient_finite_with_short_rows():
    _, variables, _, _, grad = _small("rand")
    grads = grad(variables["params"])
    chex.assert_tree_all_finite(grads)
    assert np.abs(np.asarray(grads["embedding"])).sum() > 0


def test_multichannel_structure_and_gradients():
    _, variables, forward, _, grad = _small("multichannel")
    params = variables["params"]
    grads = grad(params)
    assert set(params) == {"embedding", "embedding_static", "convs_0", "convs_1", "convs_2",
                           "dense"}
    np.testing.assert_array_equal(np.asarray(params["embedding"]), _pretrained())
    np.testing.assert_array_equal(np.asarray(params["embedding_static"]), _pretrained())
    # One set of filters shared by both channels: same shapes as a single channel.
    for i, (k, c) in enumerate(zip(WIDTHS, CHANNELS)):
        chex.assert_shape(params[f"convs_{i}"]["kernel"], (k, D, c))
    np.testing.assert_array_equal(np.asarray(grads["embedding_static"]), 0.0)
    assert np.abs(np.asarray(grads["embedding"])).sum() > 0
    mask = tc.trainable_mask(params)
    assert mask["embedding_static"] is False and mask["embedding"] is True
    assert mask["dense"]["kernel"] is True

    # Each filter is applied to both channels and the results added (one bias): compare with
    # the numpy reference after making the two channels differ.
    params = dict(params)
    params["embedding"] = params["embedding"] + 0.5
    np.testing.assert_allclose(
        np.asarray(forward({"params": params}, TOKENS)),
        _brute_force_logits(TOKENS, params, "multichannel"), rtol=1e-5, atol=1e-5,
    )


# ----------------------------------------------------------------------------- jit vs no jit
class JitTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters("rand", "multichannel")
    def test_jit_and_eager_match_reference(self, mode):
        model, variables, jitted_forward, _, _ = _small(mode)

        @self.variant
        def forward(v, t):
            return model.apply(v, t, deterministic=True)

        logits = forward(variables, TOKENS)
        chex.assert_shape(logits, (TOKENS.shape[0], K))
        np.testing.assert_allclose(
            np.asarray(logits), _brute_force_logits(TOKENS, variables["params"], mode),
            rtol=1e-5, atol=1e-5,
        )
        np.testing.assert_allclose(
            np.asarray(logits), np.asarray(jitted_forward(variables, TOKENS)), rtol=1e-6, atol=1e-6
        )
