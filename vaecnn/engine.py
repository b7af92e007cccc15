"""The training engine: N steps of training as one compiled program.

Per-step dispatch from Python (a gather, a key, a step, one add per metric) costs little beside a
10 ms CPU step but dominates a sub-millisecond accelerator step. So the data of an epoch lives on the
device, and two jitted programs per group g do the work. Once per epoch, the *orders* program draws
the group's shuffle and the key its steps derive theirs from (group_order):

    (epoch_key, g) -> (perm_g, group_key)

Then the *chunk* program runs K consecutive steps of the group in a loop (`lax.fori_loop`, K an
argument, not a shape):

    (state, sums, group_g, perm_g, group_key, first_step, K) -> (state, sums)   state, sums donated

Inside it, for every step s in [first_step, first_step + K): the batch's gather from perm_g, the
step's key, the task's loss (with its own randomness, e.g. dynamic binarization), the update, and
the metric sums. The host only dispatches the orders, chooses the order of the chunks, and reads
the sums once per epoch.

The data of an epoch is a list of *groups*, each a dict of arrays of one shape (a length bucket of
text, or a whole image set). Step s of group g trains on the rows

    perm_g[(s * B + arange(B)) mod n_g],   perm_g = permutation(fold_in(shuffle_key, g), n_g)

for s < S_g, the group's steps per epoch. With S_g = n_g // B this drops a fresh remainder each epoch
(images); with S_g = ceil(n_g / B) it fills the last batch from the start of the shuffled group (text
buckets: every example trains at least once per epoch). The step's key is fold_in(group_key, s) with
group_key = fold_in(steps_key, g), where (shuffle_key, steps_key) = split(epoch_key): a pure function
of (seed, epoch, group, step), so a run resumed at an epoch boundary draws the same numbers, and the
chunk size changes nothing but the dispatching (every key: vaecnn.rng).

A step inside a loop is not the same program as the step alone on XLA:CPU: convolutions there run
through Eigen only if they are already in its canonical layout (see vaecnn.models.conv, which every model
uses), and a host loop of jitted steps would pay an allocation of fresh output buffers per step that
the loop's in-place carry avoids. benchmarks/loop_throughput.py times each experiment's loop against
its step.
"""

import functools
import math
from collections.abc import Mapping
from typing import Any, Protocol

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from vaecnn import rng, sharding
from vaecnn.data import batching

Params = Any
Batch = Mapping[str, jax.Array]
Metrics = dict[str, jax.Array]
MIN_BLOCKS_PER_GROUP = 8


class Task(Protocol):
    """What a model contributes to training. All three functions are pure and jit-compatible.

    Metrics are *sums* over the batch's real examples (weighted by batch['mask']) plus 'count', the
    number of real examples; the loop divides by the total count once per epoch, so every example
    counts once however the batches were padded.
    """

    def init_params(self, key: jax.Array, batch: Batch) -> Params:
        ...

    def loss(self, params: Params, batch: Batch, key: jax.Array) -> tuple[jax.Array, Metrics]:
        """Returns (scalar objective to minimise, metric sums)."""
        ...

    def evaluate(self, params: Params, batch: Batch, key: jax.Array) -> Metrics:
        """Metric sums on a batch, without training-time randomness such as dropout."""
        ...


class TrainingData(Protocol):
    """A training set the engine can hold on the device."""
    batch_size: int
    num_examples: int

    def groups(self) -> list[dict[str, Any]]:
        """The groups: dicts of arrays with a leading example axis, each group of one shape."""
        ...

    def steps_per_group(self) -> list[int]:
        """S_g: training steps per epoch in each group."""
        ...


@flax.struct.dataclass
class TrainState:
    """Everything that changes during training; a pytree of arrays, so it checkpoints as is."""
    step: jax.Array
    params: Params
    opt_state: optax.OptState


def train_step_fn(task: Task, optimizer: optax.GradientTransformation):
    """The pure step (state, batch, key) -> (state, metrics): one update and its metric sums. (A
    constraint on the parameters, e.g. Kim's max-norm, is the optimizer's last transformation.)"""

    def train_step(state: TrainState, batch: Batch, key: jax.Array) -> tuple[TrainState, Metrics]:
        (objective, metrics), grads = jax.value_and_grad(task.loss, has_aux=True)(state.params, batch, key)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        # The barrier keeps XLA from sharing the norm's squares with Adam's second moment: shared, the
        # squares of a large gradient (the Kim CNN's 13,824 x 300 embedding) were written out as one more
        # array, and the Kim CNN's step ran 5-11% slower. The norm's value is the same bits either way.
        metrics = dict(metrics, objective_sum=objective, steps=jnp.ones((), jnp.float32),
                       grad_norm_sum=optax.global_norm(jax.lax.optimization_barrier(grads)))
        return TrainState(step=state.step + 1, params=params, opt_state=opt_state), metrics

    return train_step


