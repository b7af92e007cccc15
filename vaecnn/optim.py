"""Optimizers from a few flags: Adam/AdamW/Adadelta/SGD, a learning-rate schedule, clipping."""

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
