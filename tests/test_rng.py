"""The named random streams: distinct, deterministic, and pinned to the derivations the published figures used."""

import chex
import jax
import numpy as np
import pytest

from vaecnn import rng


def _bits(key: jax.Array) -> np.ndarray:
    return np.asarray(jax.random.key_data(key))


def test_every_stream_is_deterministic_and_distinct_from_the_others():
    keys = {name: _bits(rng.stream(7, name)) for name in rng.STREAMS}
    for name in rng.STREAMS:
        np.testing.assert_array_equal(keys[name], _bits(rng.stream(7, name)))
    assert len({bits.tobytes() for bits in keys.values()}) == len(rng.STREAMS)
    assert _bits(rng.stream(7, "training")).tobytes() != _bits(rng.stream(8, "training")).tobytes()


def test_streams_equal_the_derivations_the_results_were_measured_with():
    # Changing any of these would silently change every committed figure: they are fixed here.
    root = jax.random.key(3)
    split = jax.random.split(root, 3)
    expected = {"training": split[0], "init": split[1], "evaluation": split[2],
                "pictures": jax.random.fold_in(root, 10_000), "test_likelihood": jax.random.fold_in(root, 20_000),
                "gradient_measurements": jax.random.fold_in(root, 30_000),
                "samples": jax.random.fold_in(root, 40_000), "pretrained_fill": root}
    assert set(expected) == set(rng.STREAMS)
    for name, key in expected.items():
        np.testing.assert_array_equal(_bits(rng.stream(3, name)), _bits(key), err_msg=name)
    epoch = rng.epoch_key(split[0], 2)
    shuffle, steps = jax.random.split(epoch)
    got_shuffle, got_steps = rng.group_keys(epoch, 1)
    np.testing.assert_array_equal(_bits(got_shuffle), _bits(jax.random.fold_in(shuffle, 1)))
    np.testing.assert_array_equal(_bits(rng.step_key(got_steps, 5)), _bits(jax.random.fold_in(
        jax.random.fold_in(steps, 1), 5)))


def test_group_and_step_keys_are_the_same_traced_as_eager():
    epoch = rng.epoch_key(rng.stream(0, "training"), 1)
    traced = jax.jit(lambda e, g, s: (rng.group_keys(e, g)[0], rng.step_key(rng.group_keys(e, g)[1], s)))
    eager = (rng.group_keys(epoch, 2)[0], rng.step_key(rng.group_keys(epoch, 2)[1], 9))
    chex.assert_trees_all_equal(jax.tree.map(_bits, traced(epoch, np.int32(2), np.int32(9))),
                                jax.tree.map(_bits, eager))


def test_block_order_seed_depends_on_the_epoch_only():
    training = rng.stream(0, "training")
    # Derived here independently: the block order of every multi-group run depends on it.
    words = jax.random.key_data(jax.random.fold_in(jax.random.fold_in(training, 1), 2**20))
    assert rng.block_order_seed(rng.epoch_key(training, 1)) == [int(w) for w in np.asarray(words, np.uint32).ravel()]
    assert rng.block_order_seed(rng.epoch_key(training, 1)) != rng.block_order_seed(rng.epoch_key(training, 2))


def test_an_unknown_stream_is_named():
    with pytest.raises(ValueError, match="unknown random stream 'dropout'.*training, init"):
        rng.stream(0, "dropout")