def make_train_step(task: Task, optimizer: optax.GradientTransformation, mesh: jax.sharding.Mesh):
    """One step as its own jitted program: parameters replicated, the batch split over the mesh's data
    axis, the old state's buffers donated. (The benchmarks time it; training runs chunks of it.)"""
    replicated, data = sharding.replicated(mesh), sharding.batch_sharded(mesh)
    return jax.jit(train_step_fn(task, optimizer), in_shardings=(replicated, data, replicated),
                   out_shardings=(replicated, replicated), donate_argnums=0)


def gather_batch(group: Mapping[str, jax.Array], rows_B: jax.Array) -> dict[str, jax.Array]:
    """The rows of a group as a training batch: every field (`batching.take_rows`), and mask = 1 (every
    row is real)."""
    batch = {name: batching.take_rows(array, rows_B) for name, array in group.items()}
    batch["mask"] = jnp.ones(rows_B.shape, jnp.float32)
    return batch


def step_rows(perm_N: jax.Array, step: jax.Array, batch_size: int) -> jax.Array:
    """perm[(step * B + arange(B)) mod N]: the group's rows of one step (see the module docstring)."""
    return perm_N[(step * batch_size + jnp.arange(batch_size)) % perm_N.shape[0]]


def group_order(epoch_key: jax.Array, group_index: jax.Array, num_rows: int) -> tuple[jax.Array, jax.Array]:
    """(perm_N, group_key) of one group in one epoch: its shuffle, and the key its steps fold their index into."""
    shuffle_key, steps_key = rng.group_keys(epoch_key, group_index)
    return jax.random.permutation(shuffle_key, num_rows), steps_key


