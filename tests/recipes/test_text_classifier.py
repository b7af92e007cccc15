"""End-to-end runs of the sentence-classification recipe and its experiment, on a toy sentiment task.

The toy task: a few neutral words and one sentiment word (from a positive or a negative list) at a
random position; the label is the sentiment word's. A 16-unit Elman RNN learns it in a few epochs, so
every run here is seconds. Subprocesses exercise the command line (prediction, one-line errors).
"""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from vaecnn.errors import ConfigError
from vaecnn.data.text import TextPipeline
from vaecnn import lifecycle
from vaecnn.recipes.text_classifier import RECIPE, make_config, make_text_optimizer
from vaecnn.recipes.text_predict import predict

# Slow: end-to-end runs and subprocesses (./launch.sh test --quick leaves them out). One xdist group: the
# module's trained workdirs are made once, on one worker, for all of its tests.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("text_classifier")]

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
POSITIVE = ("good", "great", "fun", "moving", "superb", "witty")
NEGATIVE = ("bad", "dull", "boring", "flat", "awful", "tedious")
NEUTRAL = ("the", "film", "a", "plot", "is", "story", "and", "actors", "was")
DEV_ONLY_WORD = "zzdevonly"
TINY = dict(embed_dim=16, hidden_size=16, dropout=0.0, learning_rate=0.02, batch_size=20, num_buckets=1,
            eval_batch_size=100)


def run(config, **options):
    return lifecycle.run(RECIPE, config, **options)


def _toy_lines(count: int, seed: int) -> list[str]:
    """Kim-style "label text" lines of the toy task, alternating labels."""
    rng = np.random.default_rng(seed)
    lines = []
    for index in range(count):
        label = index % 2
        words = list(rng.choice(NEUTRAL, size=rng.integers(1, 5)))
        words.insert(rng.integers(0, len(words) + 1), rng.choice(POSITIVE if label else NEGATIVE))
        lines.append(f"{label} {' '.join(words)}")
    return lines


def _write(path, lines) -> str:
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def toy_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy")
    # One unusable line: it must be skipped, counted and reported, not silently dropped.
    train = _write(folder / "toy.train", _toy_lines(400, seed=0) + ["not-a-label some words"])
    # A dev-only word must not enter the vocabulary (it replaces another, so lengths stay the test's).
    dev = [line.replace("plot", DEV_ONLY_WORD) for line in _toy_lines(100, seed=1)]
    return {"train_file": train, "dev_file": _write(folder / "toy.dev", dev),
            "test_file": _write(folder / "toy.test", _toy_lines(100, 2))}


@pytest.fixture(scope="module")
def trained(toy_files, tmp_path_factory):
    """A run with dev selection; returns (workdir, results)."""
    workdir = str(tmp_path_factory.mktemp("trained"))
    return workdir, run(make_config(workdir=workdir, epochs=5, **toy_files, **TINY))


def _cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "experiments.rnn_sentiment", *args], input=stdin,
                          capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120)


@pytest.mark.parametrize("embedding", ["static", "multichannel"])
def test_a_fixed_embedding_table_gets_no_update_even_with_decoupled_weight_decay(embedding):
    config = make_config("cnn", embedding=embedding, optimizer="adamw", weight_decay=0.5, learning_rate=0.1,
                         max_norm=0.0)
    params = {"embedding_static": np.ones((5, 3), np.float32), "embedding": np.ones((5, 3), np.float32),
              "dense": {"kernel": np.ones((3, 2), np.float32), "bias": np.ones(2, np.float32)}}
    if embedding == "static":
        del params["embedding"]
    optimizer = make_text_optimizer(config, total_steps=10)
    grads = jax.tree.map(np.zeros_like, params)  # what stop_gradient gives every table, and weight decay alone
    updates, _ = optimizer.update(grads, optimizer.init(params), params)
    np.testing.assert_array_equal(updates["embedding_static"], 0.0)
    assert np.all(np.asarray(updates["dense"]["kernel"]) < 0)  # the trained leaves do decay
    if embedding == "multichannel":
        assert np.all(np.asarray(updates["embedding"]) < 0)


