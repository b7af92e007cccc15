"""The engine: epochs as compiled chunks of steps give the numbers of one step at a time."""

import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vaecnn import engine, evaluation, sharding, train
from vaecnn.classification import ClassifierTask
from vaecnn.data.batching import ArrayBatcher
from vaecnn.data.text import EncodedDataset, TextBatcher, bucket_boundaries

from test_train import TinyMLP, toy_data


def run_epochs(data, steps_per_chunk: int, epochs: int = 1, task=None, seed: int = 0):
    """State and per-epoch metric sums after `epochs` epochs, chunks of `steps_per_chunk` steps."""
    task = task or ClassifierTask(TinyMLP(), ("x",))
    optimizer = optax.adam(0.05)
    mesh = sharding.data_mesh()
    chunks = engine.ChunkedEpochs(task, optimizer, data, mesh, steps_per_chunk)
    state = train.init_state(task, optimizer, chunks.first_batch(), jax.random.key(seed), mesh)
    history = []
    for epoch in range(1, epochs + 1):
        epoch_key = jax.random.fold_in(jax.random.key(seed), epoch)
        sums = chunks.zero_sums(state)
        orders = chunks.epoch_orders(epoch_key)
        for group, first_step, steps in chunks.epoch_chunks(epoch_key):
            state, sums = chunks.run_chunk(state, sums, orders, group, first_step, steps)
        history.append(evaluation.means(sums))
    return state, history, chunks


@pytest.mark.slow
@pytest.mark.parametrize("steps_per_chunk", [3, 4, 100],
                         ids=["3 (chunks of 3, 3, 1)", "4 (chunks of 4, 3)", "whole epoch"])
def test_chunked_training_equals_one_step_at_a_time(steps_per_chunk):
    data = ArrayBatcher(toy_data(7 * 32 + 5, 0), 32)          # 7 steps per epoch, a remainder of 5 dropped
    one_step, one_step_history, _ = run_epochs(data, 1, epochs=2)
    chunked, chunked_history, chunks = run_epochs(data, steps_per_chunk, epochs=2)
    assert chunks.steps_per_epoch == 7
    chex.assert_trees_all_close(chunked.params, one_step.params, rtol=1e-5, atol=1e-6)
    assert int(chunked.step) == int(one_step.step) == 14     # a short last chunk runs only its own steps
    for a, b in zip(chunked_history, one_step_history):
        assert a["count"] == b["count"] == 7 * 32
        np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-5)


def _toy_text(num: int, seed: int) -> EncodedDataset:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 30, num)
    labels = rng.integers(0, 2, num).astype(np.int32)
    token_ids = [rng.integers(2, 50, n).astype(np.int32) for n in lengths]
    return EncodedDataset(token_ids, lengths.astype(np.int32), labels, ("negative", "positive"))


def _toy_batcher() -> TextBatcher:
    """Three length buckets of 300 toy sentences, batch 16."""
    data = _toy_text(300, 0)
    return TextBatcher(data, 16, boundaries=bucket_boundaries(data.lengths, 3))


def _text_task():
    import flax.linen as nn

    class Mean(nn.Module):
        @nn.compact
        def __call__(self, tokens_BxT, length_B, deterministic: bool = True):
            mask_BxT = jnp.arange(tokens_BxT.shape[1])[None] < length_B[:, None]
            h_BxTxD = nn.Embed(50, 8)(tokens_BxT) * mask_BxT[..., None]
            return nn.Dense(2)(h_BxTxD.sum(1) / length_B[:, None])

    return ClassifierTask(Mean(), ("tokens", "length"))


@pytest.mark.slow
def test_length_buckets_chunked_equals_one_step_and_every_example_trains():
    data = _toy_batcher()
    one_step, one_history, chunks = run_epochs(data, 1, task=_text_task())
    chunked, chunked_history, _ = run_epochs(data, 100, task=_text_task())
    assert len(chunks.groups) == 3
    chex.assert_trees_all_close(chunked.params, one_step.params, rtol=1e-5, atol=1e-6)
    # Fill: ceil(n_b / B) steps per bucket, every row real.
    assert chunks.steps_per_epoch == data.num_batches
    assert chunked_history[0]["count"] == one_history[0]["count"] == data.num_batches * 16


