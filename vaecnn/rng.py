"""Named random streams: which key serves what. Every key of a run is derived here, from its seed.

    key(seed) ─┬─ split(·, 3)[0]   "training"   epoch e: fold_in(·, e) = the epoch key, which gives
               │                                 ├─ split(·)[0]    group g's shuffle: fold_in(·, g)
               │                                 ├─ split(·)[1]    group g's steps: fold_in(fold_in(·, g), s) for
               │                                 │                 step s (dropout, dynamic binarization, z draws)
               │                                 └─ fold_in(·, 2**20) the order of the groups' blocks (host numpy)
               ├─ split(·, 3)[1]   "init"        the parameters' initialisation
               ├─ split(·, 3)[2]   "evaluation"  every evaluation pass: batch i folds in i
               ├─ fold_in(·, 10_000) "pictures"  the per-epoch pictures (reconstructions, samples)
               ├─ fold_in(·, 20_000) "test_likelihood"  the final k-sample log p(x) estimate
               ├─ fold_in(·, 30_000) "gradient_measurements"  the gradient-estimator table's inputs
               ├─ fold_in(·, 40_000) "samples"   --mode=sample's draws of z
               └─ itself            "pretrained_fill"  vectors of the words a pretrained table lacks

The offsets only keep the streams apart; they are fixed here, once, so every published figure reproduces.
Reading a stream never changes another: a run that draws pictures trains on the same numbers as one that
does not, and a re-evaluation of a workdir draws its run's own evaluation keys.
"""

import jax
import numpy as np

_SPLIT = ("training", "init", "evaluation")
_FOLDED = {"pictures": 10_000, "test_likelihood": 20_000, "gradient_measurements": 30_000, "samples": 40_000}
STREAMS = _SPLIT + tuple(_FOLDED) + ("pretrained_fill",)
_BLOCK_ORDER = 2**20  # beyond any group index, so the block order is apart from every group's streams


def stream(seed: int, name: str) -> jax.Array:
    """The typed key of stream `name` (one of STREAMS) for `seed`."""
    root = jax.random.key(seed)
    if name in _SPLIT:
        return jax.random.split(root, len(_SPLIT))[_SPLIT.index(name)]
    if name in _FOLDED:
        return jax.random.fold_in(root, _FOLDED[name])
    if name == "pretrained_fill":
        return root
    raise ValueError(f"unknown random stream {name!r}; the streams are {', '.join(STREAMS)}")


def epoch_key(training_key: jax.Array, epoch: int) -> jax.Array:
    """The key of epoch `epoch` (1-based) of the "training" stream."""
    return jax.random.fold_in(training_key, epoch)


def group_keys(epoch_key: jax.Array, group: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(shuffle key, steps key) of one data group in one epoch (traceable: `group` may be traced)."""
    shuffle_key, steps_key = jax.random.split(epoch_key)
    return jax.random.fold_in(shuffle_key, group), jax.random.fold_in(steps_key, group)


def step_key(steps_key: jax.Array, step: jax.Array) -> jax.Array:
    """The key of step `step` of a group (traceable)."""
    return jax.random.fold_in(steps_key, step)


def block_order_seed(epoch_key: jax.Array) -> list[int]:
    """The words that seed the host's numpy generator ordering an epoch's blocks."""
    words = np.asarray(jax.random.key_data(jax.random.fold_in(epoch_key, _BLOCK_ORDER)), np.uint32).ravel()
    return [int(w) for w in words]


def batch_key(key: jax.Array, index: int | jax.Array) -> jax.Array:
    """The key of batch (or chunk, or repeat) `index` of a pass that draws from `key`."""
    return jax.random.fold_in(key, index)