def test_dev_selection_and_results(trained):
    workdir, results = trained
    saved = json.load(open(os.path.join(workdir, "results.json")))
    assert saved["test_accuracy"] == pytest.approx(results["test_accuracy"])
    for field in ("test_accuracy", "dev_accuracy", "selected_epoch", "num_params", "train_seconds", "vocab_size"):
        assert field in saved, field
    assert saved["test_accuracy"] > 0.9 and saved["test_count"] == 100
    assert saved["num_params"] == saved["vocab_size"] * 16 + (16 * 16 + 16) * 2 + 16 * 2 + 2
    assert "train: 400 examples" in saved["data"] and "skipped 1 (missing label)" in saved["data"]
    history = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    assert len(history) == 5
    dev_accuracy = [line["dev/accuracy"] for line in history]
    assert saved["selected_epoch"] == int(np.argmax(dev_accuracy)) + 1
    assert saved["dev_accuracy"] == pytest.approx(max(dev_accuracy))


def test_vocabulary_is_saved_and_built_from_training_data_only(trained):
    workdir, results = trained
    vocab = TextPipeline.load(workdir).vocab
    assert len(vocab) == results["vocab_size"] == 2 + len(POSITIVE + NEGATIVE + NEUTRAL)
    assert "good" in vocab and DEV_ONLY_WORD not in vocab


def test_predict_uses_the_selected_parameters(trained, toy_files):
    workdir, results = trained
    predictions = predict(workdir, ["the plot was superb", "a dull story", "fun"])
    assert [label for label, _ in predictions] == ["positive", "negative", "positive"]
    # Each sentence alone (another batch, other padding) gets the probability it got in the batch.
    alone = [predict(workdir, [sentence])[0] for sentence in ["the plot was superb", "a dull story", "fun"]]
    np.testing.assert_allclose([p for _, p in alone], [p for _, p in predictions], rtol=1e-6)
    assert predict(workdir, []) == []
    # On the test file, prediction reproduces the accuracy the run measured with its selected parameters.
    labels, sentences = zip(*(line.split(" ", 1) for line in open(toy_files["test_file"]).read().splitlines()))
    predicted = [label for label, _ in predict(workdir, sentences)]
    correct = [name == ("positive" if label == "1" else "negative") for name, label in zip(predicted, labels)]
    assert np.mean(correct) == pytest.approx(results["test_accuracy"])


def test_cross_validation_without_a_test_split(toy_files, tmp_path):
    workdir = str(tmp_path / "cv")
    results = run(make_config(workdir=workdir, train_file=toy_files["train_file"], cv_folds=2, epochs=2,
                                       **TINY))
    assert results["cv_folds"] == 2 and len(results["fold_accuracies"]) == 2
    assert results["cv_accuracy_mean"] == pytest.approx(np.mean(results["fold_accuracies"]))
    assert results["cv_accuracy_std"] == pytest.approx(np.std(results["fold_accuracies"], ddof=1))
    assert results["cv_accuracy_mean"] > 0.8
    assert sum(fold["test_count"] for fold in results["folds"]) == 400  # every example tested once
    assert all(fold["dev_accuracy"] is not None for fold in results["folds"])  # selected on a held-out 10%
    for fold in range(2):
        folder = os.path.join(workdir, f"fold_{fold:02d}")
        assert all(os.path.exists(os.path.join(folder, name))
                   for name in ("config.json", "text_pipeline.json", "metrics.jsonl", "results.json"))
        # A fold is a run of its own: evaluated from its folder, it gives its own figure again.
        again = lifecycle.evaluate(RECIPE, folder)
        assert again["test_accuracy"] == results["folds"][fold]["test_accuracy"]
        assert again["test_count"] == results["folds"][fold]["test_count"]
    # The whole cross-validation evaluated from its folder: every fold's, and the same mean.
    assert lifecycle.evaluate(RECIPE, workdir)["cv_accuracy_mean"] == results["cv_accuracy_mean"]
    with pytest.raises(ConfigError, match="fold_00"):
        predict(workdir, ["good"])