@pytest.mark.slow
def test_epoch_order_interleaves_buckets_and_depends_only_on_the_key():
    data = _toy_batcher()
    _, _, coarse = run_epochs(data, 100, task=_text_task())
    _, _, fine = run_epochs(data, 1, task=_text_task())
    key = jax.random.key(3)
    steps = lambda chunks: [(g, first + i) for g, first, n in chunks.epoch_chunks(key) for i in range(n)]
    assert steps(coarse) == steps(fine)                               # chunking changes dispatch only
    groups = [g for g, _ in steps(coarse)]
    assert sorted(set(groups)) == [0, 1, 2] and groups != sorted(groups)  # buckets interleave
    assert steps(coarse) != [(g, s) for g, s in sorted(steps(coarse))]
    assert sorted(steps(coarse)) == [(g, s) for g in range(3) for s in range(coarse.steps[g])]  # each step once


def test_rows_cover_a_permutation_and_fill_by_cycling():
    perm = jnp.array([4, 2, 0, 3, 1])
    rows = [engine.step_rows(perm, s, 2).tolist() for s in range(3)]
    assert rows == [[4, 2], [0, 3], [1, 4]]   # the last batch filled from the start of the shuffled group


def test_a_batch_holds_the_rows_of_every_field_whatever_its_rank():
    rng = np.random.default_rng(0)
    group = {"image": jnp.asarray(rng.integers(0, 256, (7, 4, 3, 1), dtype=np.uint8)),
             "tokens": jnp.asarray(rng.integers(0, 50, (7, 5), dtype=np.int32)),
             "label": jnp.arange(7, dtype=np.int32)}
    rows_B = jnp.array([6, 0, 3])
    batch = jax.jit(engine.gather_batch)(group, rows_B)
    for name, array in group.items():  # images are gathered from their flat view: the same values, shaped back
        chex.assert_trees_all_equal(batch[name], np.asarray(array)[np.asarray(rows_B)])
    chex.assert_trees_all_equal(batch["mask"], jnp.ones((3,), jnp.float32))


def test_no_recompilation_after_the_first_chunk():
    @chex.assert_max_traces(n=1)
    def counted_loss(task, params, batch, key):
        return ClassifierTask.loss(task, params, batch, key)

    class Counted(ClassifierTask):
        def loss(self, params, batch, key):
            return counted_loss(self, params, batch, key)

    data = ArrayBatcher(toy_data(7 * 32, 0), 32)
    _, _, chunks = run_epochs(data, 3, epochs=3, task=Counted(TinyMLP(), ("x",)))  # chunks of 3, 3 and 1
    assert [n for _, _, n in chunks.epoch_chunks(jax.random.key(0))] == [3, 3, 1]
    assert chunks._programs[0]._cache_size() == 1  # one executable serves every chunk length


def test_chunks_cover_every_step_once_within_the_limit():
    data = _toy_batcher()
    chunks = engine.ChunkedEpochs(_text_task(), optax.adam(0.05), data, sharding.data_mesh(), 2)
    dispatched = chunks.epoch_chunks(jax.random.key(1))
    assert all(1 <= n <= 2 for _, _, n in dispatched)
    for group in range(3):
        firsts = [(first, n) for g, first, n in dispatched if g == group]
        covered = sorted(first + i for first, n in firsts for i in range(n))
        assert covered == list(range(chunks.steps[group]))


