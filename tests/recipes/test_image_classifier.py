"""Tests for vaecnn.recipes.image_classifier and experiments/cnn_mnist.py: end-to-end runs of both
models on the offline 8x8 digits (seconds), resuming, the CLI's arithmetic and errors, and a short
real-MNIST run.

Small models keep the runs CI-sized: the XLA compiles, not the training steps, dominate.
"""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from vaecnn import arith, files, lifecycle
from vaecnn import config as vconfig
from vaecnn.errors import ConfigError
from vaecnn.recipes.image_classifier import MODELS, RECIPE, ImageClassifierConfig, make_model

# Slow: end-to-end runs and subprocesses (./launch.sh test --quick leaves them out). One xdist group: the
# module's trained workdirs are made once, on one worker, for all of its tests.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("image_classifier")]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Without dropout and with a higher learning rate than the defaults: these few steps must learn.
TINY = dict(cnn_features=(8, 16), cnn_hidden_size=32, dense_hidden_sizes=(64,), dropout_rate=0.0, batch_size=32,
            learning_rate=3e-3)
DIGITS_EPOCHS = 10
RESULT_KEYS = {"dataset", "model", "epochs", "test_accuracy", "test_loss", "num_params", "train_seconds",
               "train_examples_per_second", "hardware", "config"}


def make(**fields) -> ImageClassifierConfig:
    return vconfig.override(ImageClassifierConfig(), fields)


def run(config):
    return lifecycle.run(RECIPE, config)


@pytest.fixture(scope="module")
def digits_runs(tmp_path_factory):
    """Model "both" on digits: each model a sub-run, trained once, shared by the tests below."""
    config = make(workdir=str(tmp_path_factory.mktemp("digits")), dataset="digits", model="both",
                  epochs=DIGITS_EPOCHS, **TINY)
    results = run(config)
    assert files.read_json(os.path.join(config.workdir, "results.json"))["config"]["model"] == "both"
    return config, {name: results[name] for name in MODELS}


def _cli(*flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "experiments.cnn_mnist", *flags], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_both_models_learn_digits_and_leave_their_files(digits_runs):
    config, results = digits_runs
    assert set(results) == set(MODELS)
    for name, result in results.items():
        workdir = os.path.join(config.workdir, name)
        assert result["test_accuracy"] > 0.9, (name, result)  # chance: 0.1; measured 0.96-0.98
        assert RESULT_KEYS <= set(result)
        assert (result["model"], result["dataset"], result["epochs"]) == (name, "digits", DIGITS_EPOCHS)
        assert files.read_json(os.path.join(workdir, "results.json")) == json.loads(json.dumps(result))
        with open(os.path.join(workdir, "metrics.jsonl")) as f:
            lines = [json.loads(line) for line in f]
        assert [line["epoch"] for line in lines] == list(range(1, DIGITS_EPOCHS + 1))
        assert lines[-1]["test/accuracy"] == result["test_accuracy"]
        assert lines[-1]["test/count"] == result["num_test"] == 297  # every test image, once

        model = make_model(vconfig.override(config, {"model": name}), result["num_classes"])
        summary = arith.summarize(model, jax.ShapeDtypeStruct((1, 8, 8, 1), jnp.uint8))
        assert result["num_params"] == summary.total_params
        with open(os.path.join(workdir, "model_summary.txt")) as f:
            assert f.read().strip().splitlines()[-1].split()[:2] == ["total", f"{summary.total_params:,}"]
        for picture in ("loss_curve.png", "accuracy_curve.png"):
            assert os.path.getsize(os.path.join(workdir, picture)) > 0

    with open(os.path.join(config.workdir, "comparison.md")) as f:
        comparison = f.read()
    for name, result in results.items():
        assert f"| {name} | {result['num_params']:,} |" in comparison
        assert f"{result['test_accuracy']:.4f}" in comparison


def test_rerun_resumes_from_the_last_checkpoint_and_trains_nothing(digits_runs):
    config, results = digits_runs
    again = run(vconfig.override(config, {"model": "cnn", "workdir": os.path.join(config.workdir, "cnn")}))
    for key in ("test_accuracy", "test_loss", "num_params", "epochs", "train_seconds"):
        assert again[key] == results["cnn"][key], key


def test_config_rejects_values_that_cannot_work(tmp_path):
    for bad in (dict(model="rnn"), dict(dataset="cifar10"), dict(dropout_rate=1.0), dict(cnn_features=()),
                dict(dense_hidden_sizes=(0,)), dict(train_examples=0), dict(lr_schedule="step"),
                dict(epochs=0)):
        with pytest.raises(ConfigError):
            make(workdir=str(tmp_path), **bad)
    with pytest.raises(ConfigError, match="only 1500"):
        run(make(workdir=str(tmp_path), dataset="digits", train_examples=5000))


def test_cli_arith_only_prints_the_notes_answers_and_trains_nothing(tmp_path):
    workdir = tmp_path / "arith"
    # Every row, the 264 TB layer included, comes from shapes: the whole table costs a fraction of a second.
    completed = _cli("--arith_only", f"--workdir={workdir}")
    assert completed.returncode == 0, completed.stderr
    for answer in ("600,000", "560", "540", "8×8×20", "4×4×20", "| 1024×1024×3 | 65,970,697,666,560 |"):
        assert answer in completed.stdout
    assert "flax shapes" in completed.stdout
    assert (workdir / "arithmetic.md").read_text(encoding="utf-8").strip() == completed.stdout.strip()
    assert sorted(os.listdir(workdir)) == ["arithmetic.md"]


def test_cli_reports_a_user_error_in_one_line(tmp_path):
    completed = _cli("--cnn_features=32,wide", "--dataset=digits", f"--workdir={tmp_path}")
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    assert completed.stderr.strip().splitlines()[-1] == (
        "error: flag --cnn_features=32,wide: expected comma-separated integers, e.g. 3,4,5 (--helpshort lists the flags)")


@pytest.mark.real_data
def test_short_real_mnist_run_beats_95_percent(real_data_dir, tmp_path):
    config = make(workdir=str(tmp_path), data_dir=real_data_dir, model="cnn", epochs=1, train_examples=20_000, **TINY)
    result = run(config)
    assert result["num_test"] == 10_000 and result["image_shape"] == (28, 28, 1)
    assert result["test_accuracy"] > 0.95, result  # measured: 0.968