def test_command_line_predicts_arguments_and_stdin(trained):
    workdir, _ = trained
    completed = _cli(f"--workdir={workdir}", "--predict=a great film", "--predict=-",
                     stdin="the actors were awful\n\nboring plot\n")
    assert completed.returncode == 0, completed.stderr
    lines = [line.split("\t") for line in completed.stdout.splitlines()]
    assert [(label, sentence) for label, _, sentence in lines] == [
        ("positive", "a great film"), ("negative", "the actors were awful"), ("negative", "boring plot")]
    # The printed probability is the model's, as predict() computes it.
    expected = predict(workdir, ["a great film", "the actors were awful", "boring plot"])
    np.testing.assert_allclose([float(p) for _, p, _ in lines], [p for _, p in expected], atol=6e-5)


@pytest.mark.parametrize("args, message", [
    (["--train_file=/nonexistent/train.txt"], "no such file"),
    (["--workdir=/nonexistent/run", "--predict=good"], "no trained classifier"),
    (["--cv_folds=1"], "cv_folds"),
])
def test_command_line_errors_are_one_line(args, message, tmp_path):
    completed = _cli(f"--workdir={tmp_path}", *args)
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr and message in completed.stderr
    errors = [line for line in completed.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, completed.stderr


@pytest.mark.parametrize("fields, message", [
    (dict(dataset="mr", train_file="x.tsv"), "not both"),
    (dict(dataset="mr", activation="relu"), "activation"),
    (dict(train_file="x.tsv", dropout=1.0), "dropout"),
])
def test_bad_configs_are_rejected_before_loading_data(fields, message):
    with pytest.raises(ConfigError, match=message):
        make_config(workdir="unused", **fields)


@pytest.mark.real_data
def test_sst2_sentences_learn_well_above_chance(real_data_dir, tmp_path):
    results = run(make_config(workdir=str(tmp_path), dataset="stsa.binary", data_dir=real_data_dir,
                                       embed_dim=32, hidden_size=32, dropout=0.0, learning_rate=5e-3,
                                       num_buckets=2, epochs=2))
    assert results["dev_accuracy"] > 0.65


def test_cross_validation_killed_in_fold_2_resumes_and_matches_an_uninterrupted_run(toy_files, tmp_path):
    """kill -9 a 3-fold run while fold 2 trains, rerun the same command: it continues there (fold 1 is
    restored, not retrained) and its figures equal an uninterrupted run's exactly."""
    import re
    import signal
    import time

    flags = ["--train_file=" + toy_files["train_file"], "--cv_folds=3", "--epochs=3", "--embed_dim=16",
             "--hidden_size=16", "--dropout=0", "--learning_rate=0.02", "--batch_size=20", "--num_buckets=1"]
    command = lambda workdir: [sys.executable, "-m", "experiments.rnn_sentiment", *flags, f"--workdir={workdir}"]
    killed = tmp_path / "killed"
    process = subprocess.Popen(command(killed), cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    first_checkpoint_of_fold_2 = killed / "fold_01" / "checkpoints" / "1"
    deadline = time.monotonic() + 240
    while not first_checkpoint_of_fold_2.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, "the run ended before fold 2 had a checkpoint"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "fold_01" / "checkpoints" / "3").exists() and not (killed / "fold_02").exists()
    assert not (killed / "results.json").exists()

    resumed = subprocess.run(command(killed), cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # The finished fold is restored from its last checkpoint, not trained again; fold 2 continues.
    assert f"resuming from the checkpoint of epoch 3 in {killed}/fold_00" in resumed.stderr
    assert re.search(rf"resuming from the checkpoint of epoch [12] in {re.escape(str(killed))}/fold_01",
                     resumed.stderr)
    straight = subprocess.run(command(tmp_path / "straight"), cwd=PROJECT_ROOT, capture_output=True, text=True,
                              timeout=300)
    assert straight.returncode == 0, straight.stderr[-3000:]
    figures = lambda workdir: {key: json.load(open(workdir / "results.json"))[key]
                               for key in ("fold_accuracies", "cv_accuracy_mean", "cv_accuracy_std")}
    assert figures(killed) == figures(tmp_path / "straight")
    assert [json.loads(line)["epoch"] for line in open(killed / "fold_01" / "metrics.jsonl")] == [1, 2, 3]
