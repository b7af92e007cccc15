"""Long runs you can trust: faults injected into real runs (tests/faults.py), then the same command rerun.

Each fault ends the run with one line and its documented exit status (or, for SIGKILL, no chance to say
anything); rerunning the same command then continues, and the final figures equal those of a run that was
never disturbed, bit for bit. Fault moments are drawn from a seeded generator, so a failure reproduces.
Runs are tiny (the 8x8 digits, toy sentences): the whole module is a few minutes on two cores.
"""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from vaecnn.preemption import EXIT_STATUS

# Slow: end-to-end runs and subprocesses (./launch.sh test --quick leaves them out). One xdist group: the
# module's trained workdirs are made once, on one worker, for all of its tests.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("faults")]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNNER = os.path.join(ROOT, "tests", "faults.py")
# 46 steps of 32 per epoch (1,500 training images) in chunks of 5: 10 chunks an epoch, 20 in all.
VAE = ["experiments.vae_mnist", "--dataset=digits", "--epochs=2", "--hidden_sizes=32", "--latent_dim=2",
       "--batch_size=32", "--steps_per_chunk=5"]
TEXT = ["experiments.cnn_sentiment", "--epochs=2", "--embed_dim=8", "--channels=4,4,4", "--batch_size=10",
        "--num_buckets=2", "--eval_batch_size=50"]
rng = np.random.default_rng(2026)


