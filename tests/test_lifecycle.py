"""vaecnn.lifecycle: one run's lifecycle, restoring, evaluating, and many runs (seeds), proven on a model
family that exists only in this file -- how a researcher adds a fourth family without touching the
lifecycle (docs/design.md shows the same example)."""

import dataclasses
import json
import os
import subprocess
import sys

import flax.linen as nn
import numpy as np
import pytest

from vaecnn import evaluation, lifecycle, memory, rng, sharding
from vaecnn.classification import ClassifierTask
from vaecnn.config import option
from vaecnn.data.batching import ArrayBatcher
from vaecnn.data.images import load_image_dataset
from vaecnn.errors import CheckpointError, ConfigError
from vaecnn.optim import make_optimizer
from vaecnn.train import TrainConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- A new model family, in full: logistic regression on the 8x8 digits --------------------------------
@dataclasses.dataclass(frozen=True)
class LogisticConfig:
    workdir: str = option("runs/logistic", "Output folder.", resumable=True)
    learning_rate: float = option(0.05, "Adam learning rate.", lower_bound=0.0)
    train: TrainConfig = TrainConfig(epochs=3, batch_size=100, eval_batch_size=500)


class Logistic(nn.Module):
    @nn.compact
    def __call__(self, image_BxHxWxC, deterministic: bool = True):
        return nn.Dense(10)(image_BxHxWxC.reshape(image_BxHxWxC.shape[0], -1) / 255.0)


class LogisticRecipe(lifecycle.RecipeBase[LogisticConfig]):
    config_type = LogisticConfig

    def build(self, config, mesh, *, training):
        splits = load_image_dataset("digits", None)
        test = ArrayBatcher.on_mesh({"image": splits["test"].images, "label": splits["test"].labels},
                                    config.train.eval_batch_size, mesh)
        task = ClassifierTask(Logistic(), ("image",))
        if not training:
            return lifecycle.Built(task, test.largest_batch(), eval_data={"test": test})
        data = ArrayBatcher.on_mesh({"image": splits["train"].images, "label": splits["train"].labels},
                                    config.train.batch_size, mesh)
        optimizer = make_optimizer("adam", config.learning_rate, config.train.epochs * data.num_batches, "constant")
        return lifecycle.Built(task, test.largest_batch(), optimizer, data, {"test": test})

    def results(self, built, config, fit, mesh):
        return {"test_accuracy": fit.history[-1]["test/accuracy"]}

    def evaluate(self, built, config, params, mesh):
        return {"test_accuracy": lifecycle.test_metrics(built.task, params, built.eval_data["test"], config.train.seed,
                                                        mesh)["accuracy"]}
# --------------------------------------------------------------------------------------------------------


# The module's one trained run, made once (so its tests share a worker); the tests after it read or resume it.
pytestmark = pytest.mark.xdist_group("lifecycle")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[LogisticConfig, dict]:
    config = LogisticConfig(workdir=str(tmp_path_factory.mktemp("lifecycle") / "one"))
    return config, lifecycle.train_and_evaluate(LogisticRecipe(), config)


def test_a_family_defined_here_trains_resumes_runs_over_seeds_and_evaluates_from_its_workdir(trained, tmp_path):
    recipe, (config, results) = LogisticRecipe(), trained
    assert results["test_accuracy"] > 0.85  # chance: 0.1
    assert results["epochs"] == 3 and results["num_params"] == 64 * 10 + 10
    on_disk = json.load(open(os.path.join(config.workdir, "results.json")))
    assert on_disk["config"]["train"]["epochs"] == 3 and on_disk["hardware"]["host_cpus"] >= 1
    # Rerun: resumed from the last checkpoint, nothing trained again, the same figures.
    again = lifecycle.train_and_evaluate(recipe, config)
    assert (again["test_accuracy"], again["train_seconds"]) == (results["test_accuracy"], results["train_seconds"])
    # From the workdir alone: the same figure, from the parameters restored without an optimizer.
    assert lifecycle.evaluate(recipe, config.workdir) == {"test_accuracy": results["test_accuracy"], "epoch": 3}
    restored = lifecycle.restore(recipe, config.workdir)
    assert restored.epoch == 3 and restored.built.optimizer is None
    # A changed config on the same workdir stops with the changed field, unless allowed.
    with pytest.raises(ConfigError, match="--learning_rate 0.05 -> 0.1"):
        lifecycle.train_and_evaluate(recipe, dataclasses.replace(config, learning_rate=0.1))

    seeded = lifecycle.run(recipe, LogisticConfig(workdir=str(tmp_path / "seeds")), seeds=(0, 1))
    accuracies = [seeded["per_seed"][seed]["test_accuracy"] for seed in ("0", "1")]
    assert accuracies[0] == results["test_accuracy"]  # seed 0 is the run above, to the bit
    assert accuracies[0] != accuracies[1]
    assert seeded["mean"]["test_accuracy"] == pytest.approx(np.mean(accuracies))
    assert lifecycle.evaluate(recipe, str(tmp_path / "seeds" / "seed_1"))["test_accuracy"] == accuracies[1]


