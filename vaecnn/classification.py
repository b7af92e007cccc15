"""Classification as an engine.Task: softmax cross-entropy and accuracy, shared by every classifier
(the image CNN and dense net, the Elman RNN, the Kim text CNN)."""

import dataclasses
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax


def classification_metrics(logits_BxC: jax.Array, labels_B: jax.Array, mask_B: jax.Array) -> dict[str, jax.Array]:
    """Sums over real examples: cross-entropy (nats), correct predictions, count."""
    cross_entropy_B = optax.softmax_cross_entropy_with_integer_labels(logits_BxC, labels_B)
    correct_B = (jnp.argmax(logits_BxC, axis=-1) == labels_B).astype(jnp.float32)
    return {"loss": jnp.sum(cross_entropy_B * mask_B), "accuracy": jnp.sum(correct_B * mask_B),
            "count": jnp.sum(mask_B)}


@dataclasses.dataclass(frozen=True)
class ClassifierTask:
    """Minimise the mean cross-entropy of `model` on batch['label'].

    The model is called as model.apply({'params': p}, *[batch[f] for f in input_fields],
    deterministic=...), with the 'dropout' rng stream in training; it returns logits_BxC.
    """
    model: nn.Module
    input_fields: Sequence[str]
    label_field: str = "label"

    def _logits(self, params, batch, key, deterministic: bool) -> jax.Array:
        inputs = [batch[field] for field in self.input_fields]
        rngs = None if deterministic else {"dropout": key}
        return self.model.apply({"params": params}, *inputs, deterministic=deterministic, rngs=rngs)

    def init_params(self, key, batch):
        params_key, dropout_key = jax.random.split(key)
        inputs = [batch[field] for field in self.input_fields]
        return self.model.init({"params": params_key, "dropout": dropout_key}, *inputs, deterministic=True)["params"]

    def loss(self, params, batch, key):
        metrics = classification_metrics(self._logits(params, batch, key, deterministic=False),
                                         batch[self.label_field], batch["mask"])
        return metrics["loss"] / jnp.maximum(metrics["count"], 1.0), metrics

    def evaluate(self, params, batch, key):
        del key  # evaluation is deterministic
        return classification_metrics(self._logits(params, batch, None, deterministic=True),
                                      batch[self.label_field], batch["mask"])

    def predict_proba(self, params, batch) -> jax.Array:
        """Class probabilities [B, C]."""
        return jax.nn.softmax(self._logits(params, batch, None, deterministic=True), axis=-1)
