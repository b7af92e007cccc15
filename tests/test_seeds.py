"""--seeds: one run per seed in workdir/seed_<k>, then every seed's figures and their mean ± std."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from vaecnn import seeds

pytestmark = pytest.mark.slow  # end-to-end runs and subprocesses: ./launch.sh test --quick leaves them out

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_summarize_takes_every_shared_number_nested_ones_by_path():
    per_seed = {0: {"acc": 0.8, "cnn": {"acc": 0.5}, "config": {"seed": 0}, "name": "x", "only_here": 1.0},
                1: {"acc": 0.9, "cnn": {"acc": 0.7}, "config": {"seed": 1}, "name": "x"}}
    summary = seeds.summarize(per_seed)
    assert set(summary["mean"]) == {"acc", "cnn/acc"}  # config and strings are no figures
    assert summary["mean"]["acc"] == pytest.approx(0.85) and summary["std"]["acc"] == pytest.approx(
        np.std([0.8, 0.9], ddof=1))
    assert seeds.summarize({3: {"acc": 0.8}})["std"]["acc"] == 0.0


def test_command_line_runs_each_seed_in_its_folder_and_resumes(tmp_path):
    workdir = tmp_path / "w"
    command = [sys.executable, "-m", "experiments.vae_mnist", "--dataset=digits", "--epochs=1", "--hidden_sizes=16",
               "--latent_dim=2", "--seeds=0,1", f"--workdir={workdir}"]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]
    per_seed = [json.load(open(workdir / f"seed_{k}" / "results.json")) for k in (0, 1)]
    assert [r["config"]["seed"] for r in per_seed] == [0, 1]
    assert per_seed[0]["test_neg_elbo"] != per_seed[1]["test_neg_elbo"]  # the seeds draw other numbers
    results = json.load(open(workdir / "results.json"))
    values = [r["test_neg_elbo"] for r in per_seed]
    assert results["seeds"] == [0, 1] and results["mean"]["test_neg_elbo"] == pytest.approx(np.mean(values))
    assert results["std"]["test_neg_elbo"] == pytest.approx(np.std(values, ddof=1))
    assert f"test_neg_elbo: {np.mean(values):.4f} ± " in completed.stdout
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming from the checkpoint of epoch 1" in again.stderr  # each seed resumes, trains nothing
    assert json.load(open(workdir / "results.json"))["mean"] == results["mean"]
