"""The notes' worked example of section 5, "Tensor size calculation": Kim's CNN on one sentence of 11
words, widths (2, 4) with (4, 5) channels, 2 classes, as a TextCNN without an embedding layer."""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from vaecnn import arith
from vaecnn.models.text_cnn import TextCNN


@dataclasses.dataclass(frozen=True)
class ToyNetwork:
    """Section 5's worked example: 11 words, widths (2, 4) with (4, 5) channels, 2 classes."""

    seq_len: int = 11
    widths: tuple[int, ...] = (2, 4)
    channels: tuple[int, ...] = (4, 5)
    num_classes: int = 2


TOY_NETWORK = ToyNetwork()


def toy_config(embed_dim: int) -> dict[str, Any]:
    """``TextCNN`` keyword arguments of the toy network for D = ``embed_dim``.

    No embedding layer (``vocab_size=0``: the input is the 11xD matrix, use
    ``classify_embedded``) and no dropout (the notes have none).
    """
    return dict(
        num_classes=TOY_NETWORK.num_classes,
        widths=TOY_NETWORK.widths,
        channels=TOY_NETWORK.channels,
        embed_dim=int(embed_dim),
        vocab_size=0,
        dropout_rate=0.0,
        embedding_mode="rand",
    )


def toy_model(embed_dim: int) -> TextCNN:
    return TextCNN(**toy_config(embed_dim))


def toy_summary(embed_dim: int) -> arith.ModelSummary:
    """The toy network for D = embed_dim, layer by layer, by the summary of any flax model
    (vaecnn.arith.summarize: the real init on a 1x11xD input, traced for shapes only).

    The notes' sizes (section 5): conv k=2 reads 11xD and gives 10x4 with 2*D*4 + 4 parameters, conv
    k=4 gives 8x5 with 4*D*5 + 5; max-pooling keeps one value per channel (4 and 5), so the dense layer
    reads their concatenation, 9, and gives the 2 logits with 9*2 + 2 = 20 parameters.
    """
    model = toy_model(embed_dim)
    return arith.summarize(model, jax.ShapeDtypeStruct((1, TOY_NETWORK.seq_len, int(embed_dim)), jnp.float32),
                           method=TextCNN.classify_embedded, deterministic=True)
