"""Optimizers from a few flags: Adam/AdamW/Adadelta/SGD, a learning-rate schedule, clipping, and
Kim's max-norm constraint as an optax transformation."""

from typing import Any

import jax
import jax.numpy as jnp
import optax

from vaecnn.errors import ConfigError

OPTIMIZERS = ("adam", "adamw", "adadelta", "sgd")
SCHEDULES = ("constant", "cosine", "warmup_cosine")


def learning_rate_schedule(learning_rate: float, total_steps: int, schedule: str = "constant",
                           warmup_steps: int = 0) -> optax.Schedule:
    """constant; cosine decay to 0 over total_steps; or linear warmup then cosine decay."""
    if schedule == "constant":
        return optax.constant_schedule(learning_rate)
    if schedule == "cosine":
        return optax.cosine_decay_schedule(learning_rate, max(total_steps, 1))
    if schedule == "warmup_cosine":
        return optax.warmup_cosine_decay_schedule(0.0, learning_rate, max(warmup_steps, 1), max(total_steps, 2))
    raise ConfigError(f"unknown learning-rate schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")


def make_optimizer(name: str, learning_rate: float, total_steps: int, schedule: str = "constant",
                   warmup_steps: int = 0, clip_norm: float | None = None,
                   weight_decay: float = 0.0) -> optax.GradientTransformation:
    """The optimizer, optionally preceded by clipping of the gradients' global norm."""
    if learning_rate <= 0:
        raise ConfigError(f"the learning rate must be positive, got {learning_rate}")
    lr = learning_rate_schedule(learning_rate, total_steps, schedule, warmup_steps)
    if name == "adam":
        optimizer = optax.adam(lr)
    elif name == "adamw":
        optimizer = optax.adamw(lr, weight_decay=weight_decay)
    elif name == "adadelta":
        optimizer = optax.adadelta(lr, rho=0.95, eps=1e-6)
    elif name == "sgd":
        optimizer = optax.sgd(lr, momentum=0.9)
    else:
        raise ConfigError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    if clip_norm is not None and clip_norm > 0:
        optimizer = optax.chain(optax.clip_by_global_norm(clip_norm), optimizer)
    return optimizer


def _project_columns(kernel_FxK: jax.Array, max_norm: float) -> jax.Array:
    """w <- w * s / ||w||_2 for every column w with ||w||_2 > s; the other columns unchanged."""
    norm_1xK = jnp.sqrt(jnp.sum(jnp.square(kernel_FxK), axis=0, keepdims=True))
    scale_1xK = jnp.where(norm_1xK > max_norm, max_norm / jnp.maximum(norm_1xK, 1e-12), 1.0)
    return kernel_FxK * scale_1xK.astype(kernel_FxK.dtype)


def max_norm_constraint(max_norm: float, layer: str = "dense") -> optax.GradientTransformation:
    """Kim's (2014) max-norm constraint as the optimizer's **last** transformation.

    After the step, every column w = kernel[:, j] of `params[layer]["kernel"]` (F x K: the weight vector
    feeding class j) obeys ||w||_2 <= s = max_norm: w <- w * s / ||w||_2 where the step took it beyond.
    The transformation rewrites only that kernel's update, to (projected new column) - (old column);
    a column within the norm keeps its update as it is, so params + update there is bit for bit the
    optimizer's own step. Every other update passes through. Accepts params or {"params": params}.
    """

    def root(tree: Any) -> Any:
        return tree["params"] if isinstance(tree, dict) and "params" in tree and layer not in tree else tree

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("max_norm_constraint needs params: call update(updates, state, params)")
        updates_root, params_root = root(updates), root(params)
        if layer not in params_root or "kernel" not in params_root[layer]:
            raise KeyError(f"max_norm_constraint: no '{layer}/kernel' leaf in params")
        kernel_FxK, update_FxK = params_root[layer]["kernel"], updates_root[layer]["kernel"]
        stepped_FxK = kernel_FxK + update_FxK
        norm_1xK = jnp.sqrt(jnp.sum(jnp.square(stepped_FxK), axis=0, keepdims=True))
        projected_update_FxK = jnp.where(norm_1xK > max_norm, _project_columns(stepped_FxK, max_norm) - kernel_FxK,
                                         update_FxK)
        new_root = {**updates_root, layer: {**updates_root[layer], "kernel": projected_update_FxK}}
        return (new_root if updates_root is updates else {**updates, "params": new_root}), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)
