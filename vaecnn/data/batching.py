"""Batchers: a dataset as device-resident groups for training (vaecnn.engine shuffles and gathers them
inside its compiled chunks) and as exhaustive batches for evaluation.

Every batcher has the same small interface, which the train loop consumes:

    num_batches: int                             training steps per epoch
    groups(), steps_per_group()                  the training data, for vaecnn.engine
    eval_batches() -> Iterator[dict[str, Array]] each example once, in order, the last batch padded
                                                 and marked by mask = 0.

Every batch carries `mask` [B] float32 (1 = real example), so losses and metrics are weighted sums
that count each example exactly once, whatever the padding.
"""

from collections.abc import Iterator, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from vaecnn import sharding

Batch = dict[str, jax.Array]


class ArrayBatcher:
    """Batches of a dataset held whole on the device (e.g. MNIST: 47 MB as uint8).

    The arrays are copied to the device once; each step gathers its rows there, so nothing crosses
    the host-device boundary inside the training loop.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], batch_size: int, *,
                 device_sharding: jax.sharding.Sharding | None = None,
                 batch_sharding: jax.sharding.Sharding | None = None):
        sizes = {name: len(array) for name, array in arrays.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"arrays must have the same length, got {sizes}")
        self.num_examples = next(iter(sizes.values()))
        if self.num_examples == 0:
            raise ValueError("cannot batch an empty dataset")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.batch_size = batch_size
        self._arrays = {name: jax.device_put(np.asarray(array), device_sharding)
                        for name, array in arrays.items()}
        self._gather = jax.jit(_gather_rows, out_shardings=batch_sharding)

    @classmethod
    def on_mesh(cls, arrays: Mapping[str, np.ndarray], batch_size: int, mesh: jax.sharding.Mesh) -> "ArrayBatcher":
        """Data replicated on every device of `mesh`, batches split over its data axis."""
        return cls(arrays, batch_size, device_sharding=sharding.replicated(mesh),
                   batch_sharding=sharding.batch_sharded(mesh))

    @property
    def num_batches(self) -> int:
        """Training steps per epoch: the remainder is dropped (a fresh one each epoch, vaecnn.engine)."""
        return max(self.num_examples // self.batch_size, 1)

    @property
    def num_eval_batches(self) -> int:
        return -(-self.num_examples // self.batch_size)

    def groups(self) -> list[dict[str, jax.Array]]:
        """The training set as one group for vaecnn.engine (already on the device)."""
        return [self._arrays]

    def steps_per_group(self) -> list[int]:
        """num_batches: a fresh remainder is dropped each epoch (the engine's formula, S = n // B)."""
        return [self.num_batches]

    def eval_batches(self) -> Iterator[Batch]:
        """All examples in order; the last batch is padded by repeating row 0 with mask 0."""
        for i in range(self.num_eval_batches):
            start = i * self.batch_size
            rows = np.arange(start, start + self.batch_size)
            valid = rows < self.num_examples
            yield self._gather(self._arrays, np.where(valid, rows, 0), valid)

    def largest_batch(self) -> Batch:
        """Every batch has the one shape: the first."""
        return next(self.eval_batches())


def take_rows(array: jax.Array, rows_B: jax.Array) -> jax.Array:
    """array[rows_B] along the example axis. A field of more than two dimensions is gathered from its
    [N, everything else] view (a reshape, no copy): XLA:CPU vectorizes its loops along the minor
    dimension, which for images [N, H, W, 1] is the channel of size 1, and the gather with the fusions
    that read its output then ran as scalar code (benchmarks/results/vae_step_profile.md)."""
    if array.ndim <= 2:
        return jnp.take(array, rows_B, axis=0)
    rows_BxF = jnp.take(array.reshape(array.shape[0], -1), rows_B, axis=0)
    return rows_BxF.reshape(rows_B.shape + array.shape[1:])


def _gather_rows(arrays: Mapping[str, jax.Array], rows_B: jax.Array, valid_B: jax.Array) -> Batch:
    batch = {name: take_rows(array, rows_B) for name, array in arrays.items()}
    batch["mask"] = jnp.asarray(valid_B, jnp.float32)
    return batch
