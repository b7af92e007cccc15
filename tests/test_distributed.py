"""Several processes over one global mesh (vaecnn.distributed), on this machine's CPU: 2 processes x 2 devices
give what 1 process x 4 devices gives (metrics and checkpoint contents), a run killed in every process
resumes to the uninterrupted result, and a missing coordinator or a dead peer ends the run with one line."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from jax.sharding import SingleDeviceSharding

from vaecnn import distributed
from vaecnn.errors import UserError

# Slow: end-to-end runs and subprocesses (./launch.sh test --quick leaves them out). One xdist group: the
# two-process run below is made once, on one worker, for the tests that compare with it.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("distributed")]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VAE = ["vae_mnist", "--dataset=digits", "--hidden_sizes=32", "--latent_dim=2", "--steps_per_chunk=2"]
TIMINGS = ("seconds", "per_second", "hardware", "config", "wall", "compile")


def _toy_file(path, count: int, seed: int) -> str:
    """'label text' lines: a positive or negative word among neutral ones (tests/recipes' toy task)."""
    rng = np.random.default_rng(seed)
    words = {0: ("bad", "dull", "boring"), 1: ("good", "great", "fun")}
    lines = [f"{i % 2} the {rng.choice(words[i % 2])} film {'and plot ' * int(rng.integers(0, 3))}" for i in range(count)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _env(devices: int) -> dict[str, str]:
    return {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}


def _processes(args: list[str], workdir: str, processes: int = 2, devices: int = 2, **popen) -> subprocess.Popen:
    """The launcher of ./launch.sh multiprocess: `processes` processes of `devices` CPU devices each."""
    return subprocess.Popen([sys.executable, "-m", "experiments._multiprocess", args[0], f"--num_processes={processes}",
                             *args[1:], f"--workdir={workdir}"], cwd=ROOT, env=_env(devices), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def _single(args: list[str], workdir: str, devices: int = 4) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"experiments.{args[0]}", *args[1:], f"--workdir={workdir}"],
                          cwd=ROOT, env=_env(devices), capture_output=True, text=True, timeout=300)


def _finish(process: subprocess.Popen) -> tuple[str, str]:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    return out, err


def _numbers(tree, prefix=""):
    if isinstance(tree, dict):
        return {k: v for name, value in tree.items() if not any(t in name for t in TIMINGS)
                for k, v in _numbers(value, f"{prefix}/{name}").items()}
    if isinstance(tree, list):
        return {k: v for i, value in enumerate(tree) for k, v in _numbers(value, f"{prefix}[{i}]").items()}
    return {prefix: tree} if isinstance(tree, (int, float)) and not isinstance(tree, bool) else {}


def _metrics(workdir: str) -> dict:
    return _numbers([json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))])


def _checkpoint(workdir: str) -> list[np.ndarray]:
    """The newest checkpoint's arrays, restored onto one device whatever topology saved them."""
    folder = os.path.join(workdir, "checkpoints")
    path = os.path.join(folder, str(max(int(name) for name in os.listdir(folder))), "tree")
    checkpointer = ocp.StandardCheckpointer()
    metadata = checkpointer.metadata(path)
    metadata = getattr(metadata, "item_metadata", metadata)
    device = SingleDeviceSharding(jax.devices()[0])
    target = jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device), metadata)
    return [np.asarray(leaf) for leaf in jax.tree.leaves(checkpointer.restore(path, target))]


