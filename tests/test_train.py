"""The shared train loop: determinism, resume, no recompilation, NaN guard, selection, batching."""

import dataclasses
import json
import os
import subprocess
import sys

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vaecnn import evaluation, sharding, train
from vaecnn.classification import ClassifierTask
from vaecnn.data.batching import ArrayBatcher
from vaecnn.errors import ConfigError, TrainingDiverged
from vaecnn.metrics_log import MetricsLog


class TinyMLP(nn.Module):
    @nn.compact
    def __call__(self, x_BxF, deterministic: bool = True):
        h = nn.relu(nn.Dense(16)(x_BxF))
        h = nn.Dropout(0.1, deterministic=deterministic)(h)
        return nn.Dense(3)(h)


def toy_data(num: int, seed: int):
    """Three separable blobs: a run that learns reaches high accuracy in a few epochs."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=num).astype(np.int32)
    centres = np.array([[2.0, 0.0], [-2.0, 1.0], [0.0, -2.5]], np.float32)
    features = centres[labels] + rng.normal(size=(num, 2)).astype(np.float32) * 0.7
    return {"x": features, "label": labels}


def run_fit(workdir, epochs=3, seed=0, task=None, learning_rate=0.05, **config_kwargs):
    task = task or ClassifierTask(TinyMLP(), ("x",))
    config = train.TrainConfig(epochs=epochs, batch_size=32, seed=seed, **config_kwargs)
    train_data = ArrayBatcher(toy_data(200, 0), 32)
    eval_data = {"test": ArrayBatcher(toy_data(90, 1), 64)}
    return train.fit(task, optax.adam(learning_rate), train_data, eval_data, config, str(workdir))


@pytest.mark.slow
def test_learns_and_writes_metrics(tmp_path):
    result = run_fit(tmp_path, epochs=4)
    lines = MetricsLog(str(tmp_path / "metrics.jsonl")).read()
    assert [line["epoch"] for line in lines] == [1, 2, 3, 4]
    assert lines[-1]["test/accuracy"] > 0.9 and lines[-1]["test/count"] == 90
    assert lines[-1]["train/loss"] < lines[0]["train/loss"]
    assert result.examples_seen == 4 * 6 * 32 and result.train_seconds > 0
    assert os.path.isdir(tmp_path / "checkpoints" / "4")


@pytest.mark.slow
def test_same_seed_same_numbers_other_seed_other_numbers(tmp_path):
    first, second = run_fit(tmp_path / "a", seed=3), run_fit(tmp_path / "b", seed=3)
    chex.assert_trees_all_equal(first.params, second.params)
    other = run_fit(tmp_path / "c", seed=4)
    assert not np.allclose(jax.tree.leaves(first.params)[0], jax.tree.leaves(other.params)[0])


@pytest.mark.slow
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path):
    straight = run_fit(tmp_path / "straight", epochs=4)
    run_fit(tmp_path / "resumed", epochs=2)                      # "interrupted" after epoch 2
    resumed = run_fit(tmp_path / "resumed", epochs=4)            # same workdir: resumes at epoch 3
    chex.assert_trees_all_equal(straight.state, resumed.state)
    log = lambda d: MetricsLog(str(tmp_path / d / "metrics.jsonl")).read()
    assert [l["epoch"] for l in log("resumed")] == [1, 2, 3, 4]
    for a, b in zip(log("straight"), log("resumed")):
        assert a["test/loss"] == b["test/loss"] and a["train/loss"] == b["train/loss"]
    # Asking for no more epochs than are done trains nothing and keeps everything.
    again = run_fit(tmp_path / "resumed", epochs=4)
    chex.assert_trees_all_equal(again.state, straight.state)
    assert len(log("resumed")) == 4


@pytest.mark.slow
def test_metrics_lines_beyond_the_checkpoint_are_rewritten_not_repeated(tmp_path):
    run_fit(tmp_path, epochs=2)
    MetricsLog(str(tmp_path / "metrics.jsonl")).append({"epoch": 3, "stale": True})  # died before its checkpoint
    run_fit(tmp_path, epochs=3)
    lines = MetricsLog(str(tmp_path / "metrics.jsonl")).read()
    assert [l["epoch"] for l in lines] == [1, 2, 3] and "stale" not in lines[-1]


def test_train_step_is_traced_once(tmp_path):
    @dataclasses.dataclass(frozen=True)
    class CountedTask(ClassifierTask):
        def loss(self, params, batch, key):
            return counted_loss(self, params, batch, key)

    counted_loss = chex.assert_max_traces(ClassifierTask.loss, n=1)
    run_fit(tmp_path, epochs=3, task=CountedTask(TinyMLP(), ("x",)))  # 18 steps, one trace


@pytest.mark.slow
def test_nan_stops_with_clear_error_and_keeps_earlier_outputs(tmp_path):
    @dataclasses.dataclass(frozen=True)
    class DivergesInEpochTwo(ClassifierTask):
        def loss(self, params, batch, key):
            loss, metrics = ClassifierTask.loss(self, params, batch, key)
            # The optimizer's step counter is not visible here; the parameters' growth is (either sign).
            poisoned = jnp.where(jnp.abs(params["Dense_0"]["bias"][0]) > 1e9, jnp.nan, loss)
            return poisoned, metrics

    run_fit(tmp_path, epochs=1)
    before = open(tmp_path / "metrics.jsonl").read()
    with pytest.raises(TrainingDiverged, match="in epoch 2; the checkpoint of epoch 1 in .* was re-read and matches "
                                               "its digests; metrics.jsonl ends at epoch 1. Lower --learning_rate"):
        run_fit(tmp_path, epochs=3, task=DivergesInEpochTwo(TinyMLP(), ("x",)), learning_rate=1e12)
    assert open(tmp_path / "metrics.jsonl").read() == before
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1"]


def test_selection_keeps_the_best_epoch(tmp_path):
    result = run_fit(tmp_path, epochs=4, select_metric="test/loss", select_mode="min")
    lines = MetricsLog(str(tmp_path / "metrics.jsonl")).read()
    best = min(lines, key=lambda l: l["test/loss"])
    assert result.selected_epoch == best["epoch"]
    eval_step = evaluation.make_eval_step(ClassifierTask(TinyMLP(), ("x",)), sharding.data_mesh())
    metrics = evaluation.evaluate(eval_step, result.params, ArrayBatcher(toy_data(90, 1), 64), jax.random.key(0),
                             sharding.batch_sharded(sharding.data_mesh()))
    assert metrics["loss"] == pytest.approx(best["test/loss"], rel=1e-6)


def test_a_batch_larger_than_the_training_set_is_said_in_the_log(tmp_path, caplog):
    task = ClassifierTask(TinyMLP(), ("x",))
    config = train.TrainConfig(epochs=1, batch_size=64)
    train.fit(task, optax.adam(0.05), ArrayBatcher(toy_data(40, 0), 64), {}, config, str(tmp_path))
    assert "--batch_size=64 is larger than the training set (40 examples): each epoch is one batch that repeats " \
           "examples" in caplog.text


def test_config_errors():
    with pytest.raises(ConfigError, match="epochs"):
        train.TrainConfig(epochs=0, batch_size=8)
    with pytest.raises(ConfigError, match="select_mode"):
        train.TrainConfig(epochs=1, batch_size=8, select_mode="best")
    with pytest.raises(ValueError, match="multiple"):
        sharding.check_batch_size(0, sharding.data_mesh())


def test_array_batcher_covers_every_example_once_in_eval():
    data = {"x": np.arange(10, dtype=np.float32)[:, None], "label": np.arange(10, dtype=np.int32)}
    batcher = ArrayBatcher(data, 4)
    seen = [(b["label"][b["mask"] > 0]) for b in batcher.eval_batches()]
    assert [len(s) for s in seen] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate(seen), np.arange(10))
    assert batcher.num_batches == 2 and batcher.steps_per_group() == [2]  # training drops the remainder


def test_means_divide_by_count_and_steps():
    sums = {"loss": jnp.array(6.0), "accuracy": jnp.array(3.0), "count": jnp.array(4.0),
            "objective_sum": jnp.array(5.0), "steps": jnp.array(2.0)}
    assert evaluation.means(sums) == {"loss": 1.5, "accuracy": 0.75, "objective": 2.5, "count": 4}


_SHARDED_RUN = """
import json, sys
import jax, optax
sys.path.insert(0, {tests!r})
from test_train import run_fit
assert jax.device_count() == {devices}, jax.devices()
result = run_fit({workdir!r}, epochs=2)
print(json.dumps({{"params": [float(x.sum()) for x in jax.tree.leaves(result.params)],
                   "loss": result.history[-1]["test/loss"]}}))