def test_restore_names_a_checkpoint_of_another_model(trained):
    class TwoLayers(nn.Module):
        @nn.compact
        def __call__(self, image_BxHxWxC, deterministic: bool = True):
            return Logistic()(nn.Dense(3)(image_BxHxWxC))

    class TwoLayerRecipe(LogisticRecipe):
        def build(self, config, mesh, *, training):
            built = super().build(config, mesh, training=training)
            return dataclasses.replace(built, task=ClassifierTask(TwoLayers(), ("image",)))

    with pytest.raises(CheckpointError, match="belongs to another model"):
        lifecycle.restore(TwoLayerRecipe(), trained[0].workdir)


def test_test_metrics_is_the_evaluation_pass_with_the_run_key_after_a_memory_check(trained, monkeypatch):
    restored = lifecycle.restore(LogisticRecipe(), trained[0].workdir)
    mesh, batcher, seed = sharding.data_mesh(), restored.built.eval_data["test"], restored.config.train.seed
    metrics = lifecycle.test_metrics(restored.built.task, restored.params, batcher, seed, mesh)
    by_hand = evaluation.evaluate(evaluation.make_eval_step(restored.built.task, mesh), restored.params, batcher,
                                  rng.stream(seed, "evaluation"), sharding.batch_sharded(mesh))
    assert metrics == by_hand and metrics["accuracy"] == trained[1]["test_accuracy"]
    # A device with almost nothing free: stopped before the pass, naming the flags that shrink it.
    monkeypatch.setattr(memory, "free_memory_bytes", lambda device: 1024)
    with pytest.raises(ConfigError, match=r"one evaluation step on the largest batch .* --eval_batch_size"):
        lifecycle.test_metrics(restored.built.task, restored.params, batcher, seed, mesh)


def test_summarize_takes_every_shared_number_nested_ones_by_path():
    per_seed = {0: {"acc": 0.8, "cnn": {"acc": 0.5}, "config": {"seed": 0}, "name": "x", "only_here": 1.0},
                1: {"acc": 0.9, "cnn": {"acc": 0.7}, "config": {"seed": 1}, "name": "x"}}
    summary = lifecycle.summarize(per_seed)
    assert set(summary["mean"]) == {"acc", "cnn/acc"}  # config and strings are no figures
    assert summary["mean"]["acc"] == pytest.approx(0.85) and summary["std"]["acc"] == pytest.approx(
        np.std([0.8, 0.9], ddof=1))
    assert lifecycle.summarize({3: {"acc": 0.8}})["std"]["acc"] == 0.0


@pytest.mark.slow
def test_command_line_runs_each_seed_in_its_folder_and_resumes(tmp_path):
    workdir = tmp_path / "w"
    command = [sys.executable, "-m", "experiments.vae_mnist", "--dataset=digits", "--epochs=1", "--hidden_sizes=16",
               "--latent_dim=2", "--seeds=0,1", f"--workdir={workdir}"]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]
    per_seed = [json.load(open(workdir / f"seed_{k}" / "results.json")) for k in (0, 1)]
    assert [r["config"]["train"]["seed"] for r in per_seed] == [0, 1]
    assert per_seed[0]["test_neg_elbo"] != per_seed[1]["test_neg_elbo"]  # the seeds draw other numbers
    results = json.load(open(workdir / "results.json"))
    values = [r["test_neg_elbo"] for r in per_seed]
    assert results["seeds"] == [0, 1] and results["mean"]["test_neg_elbo"] == pytest.approx(np.mean(values))
    assert results["std"]["test_neg_elbo"] == pytest.approx(np.std(values, ddof=1))
    assert f"test_neg_elbo: {np.mean(values):.4f} ± " in completed.stdout
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming from the checkpoint of epoch 1" in again.stderr  # each seed resumes, trains nothing
    figures = lambda mean: {name: value for name, value in mean.items() if name != "wall_seconds"}
    assert figures(json.load(open(workdir / "results.json"))["mean"]) == figures(results["mean"])