def run(command: list[str], workdir, fault: dict | None = None, timeout: int = 240) -> subprocess.CompletedProcess:
    prefix = [sys.executable, RUNNER, json.dumps(fault)] if fault else [sys.executable, "-m"]
    return subprocess.run(prefix + command + [f"--workdir={workdir}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def _timeless(record: dict) -> dict:
    return {k: v for k, v in record.items() if not any(word in k for word in ("second", "hardware", "config"))}


def _metrics(workdir) -> list[dict]:
    return [_timeless(json.loads(line)) for line in open(os.path.join(workdir, "metrics.jsonl"))]


def figures(workdir) -> dict:
    """What a run computed (not how long it took): results.json's numbers and metrics.jsonl's lines."""
    return {"results": _timeless(json.load(open(os.path.join(workdir, "results.json")))), "metrics": _metrics(workdir)}


def fold_figures(workdir) -> dict:
    """A cross-validation's results and every fold's metrics lines."""
    results = json.load(open(os.path.join(workdir, "results.json")))
    return {"folds": results["fold_accuracies"], "mean": results["cv_accuracy_mean"],
            **{fold: _metrics(os.path.join(workdir, fold)) for fold in sorted(os.listdir(workdir))
               if fold.startswith("fold_")}}


def one_line_error(completed: subprocess.CompletedProcess, status: int = 1) -> str:
    assert completed.returncode == status, completed.stderr[-3000:]
    assert "Traceback" not in completed.stderr, completed.stderr[-3000:]
    last = completed.stderr.strip().splitlines()[-1]
    return last


@pytest.fixture(scope="module")
def vae_straight(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("straight") / "vae"
    assert run(VAE, workdir).returncode == 0
    return figures(workdir)


def _toy(path, count, seed):
    generator = np.random.default_rng(seed)
    words = {1: ["good", "great", "fun"], 0: ["bad", "dull", "flat"]}
    lines = [f"{i % 2} the {generator.choice(words[i % 2])} film " + " ".join(["plot"] * generator.integers(0, 9))
             for i in range(count)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def toy_text(tmp_path_factory):
    folder = tmp_path_factory.mktemp("text")
    return {"train": _toy(folder / "train.txt", 120, 0), "test": _toy(folder / "test.txt", 40, 1),
            "all": _toy(folder / "all.txt", 90, 2), "folder": folder}


def test_sigterm_twice_mid_epoch_then_the_rerun_equals_an_undisturbed_run(vae_straight, tmp_path):
    # Each stop counts chunks from its own start; a resumed run has fewer left, so draw both from 2-8.
    for chunk in rng.choice(np.arange(2, 9), size=2):
        stopped = run(VAE, tmp_path, {"point": "chunk", "call": int(chunk), "action": "sigterm"})
        line = one_line_error(stopped, EXIT_STATUS)
        assert "rerun the same command to continue" in line and line.startswith("stopped "), line
    assert run(VAE, tmp_path).returncode == 0
    assert figures(tmp_path) == vae_straight


def test_sigkill_at_seeded_moments_then_the_rerun_equals_an_undisturbed_run(vae_straight, tmp_path):
    faults = [{"point": "checkpoint", "call": 1, "action": "sigkill"},     # inside a checkpoint save
              {"point": "metrics", "call": 1, "action": "sigkill"},        # a cut metrics line
              {"point": "chunk", "call": int(rng.integers(2, 20)), "action": "sigkill"},
              {"point": "time", "seconds": float(rng.uniform(4.0, 9.0)), "action": "sigkill"}]
    for fault in faults:
        killed = run(VAE, tmp_path, fault)
        assert killed.returncode in (-9, 0), (fault, killed.stderr[-2000:])  # a late timer may find it done
    assert run(VAE, tmp_path).returncode == 0
    assert figures(tmp_path) == vae_straight


def test_a_full_disk_stops_with_one_line_keeps_what_was_written_and_resumes_exactly(vae_straight, tmp_path):
    # ENOSPC inside orbax's save of epoch 1's checkpoint, then at a seeded later write of the rerun.
    for fault in [{"point": "checkpoint", "call": 1, "action": "enospc"},
                  {"point": "write", "call": int(rng.integers(2, 8)), "action": "enospc"}]:
        line = one_line_error(run(VAE, tmp_path, fault))
        assert line.startswith("error: ") and ("no space left" in line or "needs about" in line), (fault, line)
        checkpoint_dir = tmp_path / "checkpoints"
        if checkpoint_dir.exists():
            assert not [name for name in os.listdir(checkpoint_dir) if "tmp" in name]  # no half-written checkpoint
    assert run(VAE, tmp_path).returncode == 0
    assert figures(tmp_path) == vae_straight


def test_text_classifier_sigterm_mid_epoch_resumes_exactly(toy_text, tmp_path):
    command = TEXT + [f"--train_file={toy_text['train']}", f"--test_file={toy_text['test']}"]
    assert run(command, tmp_path / "straight").returncode == 0
    one_line_error(run(command, tmp_path / "stopped", {"point": "chunk", "call": 4, "action": "sigterm"}),
                   EXIT_STATUS)
    assert run(command, tmp_path / "stopped").returncode == 0
    assert figures(tmp_path / "stopped") == figures(tmp_path / "straight")


def test_cross_validation_survives_kills_at_a_fold_boundary_and_sigterm_inside_a_fold(toy_text, tmp_path):
    command = TEXT + [f"--train_file={toy_text['all']}", "--cv_folds=2", "--cv_dev_fraction=0.2"]
    assert run(command, tmp_path / "straight").returncode == 0
    stopped = tmp_path / "stopped"
    assert run(command, stopped, {"point": "fold", "call": 2, "action": "sigkill"}).returncode == -9
    one_line_error(run(command, stopped, {"point": "chunk", "call": 3, "action": "sigterm"}), EXIT_STATUS)
    assert run(command, stopped).returncode == 0
    assert fold_figures(stopped) == fold_figures(tmp_path / "straight")


def test_a_second_run_on_a_held_workdir_stops_at_once_and_the_first_is_untouched(vae_straight, tmp_path):
    first = subprocess.Popen([sys.executable, "-m"] + VAE + [f"--workdir={tmp_path}"], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = tmp_path / ".lock"
    deadline = time.monotonic() + 60
    while not (lock.exists() and lock.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    second = run(VAE, tmp_path)
    line = one_line_error(second)
    assert f"pid {first.pid}" in line and "in use by another training run" in line, line
    assert first.wait(timeout=240) == 0
    assert figures(tmp_path) == vae_straight


def _can_mount_tmpfs() -> bool:
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs a tmpfs of its own (unshare -rm and mount, a user namespace)")
def test_a_really_full_disk_then_freed_resumes_exactly(vae_straight, tmp_path):
    """The run's workdir on a 400 kB tmpfs (the whole run needs about 600 kB; in a mount namespace of its
    own): the run stops with one line;
    the same tmpfs grown, the same command finishes with the undisturbed run's numbers."""
    mount, kept = tmp_path / "small", tmp_path / "kept"
    mount.mkdir()
    python = " ".join([sys.executable, "-m"] + VAE + [f"--workdir={mount}/vae"])
    script = (f"mount -t tmpfs -o size=400k tmpfs {mount} && cd {ROOT} && "
              f"{{ {python} 2> {tmp_path}/full.err; echo $? > {tmp_path}/full.status; }}; "
              f"mount -o remount,size=64m {mount} && {python} 2> {tmp_path}/freed.err; echo $? > {tmp_path}/freed.status; "
              f"cp -r {mount}/vae {kept}")
    subprocess.run(["unshare", "-rm", "sh", "-c", script], timeout=480, check=True)
    full_err = (tmp_path / "full.err").read_text()
    assert (tmp_path / "full.status").read_text().strip() == "1", full_err[-2000:]
    assert "Traceback" not in full_err and full_err.strip().splitlines()[-1].startswith("error: "), full_err[-2000:]
    assert "MB free" in full_err.strip().splitlines()[-1]
    assert (tmp_path / "freed.status").read_text().strip() == "0", (tmp_path / "freed.err").read_text()[-2000:]
    assert figures(kept) == vae_straight