def _assert_same_run(workdir_a: str, workdir_b: str) -> None:
    a, b = _metrics(workdir_a), _metrics(workdir_b)
    assert a.keys() == b.keys()
    for name in a:
        assert a[name] == pytest.approx(b[name], rel=1e-5, abs=1e-7), name
    for leaf_a, leaf_b in zip(_checkpoint(workdir_a), _checkpoint(workdir_b), strict=True):
        np.testing.assert_allclose(leaf_a, leaf_b, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def vae_two_processes(tmp_path_factory) -> tuple[str, str]:
    """A 3-epoch VAE run of 2 processes x 2 devices: its workdir and what it printed."""
    workdir = str(tmp_path_factory.mktemp("two") / "vae")
    out, _ = _finish(_processes([*VAE, "--epochs=3"], workdir))
    return workdir, out


@pytest.mark.parametrize("address, expected", [("10.0.0.1:8476", ("10.0.0.1", 8476)), ("[::1]:1", ("::1", 1)),
                                               ("localhost:65535", ("localhost", 65535))])
def test_a_coordinator_address_is_split_into_host_and_port(address, expected):
    assert distributed.parse_host_port(address) == expected


@pytest.mark.parametrize("address", ["10.0.0.1", "10.0.0.1:", ":8476", "[]:8476", "host:0", "host:65536", "host:x"])
def test_a_bad_coordinator_address_is_one_user_error(address):
    with pytest.raises(UserError, match=r"expected host:port with a port in 1-65535"):
        distributed.parse_host_port(address)


def test_vae_two_processes_of_two_devices_equal_one_process_of_four(vae_two_processes, tmp_path):
    two, out = vae_two_processes
    completed = _single([*VAE, "--epochs=3"], str(tmp_path / "one"))
    assert completed.returncode == 0, completed.stderr[-3000:]
    _assert_same_run(two, str(tmp_path / "one"))
    assert out.count("test negative ELBO") == 1  # process 0 prints; the other is silent
    assert json.load(open(os.path.join(two, "results.json")))["hardware"]["device_count"] == 4


def test_text_classifier_two_processes_of_two_devices_equal_one_process_of_four(tmp_path):
    files = {split: _toy_file(tmp_path / f"toy.{split}", count, seed)
             for split, count, seed in (("train", 200, 0), ("dev", 60, 1), ("test", 60, 2))}
    text = ["rnn_sentiment", *(f"--{split}_file={path}" for split, path in files.items()), "--epochs=2",
            "--embed_dim=16", "--hidden_size=16", "--batch_size=20", "--num_buckets=2", "--eval_batch_size=40"]
    _finish(_processes(text, str(tmp_path / "two")))
    completed = _single(text, str(tmp_path / "one"))
    assert completed.returncode == 0, completed.stderr[-3000:]
    _assert_same_run(str(tmp_path / "two"), str(tmp_path / "one"))  # the dev-selected parameters included
    two, one = (json.load(open(tmp_path / name / "results.json")) for name in ("two", "one"))
    assert two["test_accuracy"] == pytest.approx(one["test_accuracy"])


def test_killing_every_process_then_rerunning_gives_the_uninterrupted_result(vae_two_processes, tmp_path):
    args = [*VAE, "--epochs=3"]
    killed = tmp_path / "killed"
    launcher = _processes(args, str(killed), start_new_session=True)
    deadline = time.monotonic() + 240
    while not os.path.isdir(killed / "checkpoints" / "1") and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(launcher.pid, signal.SIGKILL)  # the launcher and both processes, at once
    launcher.communicate()
    assert len([json.loads(line) for line in open(killed / "metrics.jsonl")]) < 3
    _, err = _finish(_processes(args, str(killed)))
    assert "resuming from the checkpoint of epoch" in err
    _assert_same_run(str(killed), vae_two_processes[0])


def test_an_unreachable_coordinator_is_one_line_within_the_timeout(tmp_path):
    start = time.monotonic()
    completed = subprocess.run([sys.executable, "-m", "experiments.vae_mnist", "--dataset=digits",
                                f"--workdir={tmp_path}", "--coordinator_address=127.0.0.1:9", "--num_processes=2",
                                "--process_id=1", "--distributed_timeout=2"], cwd=ROOT, capture_output=True,
                               text=True, timeout=120)
    assert completed.returncode == 1 and time.monotonic() - start < 60
    assert completed.stderr.strip().splitlines()[-1].startswith(
        "error: process 1 could not reach the coordinator at 127.0.0.1:9 within 2 s")


def test_a_dead_peer_stops_every_process_with_one_line(tmp_path):
    launcher = _processes([*VAE, "--epochs=200"], str(tmp_path / "w"), devices=1)
    deadline = time.monotonic() + 240
    while not os.path.isdir(tmp_path / "w" / "checkpoints" / "1") and time.monotonic() < deadline:
        time.sleep(0.2)
    children = open(f"/proc/{launcher.pid}/task/{launcher.pid}/children").read().split()
    os.kill(int(children[1]), signal.SIGKILL)  # process 1
    start = time.monotonic()
    _, err = launcher.communicate(timeout=120)
    assert launcher.returncode != 0 and time.monotonic() - start < 60
    assert err.strip().splitlines()[-1] == "error: process 1 of 2 exited with status -9; the others were stopped"
    assert all(not os.path.exists(f"/proc/{child}") or open(f"/proc/{child}/stat").read().split()[2] == "Z"
               for child in children)