class ChunkedEpochs:
    """Runs epochs of `data` as compiled chunks of at most `steps_per_chunk` steps each.

    The order of an epoch's steps does not depend on the chunk size: the epoch is a sequence of
    *blocks* of consecutive steps of one group (one block per group for a single group; for several,
    each group is cut into MIN_BLOCKS_PER_GROUP blocks, interleaved at random from the epoch key, so
    lengths mix within an epoch as a shuffle would). Each block is dispatched as chunks of at most
    `steps_per_chunk` steps. A chunk's step count is an argument of its program, not a shape: one
    program is compiled per group, none per chunk length.
    """

    def __init__(self, task: Task, optimizer: optax.GradientTransformation, data: TrainingData,
                 mesh: jax.sharding.Mesh, steps_per_chunk: int):
        if steps_per_chunk < 1:
            raise ValueError(f"steps_per_chunk must be >= 1, got {steps_per_chunk}")
        self.batch_size = data.batch_size
        replicated = sharding.replicated(mesh)
        self.groups = [jax.device_put(dict(group), replicated) for group in data.groups()]
        self.steps = list(data.steps_per_group())
        self.steps_per_epoch = sum(self.steps)
        blocks_per_group = 1 if len(self.groups) == 1 else MIN_BLOCKS_PER_GROUP
        self.block_steps = [math.ceil(s / blocks_per_group) for s in self.steps]
        self.steps_per_chunk = steps_per_chunk
        # A jitted step nested in the loop: its one trace serves both the loop body and the metric
        # shapes of zero_sums (jax caches the trace of a jitted function by its argument types).
        self._step = step = jax.jit(train_step_fn(task, optimizer))
        batch_sharding = sharding.batch_sharded(mesh)
        self._replicated = replicated
        self._sum_shapes = None

        def chunk(state, sums, group, perm_N, group_key, first_step, num_steps):
            def one_step(offset, carry):
                state, sums = carry
                index = first_step + offset
                batch = gather_batch(group, step_rows(perm_N, index, self.batch_size))
                batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
                state, metrics = step(state, batch, rng.step_key(group_key, index))
                return state, jax.tree.map(jnp.add, sums, metrics)

            # A loop of num_steps, a traced count: one program per group serves every chunk length.
            return jax.lax.fori_loop(0, num_steps, one_step, (state, sums))

        self._programs = [
            jax.jit(chunk, in_shardings=(replicated, replicated, replicated, replicated, replicated, None, None),
                    out_shardings=(replicated, replicated), donate_argnums=(0, 1))
            for _ in self.groups]
        # Once per epoch and group, not per chunk: the shuffle is a sort of the whole group.
        self._orders = [jax.jit(functools.partial(group_order, num_rows=jax.tree.leaves(g)[0].shape[0]),
                                out_shardings=replicated) for g in self.groups]

    def _block_lengths(self, group: int) -> list[int]:
        block, total = self.block_steps[group], self.steps[group]
        return [min(block, total - start) for start in range(0, total, block)]

    def zero_sums(self, state: TrainState) -> Metrics:
        """Zeros shaped like one step's metrics (the running sums' starting point)."""
        if self._sum_shapes is None:
            batch = self.batch_shape(0)
            # With the types the loop body sees, shardings included (the trace cache tells traces apart by
            # them): state, batch and the step's key (folded from the replicated group key) on the mesh; a
            # sharding constraint does not enter the type.
            like = lambda tree, where: jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=where),
                                                    tree)
            abstract = (like(state, self._replicated), like(batch, self._replicated),
                        jax.ShapeDtypeStruct((), jax.random.key(0).dtype, sharding=self._replicated))
            self._sum_shapes = jax.eval_shape(self._step, *abstract)[1]
        return jax.device_put(jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), self._sum_shapes), self._replicated)

    def epoch_chunks(self, epoch_key: jax.Array) -> list[tuple[int, int, int]]:
        """(group, first step, real steps) of every chunk, in the order the host dispatches them.

        Blocks run in sequence for one group, and in an order drawn from the epoch key for several
        (numpy, seeded by the key's bits: the host decides which program runs next).
        """
        blocks = [(g, start, length) for g in range(len(self.groups))
                  for start, length in zip(range(0, self.steps[g], self.block_steps[g]), self._block_lengths(g))]
        if len(self.groups) > 1:
            generator = np.random.default_rng(rng.block_order_seed(epoch_key))
            blocks = [blocks[i] for i in generator.permutation(len(blocks))]
        return [(g, first, min(self.steps_per_chunk, start + length - first))
                for g, start, length in blocks for first in range(start, start + length, self.steps_per_chunk)]

    def epoch_orders(self, epoch_key: jax.Array) -> list[tuple[jax.Array, jax.Array]]:
        """(perm_N, group_key) of every group in the epoch of `epoch_key` (group_order), dispatched
        asynchronously; every chunk of the epoch takes them."""
        return [order(epoch_key, np.int32(group)) for group, order in enumerate(self._orders)]

    def run_chunk(self, state: TrainState, sums: Metrics, orders: list[tuple[jax.Array, jax.Array]], group: int,
                  first_step: int, num_steps: int):
        """Dispatches one chunk (asynchronously); returns the new (state, sums)."""
        return self._programs[group](state, sums, self.groups[group], *orders[group], np.int32(first_step),
                                     np.int32(num_steps))

    def step_inputs(self, orders: list[tuple[jax.Array, jax.Array]], group: int,
                    step: int) -> tuple[dict[str, jax.Array], jax.Array]:
        """The (batch, key) that step `step` of `group` trains on in the epoch of `orders`, as the chunk
        program derives them: for running the same steps one at a time (tests, the loop benchmark)."""
        perm_N, group_key = orders[group]
        return (gather_batch(self.groups[group], step_rows(perm_N, step, self.batch_size)),
                rng.step_key(group_key, step))

    def lower_chunk(self, state: TrainState, sums: Metrics, epoch_key: jax.Array, group: int):
        """The compiled-to-be chunk program of `group`, for its memory accounting (fills the cache)."""
        return self._programs[group].lower(state, sums, self.groups[group], *self.epoch_orders(epoch_key)[group],
                                           np.int32(0), np.int32(self.steps_per_chunk))

    def batch_shape(self, group: int) -> dict[str, jax.ShapeDtypeStruct]:
        """The shapes of one batch of `group` (for messages)."""
        return jax.eval_shape(lambda g: gather_batch(g, jnp.zeros((self.batch_size,), jnp.int32)), self.groups[group])

    def first_batch(self) -> dict[str, jax.Array]:
        """A batch of the first group (for initialising parameters: shapes and values of real data)."""
        return gather_batch(self.groups[0], jnp.arange(self.batch_size) % jax.tree.leaves(self.groups[0])[0].shape[0])

    def largest_group(self) -> int:
        sizes = [sum(np.prod(a.shape[1:]) for a in jax.tree.leaves(g)) for g in self.groups]
        return int(np.argmax(sizes))