"""


@pytest.mark.slow
def test_four_devices_give_the_same_numbers_as_one(tmp_path):
    """The batch is split over 4 (forced host) devices; gradients are all-reduced: same training."""
    outputs = {}
    for devices in (1, 4):
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
                   JAX_PLATFORMS="cpu")
        code = _SHARDED_RUN.format(tests=os.path.dirname(__file__), devices=devices,
                                   workdir=str(tmp_path / str(devices)))
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        outputs[devices] = json.loads(result.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(outputs[4]["params"], outputs[1]["params"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(outputs[4]["loss"], outputs[1]["loss"], rtol=1e-4)



@pytest.mark.slow
@pytest.mark.parametrize("dies_in", ["metrics line", "checkpoint"])
def test_killed_while_writing_epoch_2_resumes_with_every_line(tmp_path, monkeypatch, dies_in):
    """A kill can land while either of an epoch's two writes is under way (the metrics line is left cut
    half-way, as a killed write leaves it); either way the rerun ends with every epoch's metrics line and
    the uninterrupted run's state."""
    from vaecnn.checkpoints import Checkpointer
    straight = run_fit(tmp_path / "straight", epochs=3)
    owner, name = (MetricsLog, "append") if dies_in == "metrics line" else (Checkpointer, "save")
    original = getattr(owner, name)

    def dies_at_epoch_2(self, *args):
        epoch = args[0]["epoch"] if owner is MetricsLog else args[0]
        if epoch == 2:
            if owner is MetricsLog:
                with open(self.path, "a") as f:
                    f.write(json.dumps(args[0])[:20])  # no newline: the line was cut mid-write
            raise KeyboardInterrupt("killed")
        return original(self, *args)

    monkeypatch.setattr(owner, name, dies_at_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        run_fit(tmp_path / "killed", epochs=3)
    monkeypatch.setattr(owner, name, original)
    if owner is MetricsLog:
        assert not open(tmp_path / "killed" / "metrics.jsonl").read().endswith("\n")
    resumed = run_fit(tmp_path / "killed", epochs=3)
    chex.assert_trees_all_equal(resumed.state, straight.state)
    assert [line["epoch"] for line in MetricsLog(str(tmp_path / "killed" / "metrics.jsonl")).read()] == [1, 2, 3]
