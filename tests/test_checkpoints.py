"""Checkpoints are verified: damaged bytes are detected, reported, skipped and never trained on."""

import errno
import glob
import os
import threading

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vaecnn import checkpoints
from vaecnn.errors import CheckpointError, DiskFull
from vaecnn.metrics_log import MetricsLog

from test_train import run_fit


def tree(scale: float) -> dict:
    # 64 x 64 float32 = 16 KiB: above OCDBT's 1 KiB inline limit, so the values live in the data files.
    return {"w": jnp.arange(4096.0).reshape(64, 64) * scale, "b": jnp.full((4,), scale), "step": jnp.int32(7)}


def saved(tmp_path, epochs=(1, 2)) -> checkpoints.Checkpointer:
    checkpointer = checkpoints.Checkpointer(str(tmp_path / "checkpoints"))
    for epoch in epochs:
        checkpointer.save(epoch, tree(float(epoch)), {"epoch": epoch, "best_value": 0.5 * epoch})
    return checkpointer


def flip_one_bit(step_dir: str) -> None:
    """One bit in the middle of every array-data file: zstd still decodes most such flips, so orbax on
    its own would read the changed values back silently."""
    for path in glob.glob(os.path.join(step_dir, "tree", "ocdbt.process_0", "d", "*")):
        data = bytearray(open(path, "rb").read())
        data[len(data) // 2] ^= 0x01
        open(path, "wb").write(data)


def test_round_trip_records_signature_and_digest(tmp_path):
    checkpointer = saved(tmp_path)
    epoch, restored, record = checkpointer.restore_latest(tree(0.0), set_aside_damaged=False)
    assert epoch == 2 and record["epoch"] == 2 and record["best_value"] == 1.0
    chex.assert_trees_all_equal(restored, tree(2.0))
    assert record[checkpoints.SIGNATURE] == checkpoints.tree_signature(tree(0.0))
    assert record[checkpoints.DIGEST] == checkpoints.tree_digest(tree(2.0), record)
    assert os.path.exists(tmp_path / "checkpoints" / "2" / checkpoints.FILE_DIGESTS)
    checkpointer.close()


def test_an_asynchronous_save_keeps_the_values_of_its_call_and_reads_wait_for_it(tmp_path, monkeypatch):
    donated = threading.Event()
    write = checkpoints.Checkpointer._write
    monkeypatch.setattr(checkpoints.Checkpointer, "_write",
                        lambda *args: (donated.wait(timeout=60), write(*args)))  # writes after the donation
    checkpointer = checkpoints.Checkpointer(str(tmp_path / "checkpoints"), asynchronous=True)
    source = tree(3.0)
    checkpointer.save(3, source, {"epoch": 3})
    # The next training step donates the state's buffers: the save must hold its own copy.
    jax.jit(lambda t: jax.tree.map(lambda x: x * 0, t), donate_argnums=0)(source)
    donated.set()
    epoch, restored, record = checkpointer.restore_latest(tree(0.0), set_aside_damaged=False)  # waits first
    assert epoch == 3 and record["epoch"] == 3
    chex.assert_trees_all_equal(restored, tree(3.0))
    assert os.path.exists(tmp_path / "checkpoints" / "3" / checkpoints.FILE_DIGESTS)
    checkpointer.close()


def test_an_asynchronous_save_s_full_disk_is_raised_by_the_next_call_and_leaves_no_half(tmp_path, monkeypatch):
    checkpointer = checkpoints.Checkpointer(str(tmp_path / "checkpoints"), asynchronous=True)
    checkpointer.save(1, tree(1.0), {"epoch": 1})

    def full(self, step, *args, **kwargs):  # what orbax leaves and raises when the disk fills mid-write
        os.makedirs(os.path.join(str(self.directory), f"{step}.orbax-checkpoint-tmp-0"))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoints.ocp.CheckpointManager, "save", full)
    checkpointer.save(2, tree(2.0), {"epoch": 2})  # returns: the write fails in the background
    with pytest.raises(DiskFull, match="the checkpoint of epoch 2"):
        checkpointer.close()
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1"]  # epoch 1 intact, no temporary folder
    monkeypatch.undo()
    reopened = checkpoints.Checkpointer(str(tmp_path / "checkpoints"))
    assert reopened.restore_latest(tree(0.0), set_aside_damaged=False)[0] == 1
    reopened.close()