@pytest.mark.slow
def test_a_chunk_equals_its_steps_run_one_by_one_through_the_jitted_step():
    """The loop benchmark's premise: a chunk trains on exactly step_inputs(...) with the jitted step."""
    data = _toy_batcher()
    task, optimizer, mesh = _text_task(), optax.adam(0.05), sharding.data_mesh()
    chunks = engine.ChunkedEpochs(task, optimizer, data, mesh, 100)
    start = train.init_state(task, optimizer, chunks.first_batch(), jax.random.key(0), mesh)
    epoch_key = jax.random.key(5)
    step = engine.make_train_step(task, optimizer, mesh)
    one_by_one = jax.tree.map(jnp.copy, start)
    chunked, sums = jax.tree.map(jnp.copy, start), chunks.zero_sums(start)
    orders = chunks.epoch_orders(epoch_key)
    for group, first, n in chunks.epoch_chunks(epoch_key)[:3]:
        chunked, sums = chunks.run_chunk(chunked, sums, orders, group, first, n)
        for index in range(first, first + n):
            one_by_one, _ = step(one_by_one, *chunks.step_inputs(orders, group, index))
    chex.assert_trees_all_close(chunked.params, one_by_one.params, rtol=1e-5, atol=1e-6)
    assert int(chunked.step) == int(one_by_one.step) > 0


VOCAB_SIZE, EMBED_DIM = 500, 64


def _text_cnn_step_inputs():
    """(task, Adam, state, batch) of a small text CNN whose embedding gradient dominates the step."""
    from vaecnn.models.text_cnn import TextCNN
    model = TextCNN(2, widths=(2, 3), channels=(4, 4), embed_dim=EMBED_DIM, vocab_size=VOCAB_SIZE)
    task, optimizer = ClassifierTask(model, ("tokens",)), optax.adam(1e-3)
    batch = {"tokens": np.arange(8 * 7, dtype=np.int32).reshape(8, 7) % VOCAB_SIZE,
             "label": np.arange(8, dtype=np.int32) % 2, "mask": np.ones(8, np.float32)}
    params = jax.jit(lambda key: model.init(key, batch["tokens"], deterministic=True)["params"])(
        jax.random.key(0, impl="rbg"))
    state = engine.TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params))
    return task, optimizer, state, batch


def _shared_square_step(task, optimizer):
    """The engine's step with the norm taken of the gradients themselves (no barrier)."""
    def step(state, batch, key):
        _, grads = jax.value_and_grad(task.loss, has_aux=True)(state.params, batch, key)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        return optax.apply_updates(state.params, updates), opt_state, optax.global_norm(grads)
    return step


def _stored_squares(step_fn) -> list[str]:
    """The fusions of the compiled step whose whole result is the element-wise square of a
    VOCAB_SIZE x EMBED_DIM array: squares written to memory rather than computed where they are read."""
    task, optimizer, state, batch = _text_cnn_step_inputs()
    text = jax.jit(step_fn(task, optimizer)).lower(state, batch, jax.random.key(1)).compile().as_text()
    square = re.compile(rf"ROOT \S+ = f32\[{VOCAB_SIZE},{EMBED_DIM}\]\S* multiply\((%\S+), \1\)")
    return [line.strip() for line in text.splitlines() if square.search(line)]


@pytest.mark.slow
@pytest.mark.skipif(jax.default_backend() != "cpu", reason="a property of XLA:CPU's compiled programs")
def test_the_gradient_norm_does_not_store_the_squared_embedding_gradient():
    """Adam's second moment and the gradient norm both square the gradient; shared, the squares of the
    embedding's gradient were stored as one more array (5-11% of the Kim CNN's step). The engine's step
    keeps them apart; the same step with the norm of the raw gradients shows the check bites."""
    assert _stored_squares(_shared_square_step) != []
    assert _stored_squares(engine.train_step_fn) == []


@pytest.mark.slow
def test_the_gradient_norm_behind_the_barrier_is_the_same_bits():
    task, optimizer, state, batch = _text_cnn_step_inputs()
    key = jax.random.key(1)
    _, metrics = jax.jit(engine.train_step_fn(task, optimizer))(state, batch, key)
    *_, raw_norm = jax.jit(_shared_square_step(task, optimizer))(state, batch, key)
    assert float(raw_norm) > 0
    np.testing.assert_array_equal(metrics["grad_norm_sum"], raw_norm)
