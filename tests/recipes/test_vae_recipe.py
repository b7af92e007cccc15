"""The VAE experiment end to end: outputs, resume, real-data learning, and the CLI's errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from vaecnn.recipes.vae import VAEConfig, run
from vaecnn.report import MetricsLog

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def small_config(workdir, **overrides) -> VAEConfig:
    values = dict(workdir=str(workdir), dataset="digits", hidden_sizes=(64,), latent_dim=4, epochs=3,
                  batch_size=50, eval_batch_size=100)
    values.update(overrides)
    return VAEConfig(**values)


def test_digits_run_writes_every_output_and_learns(tmp_path):
    results = run(small_config(tmp_path, eval_iw_samples=20))
    for key in ("dataset", "epochs", "test_neg_elbo", "test_recon", "test_kl", "train_seconds",
                "train_examples_per_second", "num_params", "test_nll_iw", "iw_samples"):
        assert key in results, key
    on_disk = json.load(open(tmp_path / "results.json"))
    assert on_disk["test_neg_elbo"] == pytest.approx(results["test_neg_elbo"])
    assert results["test_neg_elbo"] == pytest.approx(results["test_recon"] + results["test_kl"], rel=1e-5)
    # The IW estimate is a tighter bound: -log p(x) <= -ELBO up to Monte-Carlo noise.
    assert results["test_nll_iw"] < results["test_neg_elbo"] + 0.5
    lines = MetricsLog(str(tmp_path / "metrics.jsonl")).read()
    assert len(lines) == 3 and lines[-1]["test/neg_elbo"] < lines[0]["test/neg_elbo"]
    for picture in ("reconstructions.png", "samples.png", "loss_curve.png"):
        with Image.open(tmp_path / picture) as image:
            assert image.width > 50 and image.height > 20
            assert np.asarray(image).std() > 0  # not a blank picture


def test_rerun_resumes_and_extends(tmp_path):
    run(small_config(tmp_path, epochs=1))
    results = run(small_config(tmp_path, epochs=2))
    assert results["epochs"] == 2
    assert [l["epoch"] for l in MetricsLog(str(tmp_path / "metrics.jsonl")).read()] == [1, 2]


@pytest.mark.real_data
def test_learns_on_real_mnist(real_data_dir, tmp_path):
    """Two epochs of the default model: an untrained one scores ~543 nats (784 log 2), one that only
    knew each pixel's mean ~206; the default recipe is at ~113 after two epochs."""
    results = run(VAEConfig(workdir=str(tmp_path), dataset="mnist", data_dir=real_data_dir, epochs=2))
    assert results["test_neg_elbo"] < 125, results["test_neg_elbo"]


def cli(*flags, env=None):
    return subprocess.run([sys.executable, "-m", "experiments.vae_mnist", *flags], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=env)


def test_cli_bad_flag_value_is_one_clear_error(tmp_path):
    result = cli("--likelihood=poisson", f"--workdir={tmp_path}")
    assert result.returncode != 0
    assert "likelihood" in result.stderr and "Traceback" not in result.stderr


def test_cli_missing_data_is_one_clear_error(tmp_path):
    result = cli(f"--data_dir={tmp_path / 'nowhere'}", f"--workdir={tmp_path / 'run'}")
    assert result.returncode == 1
    assert result.stderr.startswith("error: no local copy of mnist") and "--data_dir" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_digits_demo_runs(tmp_path):
    result = cli("--dataset=digits", "--epochs=1", "--hidden_sizes=32", "--latent_dim=2", f"--workdir={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "test negative ELBO" in result.stdout
    assert os.path.exists(tmp_path / "results.json")
