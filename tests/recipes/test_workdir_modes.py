"""Working from a trained workdir: --mode=evaluate gives the run's own test figures, --mode=sample writes
its samples, --eval_file classifies a file; all rebuilt from the workdir's config.json."""

import json
import os
import subprocess
import sys

import pytest

from vaecnn import files, lifecycle, preemption
from vaecnn.recipes import text_classifier, vae
from vaecnn.recipes.text_predict import evaluate_file

from test_text_classifier import toy_files, trained  # noqa: F401 -- the shared trained text run

# Slow: end-to-end runs and subprocesses (./launch.sh test --quick leaves them out). One xdist group: the
# module's trained workdirs are made once, on one worker, for all of its tests.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("workdir_modes")]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cli(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"experiments.{module}", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def vae_workdir(tmp_path_factory) -> str:
    workdir = str(tmp_path_factory.mktemp("modes") / "vae")
    completed = _cli("vae_mnist", "--dataset=digits", "--epochs=3", "--hidden_sizes=32", "--latent_dim=2",
                     "--keep_checkpoints=1", "--keep_checkpoint_every=2", f"--workdir={workdir}")
    assert completed.returncode == 0, completed.stderr[-2000:]
    return workdir


def test_vae_evaluate_reproduces_the_runs_test_figures(vae_workdir):
    results = json.load(open(os.path.join(vae_workdir, "results.json")))
    again = lifecycle.evaluate(vae.RECIPE, vae_workdir)
    assert again["epoch"] == 3
    for name in ("test_neg_elbo", "test_recon", "test_kl"):
        assert again[name] == results[name], name  # same parameters, batches and key: the same numbers
    completed = _cli("vae_mnist", f"--workdir={vae_workdir}", "--mode=evaluate", "--eval_iw_samples=20")
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert f"test negative ELBO {results['test_neg_elbo']:.2f} nats" in completed.stdout
    assert "test -log p(x) ~" in completed.stdout and "(20 importance samples)" in completed.stdout


def test_vae_sample_writes_the_grid(vae_workdir):
    completed = _cli("vae_mnist", f"--workdir={vae_workdir}", "--mode=sample", "--num_images=10")
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert os.path.exists(os.path.join(vae_workdir, "samples_10.png"))
    assert vae.sample(vae_workdir, 10) == os.path.join(vae_workdir, "samples_10.png")


def test_vae_evaluates_a_kept_epoch_and_names_the_missing_ones(vae_workdir):
    """--keep_checkpoint_every=2 kept epoch 2 beside the newest (3); epoch 1 is gone."""
    line = [json.loads(text) for text in open(os.path.join(vae_workdir, "metrics.jsonl"))][1]
    assert lifecycle.evaluate(vae.RECIPE, vae_workdir, epoch=2)["test_neg_elbo"] == line["test/neg_elbo"]
    completed = _cli("vae_mnist", f"--workdir={vae_workdir}", "--mode=evaluate", "--epoch=1")
    assert completed.returncode == 1 and "has no checkpoint of epoch 1; it has epochs 2, 3" in completed.stderr


def test_iw_evaluation_stops_between_batches_and_resumes_to_the_same_figure(vae_workdir, monkeypatch):
    """A stop request after the second batch: the position is saved, Preempted raised; the rerun ends with
    the figure of an evaluation never stopped, to the bit."""
    overrides = {"eval_iw_samples": 50, "iw_chunk_size": 25, "eval_batch_size": 40}
    undisturbed = lifecycle.evaluate(vae.RECIPE, vae_workdir, overrides=overrides)["test_nll_iw"]
    asked = []  # one question after every batch but the last
    monkeypatch.setattr(preemption, "requested", lambda: asked.append(True) or len(asked) >= 2)
    with pytest.raises(preemption.Preempted, match="after batch 2 of 8"):
        lifecycle.evaluate(vae.RECIPE, vae_workdir, overrides=overrides)
    assert files.read_json(os.path.join(vae_workdir, vae.IW_POSITION_FILE))["next_batch"] == 2
    asked.clear()
    monkeypatch.setattr(preemption, "requested", lambda: asked.append(True) and False)
    assert lifecycle.evaluate(vae.RECIPE, vae_workdir, overrides=overrides)["test_nll_iw"] == undisturbed
    assert len(asked) == 5  # batches 3 to 7 asked: the six left were computed, not all eight
    assert not os.path.exists(os.path.join(vae_workdir, vae.IW_POSITION_FILE))


def test_text_evaluate_and_eval_file_reproduce_the_test_accuracy(trained, toy_files):  # noqa: F811
    workdir, results = trained
    assert lifecycle.evaluate(text_classifier.RECIPE, workdir)["test_accuracy"] == pytest.approx(
        results["test_accuracy"], abs=1e-9)
    on_file = evaluate_file(workdir, toy_files["test_file"])
    assert on_file["accuracy"] == pytest.approx(results["test_accuracy"]) and on_file["count"] == 100
    lines = open(on_file["predictions_file"], encoding="utf-8").read().splitlines()
    assert lines[0] == "label\tpredicted\tprobability\tsentence" and len(lines) == 101
    completed = _cli("rnn_sentiment", f"--workdir={workdir}", f"--eval_file={toy_files['test_file']}")
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert f"accuracy {results['test_accuracy']:.4f} on 100 examples" in completed.stdout


def test_predict_batches_every_sentence_in_one_shape(trained, monkeypatch):  # noqa: F811
    """One (B, T) shape for sentences of any lengths: the jitted classifier compiles once."""
    workdir, _ = trained
    from vaecnn.recipes import text_predict
    shapes = []

    class Recording(text_predict.TextBatcher):
        def eval_batches(self):
            for batch in super().eval_batches():
                shapes.append(batch["tokens"].shape)
                yield batch

    monkeypatch.setattr(text_predict, "TextBatcher", Recording)
    sentences = ["fun", "a dull story", "the plot was superb and the actors were great and moving"] * 3
    assert len(text_predict.predict(workdir, sentences)) == len(sentences)
    assert len(set(shapes)) == 1 and len(shapes) >= 1, shapes