def test_digest_sees_every_value_and_the_record():
    record = {"epoch": 1}
    base = checkpoints.tree_digest(tree(1.0), record)
    changed = tree(1.0)
    changed["w"] = changed["w"].at[2, 3].set(jnp.nextafter(changed["w"][2, 3], jnp.inf))  # one ulp
    assert checkpoints.tree_digest(changed, record) != base
    assert checkpoints.tree_digest(tree(1.0), {"epoch": 2}) != base
    assert checkpoints.tree_digest(tree(1.0), {**record, checkpoints.DIGEST: "x"}) == base  # excludes itself


@pytest.mark.parametrize("keep_file_digests", [True, False], ids=["file digests", "array digest only"])
def test_damaged_newest_falls_back_to_the_previous_and_is_set_aside(tmp_path, keep_file_digests):
    checkpointer = saved(tmp_path)
    step_dir = str(tmp_path / "checkpoints" / "2")
    if not keep_file_digests:  # a run killed between writing the checkpoint and digesting its files
        os.remove(os.path.join(step_dir, checkpoints.FILE_DIGESTS))
    flip_one_bit(step_dir)
    damaged_bytes = {p: open(p, "rb").read() for p in glob.glob(step_dir + "/**/*", recursive=True)
                     if os.path.isfile(p)}
    epoch, restored, _ = checkpointer.restore_latest(tree(0.0), set_aside_damaged=True)
    assert epoch == 1
    chex.assert_trees_all_equal(restored, tree(1.0))
    assert checkpointer.latest_epoch() == 1 and not os.path.exists(step_dir)
    [aside] = glob.glob(str(tmp_path / "checkpoints_damaged" / "2-*"))
    for path, data in damaged_bytes.items():  # moved intact, for inspection
        assert open(path.replace(step_dir, aside), "rb").read() == data
    checkpointer.close()


def test_read_only_restore_skips_but_does_not_move(tmp_path):
    checkpointer = saved(tmp_path)
    flip_one_bit(str(tmp_path / "checkpoints" / "2"))
    epoch, _, _ = checkpointer.restore_latest(tree(0.0), set_aside_damaged=False)
    assert epoch == 1 and os.path.isdir(tmp_path / "checkpoints" / "2")
    checkpointer.close()


def test_every_checkpoint_damaged_is_one_clear_error(tmp_path):
    checkpointer = saved(tmp_path)
    for epoch in (1, 2):
        flip_one_bit(str(tmp_path / "checkpoints" / str(epoch)))
    with pytest.raises(CheckpointError, match=r"every checkpoint .* is damaged \(epochs 2, 1\)"):
        checkpointer.restore_latest(tree(0.0), set_aside_damaged=True)
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2"]  # nothing moved when nothing is usable
    checkpointer.close()


def test_no_checkpoint_is_none(tmp_path):
    checkpointer = checkpoints.Checkpointer(str(tmp_path / "checkpoints"))
    assert checkpointer.restore_latest(tree(0.0), set_aside_damaged=True) is None
    checkpointer.close()


def test_another_model_is_a_checkpoint_error_not_damage(tmp_path):
    checkpointer = saved(tmp_path)
    other = {**tree(0.0), "w": jnp.zeros((64, 65))}
    with pytest.raises(CheckpointError, match="other model flags"):
        checkpointer.restore_latest(other, set_aside_damaged=True)
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2"]
    checkpointer.close()


@pytest.mark.slow
def test_training_resumes_from_the_intact_checkpoint_and_matches_an_uninterrupted_run(tmp_path):
    """The issue's case: damage the newest checkpoint's array data, rerun. The run reports it, resumes
    from the epoch before, and ends bit-identical to a run never interrupted."""
    straight = run_fit(tmp_path / "straight", epochs=4)
    run_fit(tmp_path / "damaged", epochs=3)
    flip_one_bit(str(tmp_path / "damaged" / "checkpoints" / "3"))
    resumed = run_fit(tmp_path / "damaged", epochs=4)
    chex.assert_trees_all_equal(resumed.state, straight.state)
    lines = MetricsLog(str(tmp_path / "damaged" / "metrics.jsonl")).read()
    assert [line["epoch"] for line in lines] == [1, 2, 3, 4]
    assert np.isfinite([line["train/loss"] for line in lines]).all()
    assert glob.glob(str(tmp_path / "damaged" / "checkpoints_damaged" / "3-*"))
