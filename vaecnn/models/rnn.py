"""Elman recurrent network for sentence classification, following section 4 of the course notes.

The notes' recurrence, for t = 1 .. T::

    h_t = σ(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)          (h_0 = 0)
    y_t = W_hy h_t + b_y

and for sentiment classification the prediction is read from the LAST time step: ŷ = W_hy h_T + b_y.

* :class:`ElmanCell` is exactly one step of that recurrence, with separate ``W_ih, b_ih`` (the Dense layer
  ``i``) and ``W_hh, b_hh`` (the Dense layer ``h``). The activation σ is ``"tanh"`` (default, as in flax and
  PyTorch) or ``"sigmoid"`` (the notes' σ).
* :class:`ElmanRNN` scans the cell over time (``flax.linen.scan``) and returns every hidden state.
* :class:`RNNClassifier`: embedding -> (dropout) -> Elman RNN -> h at each sequence's last REAL token
  (position ``length - 1``, gathered, so right-padding never changes a prediction) -> (dropout) ->
  ``W_hy h_T + b_y`` = logits.

Relation to ``flax.linen.SimpleCell`` (flax 0.12.8): SimpleCell computes ``act(W_i x + b_i + W_h h)`` with
params ``{'i': {'kernel', 'bias'}, 'h': {'kernel'}}`` -- one bias, since the two biases of the notes only
ever appear as their sum. :class:`ElmanCell` uses the same names and kernel layout (``kernel`` is
``[in, out]``, applied as ``x @ kernel``, i.e. ``W_ih = i.kernel.T``) plus ``h.bias``; see
:func:`to_simple_cell_params` / :func:`from_simple_cell_params`.

Shape suffixes: B batch, T time steps (tokens), D embedding features, H hidden units, C classes, V vocabulary.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vaecnn.config import option
from vaecnn.errors import ConfigError

Initializer = Callable[..., jax.Array]

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
}


def _activation(name: str) -> Callable[[jax.Array], jax.Array]:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]


class ElmanCell(nn.RNNCellBase):
    """One step of the notes' recurrence: ``h_t = σ(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``.

    Call as ``new_h_BxH, out_BxH = cell(h_BxH, x_BxD)`` (flax's cell convention; ``out`` is ``new_h``).
    Params: ``i`` (``kernel`` ``[D, H]`` = ``W_ih^T``, ``bias`` ``[H]`` = ``b_ih``) and ``h`` (``kernel``
    ``[H, H]`` = ``W_hh^T``, ``bias`` ``[H]`` = ``b_hh``).

    Attributes:
        features: ``H``, the number of hidden units.
        activation: ``"tanh"`` (default) or ``"sigmoid"``.
        kernel_init: initializer of ``W_ih`` (default LeCun normal, as flax's SimpleCell).
        recurrent_kernel_init: initializer of ``W_hh`` (default orthogonal, which keeps the recurrent map
            norm-preserving at initialization and helps gradients flow through time).
        bias_init: initializer of ``b_ih`` and ``b_hh`` (default zeros).
        carry_init: the initializer :meth:`initialize_carry` (flax's cell API, e.g. ``nn.RNN``) draws
            ``h_0`` from (default zeros, as in the notes); :class:`ElmanRNN` does not call it: its
            ``h_0`` is its ``h0_BxH`` argument, zeros by default.
    """

    features: int
    activation: str = "tanh"
    kernel_init: Initializer = nn.initializers.lecun_normal()
    recurrent_kernel_init: Initializer = nn.initializers.orthogonal()
    bias_init: Initializer = nn.initializers.zeros_init()
    carry_init: Initializer = nn.initializers.zeros_init()
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, carry_BxH: jax.Array, x_BxD: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Returns ``(h_t, h_t)`` for the previous state ``carry_BxH`` = ``h_{t-1}`` and input ``x_t``."""
        sigma = _activation(self.activation)
        dense = lambda name, init: nn.Dense(self.features, use_bias=True, kernel_init=init,  # noqa: E731
                                            bias_init=self.bias_init, dtype=self.dtype,
                                            param_dtype=self.param_dtype, name=name)
        h_BxH = sigma(dense("i", self.kernel_init)(x_BxD) + dense("h", self.recurrent_kernel_init)(carry_BxH))
        return h_BxH, h_BxH

    @nn.nowrap
    def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]) -> jax.Array:
        """``h_0`` for inputs of shape ``input_shape`` = ``(*batch, D)``: shape ``(*batch, H)``."""
        return self.carry_init(rng, (*input_shape[:-1], self.features), self.param_dtype)

    @property
    def num_feature_axes(self) -> int:
        return 1


def to_simple_cell_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """:class:`ElmanCell` params -> ``nn.SimpleCell`` params computing the same function.

    SimpleCell has a single bias: ``i.bias = b_ih + b_hh``.
    """
    return {"i": {"kernel": params["i"]["kernel"], "bias": params["i"]["bias"] + params["h"]["bias"]},
            "h": {"kernel": params["h"]["kernel"]}}


def from_simple_cell_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``nn.SimpleCell`` params -> :class:`ElmanCell` params computing the same function (``b_hh = 0``)."""
    return {"i": {"kernel": params["i"]["kernel"], "bias": params["i"]["bias"]},
            "h": {"kernel": params["h"]["kernel"], "bias": jnp.zeros_like(params["i"]["bias"])}}


class ElmanRNN(nn.Module):
    """Runs an :class:`ElmanCell` over time with ``flax.linen.scan`` (one set of weights for every step).

    Attributes:
        hidden_size: ``H``.
        activation, kernel_init, recurrent_kernel_init, bias_init: passed to :class:`ElmanCell`.
        unroll: ``lax.scan`` unroll factor (a speed knob; the result is the same).
    """

    hidden_size: int
    activation: str = "tanh"
    kernel_init: Initializer = nn.initializers.lecun_normal()
    recurrent_kernel_init: Initializer = nn.initializers.orthogonal()
    bias_init: Initializer = nn.initializers.zeros_init()
    unroll: int = 1
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x_BxTxD: jax.Array, h0_BxH: jax.Array | None = None) -> jax.Array:
        """Returns all hidden states ``h_BxTxH`` (``h_BxTxH[:, t]`` is ``h_{t+1}`` of the notes).

        Args:
            x_BxTxD: the input sequence.
            h0_BxH: the initial state (default zeros).
        """
        scan = nn.scan(ElmanCell, variable_broadcast="params", split_rngs={"params": False},
                       in_axes=1, out_axes=1, unroll=self.unroll)
        cell = scan(self.hidden_size, activation=self.activation, kernel_init=self.kernel_init,
                    recurrent_kernel_init=self.recurrent_kernel_init, bias_init=self.bias_init,
                    dtype=self.dtype, param_dtype=self.param_dtype, name="cell")
        if h0_BxH is None:
            h0_BxH = jnp.zeros((x_BxTxD.shape[0], self.hidden_size), self.dtype or x_BxTxD.dtype)
        _, h_BxTxH = cell(h0_BxH, x_BxTxD)
        return h_BxTxH


def last_hidden(h_BxTxH: jax.Array, length_B: jax.Array) -> jax.Array:
    """Gathers ``h_BxH[b] = h_BxTxH[b, length_B[b] - 1]``, the state after each sequence's last real token.

    Lengths are clipped to ``[1, T]`` so that padding rows of an evaluation batch (length 0 or 1) read a
    valid position.
    """
    T = h_BxTxH.shape[1]
    idx_B = jnp.clip(jnp.asarray(length_B, jnp.int32) - 1, 0, T - 1)
    return jnp.take_along_axis(h_BxTxH, idx_B[:, None, None], axis=1)[:, 0]


class RNNClassifier(nn.Module):
    """Embedding -> Elman RNN -> last real hidden state -> ``W_hy h_T + b_y`` (logits).

    Attributes:
        vocab_size: ``V`` (rows of the embedding table; id 0 is padding, never read for the prediction).
        num_classes: ``C``.
        embed_dim: ``D``.
        hidden_size: ``H``.
        activation: ``"tanh"`` (default) or ``"sigmoid"`` (the notes' σ).
        dropout_rate: dropout on the embeddings and on ``h_T`` when ``deterministic=False`` (rng stream
            ``'dropout'``); 0 disables it.
        embedding_init: default ``normal(0.1)``; pass e.g. a constant initializer holding pretrained
            word vectors.
        kernel_init: ``W_ih`` (default LeCun normal).
        recurrent_kernel_init: ``W_hh`` (default orthogonal).
        bias_init: ``b_ih``, ``b_hh`` (default zeros).
        output_kernel_init: ``W_hy`` (default LeCun normal); its bias ``b_y`` starts at zero.
        unroll: ``lax.scan`` unroll factor.
    """

    vocab_size: int
    num_classes: int
    embed_dim: int = 128
    hidden_size: int = 128
    activation: str = "tanh"
    dropout_rate: float = 0.0
    embedding_init: Initializer = nn.initializers.normal(stddev=0.1)
    kernel_init: Initializer = nn.initializers.lecun_normal()
    recurrent_kernel_init: Initializer = nn.initializers.orthogonal()
    bias_init: Initializer = nn.initializers.zeros_init()
    output_kernel_init: Initializer = nn.initializers.lecun_normal()
    unroll: int = 1
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, tokens_BxT: jax.Array, length_B: jax.Array, *,
                 deterministic: bool = True) -> jax.Array:
        """Returns ``logits_BxC``.

        Args:
            tokens_BxT: int token ids, right-padded with 0.
            length_B: the number of real tokens of each row (>= 1; clipped to ``[1, T]``).
            deterministic: ``False`` applies dropout (needs ``rngs={'dropout': key}``).
        """
        _activation(self.activation)  # fail early on a bad name
        x_BxTxD = nn.Embed(self.vocab_size, self.embed_dim, embedding_init=self.embedding_init,
                           dtype=self.dtype, param_dtype=self.param_dtype, name="embed")(tokens_BxT)
        if self.dropout_rate > 0:
            x_BxTxD = nn.Dropout(self.dropout_rate)(x_BxTxD, deterministic=deterministic)
        h_BxTxH = ElmanRNN(self.hidden_size, activation=self.activation, kernel_init=self.kernel_init,
                           recurrent_kernel_init=self.recurrent_kernel_init, bias_init=self.bias_init,
                           unroll=self.unroll, dtype=self.dtype, param_dtype=self.param_dtype,
                           name="rnn")(x_BxTxD)
        h_BxH = last_hidden(h_BxTxH, length_B)
        if self.dropout_rate > 0:
            h_BxH = nn.Dropout(self.dropout_rate)(h_BxH, deterministic=deterministic)
        return nn.Dense(self.num_classes, kernel_init=self.output_kernel_init, dtype=self.dtype,
                        param_dtype=self.param_dtype, name="out")(h_BxH)


@dataclasses.dataclass(frozen=True)
class RNNConfig:
    """The Elman RNN classifier of a text run (experiments.rnn_sentiment's model flags)."""
    KIND: ClassVar[str] = "rnn"
    embed_dim: int = option(300, "Word-embedding size (randomly initialised).", lower_bound=1)
    hidden_size: int = option(300, "Hidden units H of the Elman RNN.", lower_bound=1)
    activation: str = option("tanh", "σ of the recurrence.", choices=sorted(ACTIVATIONS))
    dropout: float = option(0.5, "Dropout rate (embeddings and h_T).", lower_bound=0.0, upper_bound=0.99)

    def __post_init__(self):
        if self.activation not in ACTIVATIONS or min(self.embed_dim, self.hidden_size) < 1 \
                or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"--activation must be one of {', '.join(ACTIVATIONS)}, --embed_dim and --hidden_size "
                              f">= 1, --dropout in [0, 1); got {self.activation!r}, {self.embed_dim}, "
                              f"{self.hidden_size}, {self.dropout}")

    def build(self, vocab_size: int, num_classes: int, pretrained_VxD: np.ndarray | None = None) -> RNNClassifier:
        if pretrained_VxD is not None:
            raise ConfigError("the RNN embeds words at random; pretrained vectors belong to the CNN")
        return RNNClassifier(vocab_size, num_classes, embed_dim=self.embed_dim, hidden_size=self.hidden_size,
                             activation=self.activation, dropout_rate=self.dropout)
