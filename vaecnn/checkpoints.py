"""Checkpoints with orbax: the train state plus a small JSON record, one per epoch, each verified.

A checkpoint is written atomically (orbax writes to a temporary folder and renames it), so an
interrupted run leaves only complete checkpoints behind. Atomic is not intact, though: a disk or a
copy can still flip bytes later, and orbax reads such bytes back silently when they still decompress.
So every checkpoint carries two digests:

    <epoch>/files.sha256.json   SHA-256 of every file orbax wrote, checked before orbax reads any of
                                them (damaged bytes never reach its readers, whose failures on them
                                are noisy and partial);
    record: signature, digest   the path, shape and dtype of every array (which model the checkpoint
                                belongs to), and SHA-256 over the arrays' values and the rest of the
                                record, recomputed from what was restored.
 A checkpoint whose arrays or record do not
match, or cannot be read at all, is *damaged*: `restore_latest` reports it in one line and falls
back to the previous one (two are kept), and training never starts from it. A checkpoint whose
signature differs from the model's was written by other model flags: that is a CheckpointError.

Training saves asynchronously: the arrays are copied to the host, and a background thread writes them
and digests the files while the next epoch trains (about 0.1-0.3 s an epoch of the default VAE on two
cores, otherwise spent waiting). The next save, any read, and closing the checkpointer wait for it first.
"""

import hashlib
import json
import os
import re
import shutil
import time
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from vaecnn import background, disk, distributed
from vaecnn.errors import CheckpointError

DIGEST = "digest"
SIGNATURE = "signature"
FILE_DIGESTS = "files.sha256.json"
STOPPED_DIR = "checkpoint_stopped"  # vaecnn.train: the position of an epoch stopped by a signal
# Room asked for beyond the arrays' own bytes before a save (the record, file digests, orbax metadata).
SAVE_MARGIN_BYTES = 2**18


class DamagedCheckpoint(Exception):
    """A checkpoint that cannot be read back as it was written (internal: restore_latest handles it)."""


def tree_signature(tree: Any) -> list[str]:
    """One 'path shape dtype' line per array leaf: what the model's state looks like, not its values."""
    return [f"{jax.tree_util.keystr(path)} {tuple(leaf.shape)} {leaf.dtype}"
            for path, leaf in jax.tree_util.tree_leaves_with_path(tree)]


def tree_digest(tree: Any, record: dict[str, Any]) -> str:
    """SHA-256 (hex) over every leaf's path, shape, dtype and bytes, then the record minus its digest."""
    leaves = jax.tree_util.tree_leaves_with_path(tree)
    return _digest([jax.tree_util.keystr(path) for path, _ in leaves], [leaf for _, leaf in leaves], record)


def _digest(paths: list[str], leaves: list[Any], record: dict[str, Any]) -> str:
    hasher = hashlib.sha256()
    for path, value in zip(paths, jax.device_get(leaves)):
        value = np.ascontiguousarray(value)
        hasher.update(f"{path} {value.shape} {value.dtype}\n".encode())
        hasher.update(value.tobytes())
    rest = {key: value for key, value in record.items() if key != DIGEST}
    hasher.update(json.dumps(rest, sort_keys=True, default=str).encode())
    return hasher.hexdigest()


_PATH_PART = re.compile(r"\['([^']*)'\]|\.(\w+)|\[(\d+)\]")


def path_parts(path: str) -> tuple[str, ...]:
    """A key path's names, whatever the containers: "['state'].opt_state[0].mu" (as saved from a TrainState)
    and "['state']['opt_state'][0]['mu']" (as restored without one) are both ('state', 'opt_state', '0', 'mu')."""
    return tuple(next(group for group in match.groups() if group is not None) for match in _PATH_PART.finditer(path))


def leaves_by_path(tree: Any) -> dict[tuple[str, ...], Any]:
    """{path_parts: leaf} of every array leaf of `tree`."""
    return {path_parts(jax.tree_util.keystr(path)): leaf for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


class Checkpointer:
    """Saves and restores (pytree, json) pairs under `directory`, keyed by epoch."""

    def __init__(self, directory: str, max_to_keep: int = 2, keep_period: int | None = None,
                 asynchronous: bool = False):
        """Keeps the newest `max_to_keep` checkpoints, and with `keep_period` = N every N-th epoch's too.

        `asynchronous`: `save` returns once the arrays are copied to the host, and a background thread
        (vaecnn.background) writes them and their file digests while the caller goes on. Every other method
        first waits for that write, and raises its error (a DiskFull, with its one line). In a run of
        several processes saves stay synchronous: orbax writes each array once, from the devices' arrays.
        """
        self.directory = os.path.abspath(directory)
        # orbax's own saves are synchronous: the file digests are taken from the finished checkpoint.
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, keep_period=keep_period, create=True,
                                               enable_async_checkpointing=False)
        self._manager = ocp.CheckpointManager(self.directory, options=options)
        self._writer = background.Worker("checkpoint") if asynchronous and jax.process_count() == 1 else None

    def latest_epoch(self) -> int | None:
        self.wait()
        return self._manager.latest_step()

    def epochs(self) -> list[int]:
        """The epochs that have a checkpoint, oldest first."""
        self.wait()
        return sorted(self._manager.all_steps())

    def save(self, epoch: int, tree: Any, record: dict[str, Any]) -> None:
        """Writes the checkpoint of `epoch`, or raises DiskFull (checked first, and on failure) leaving the
        previous checkpoints as they were. Asynchronous, it returns once `tree` is copied to the host."""
        self.wait()  # the previous save finished (or its error raised) before the free-space check
        what = f"the checkpoint of epoch {epoch}"
        array_bytes = sum(leaf.nbytes for leaf in jax.tree.leaves(tree))
        disk.check_free_space(self.directory, array_bytes + SAVE_MARGIN_BYTES, what)
        if self._writer is not None:  # a copy: the caller's next training step donates (reuses) these buffers
            tree = jax.tree.map(np.array, jax.device_get(tree))
        # Through JSON first, so the digest covers exactly what a restore will read back.
        record = json.loads(json.dumps({**record, SIGNATURE: tree_signature(tree)}))
        record[DIGEST] = tree_digest(tree, record)
        if self._writer is None:
            self._write(epoch, tree, record, what)
        else:
            self._writer.submit(lambda: self._write(epoch, tree, record, what))

    def _write(self, epoch: int, tree: Any, record: dict[str, Any], what: str) -> None:
        try:
            if epoch in self._manager.all_steps():  # a stopped epoch's position, saved again
                self._manager.delete(epoch)
            self._manager.save(epoch, args=ocp.args.Composite(
                tree=ocp.args.StandardSave(tree), record=ocp.args.JsonSave(record)))
            self._manager.wait_until_finished()
            if distributed.is_writer():  # one process digests the files every process wrote with orbax
                self._write_file_digests(epoch)
        except Exception as error:
            if not disk.is_out_of_space(error):
                raise
            self._remove_unfinished(epoch)
            raise disk.out_of_space(self.directory, what) from None
        distributed.barrier(f"checkpoint digests {epoch}")

    def _remove_unfinished(self, epoch: int) -> None:
        """What a failed save left: orbax's temporary folder, or a renamed one without its file digests."""
        if not distributed.is_writer() or not os.path.isdir(self.directory):
            return
        for name in os.listdir(self.directory):
            if name.startswith(f"{epoch}.") and "tmp" in name:
                shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)
        step_dir = self._step_dir(epoch)
        if os.path.isdir(step_dir) and not os.path.exists(os.path.join(step_dir, FILE_DIGESTS)):
            shutil.rmtree(step_dir, ignore_errors=True)
        self._manager.reload()

    def delete(self, epoch: int) -> None:
        """Removes the checkpoint of `epoch` if there is one."""
        self.wait()
        if epoch in self._manager.all_steps():
            self._manager.delete(epoch)

    def _step_dir(self, epoch: int) -> str:
        return os.path.join(self.directory, str(epoch))

    def _file_digests(self, epoch: int) -> dict[str, str]:
        step_dir, digests = self._step_dir(epoch), {}
        for folder, _, names in os.walk(step_dir):
            for name in names:
                path = os.path.join(folder, name)
                relative = os.path.relpath(path, step_dir)
                if not relative.startswith(FILE_DIGESTS):
                    with open(path, "rb") as f:
                        digests[relative] = hashlib.file_digest(f, "sha256").hexdigest()
        return digests

    def _write_file_digests(self, epoch: int) -> None:
        path = os.path.join(self._step_dir(epoch), FILE_DIGESTS)
        digests = self._file_digests(epoch)  # before the temporary file exists beside them
        with open(path + ".tmp", "w") as f:
            json.dump(digests, f, indent=0, sort_keys=True)
        os.replace(path + ".tmp", path)

    def _check_files(self, epoch: int) -> None:
        """Raises DamagedCheckpoint if a file differs from its digest or is missing. A checkpoint without
        file digests (a run stopped between writing it and digesting it) is left to the array digest."""
        path = os.path.join(self._step_dir(epoch), FILE_DIGESTS)
        if not os.path.exists(path):
            return
        try:
            with open(path) as f:
                expected = json.load(f)
        except (OSError, ValueError) as error:
            raise DamagedCheckpoint(f"its {FILE_DIGESTS} cannot be read") from error
        actual = self._file_digests(epoch)
        bad = sorted(name for name, digest in expected.items() if actual.get(name) != digest)
        if bad:
            raise DamagedCheckpoint(f"{len(bad)} of its files differ from their digests, e.g. {bad[0]}")

    def restore(self, epoch: int, like: Any = None) -> tuple[Any, dict[str, Any]]:
        """Restores epoch `epoch` into arrays with the shapes, dtypes and shardings of `like`, verified; with
        `like` None, as saved (nested dicts and lists: no optimizer or model is needed to read it).

        Raises CheckpointError if it belongs to another model, DamagedCheckpoint if it is damaged.
        """
        self.wait()
        self._check_files(epoch)
        try:
            record = self._manager.restore(epoch, args=ocp.args.Composite(record=ocp.args.JsonRestore())).record
        except Exception as error:  # a damaged JSON, a missing file, ...
            raise DamagedCheckpoint(f"its record cannot be read ({type(error).__name__})") from error
        if not isinstance(record, dict):
            raise DamagedCheckpoint("its record is not a JSON object")
        if like is not None and SIGNATURE in record and record[SIGNATURE] != tree_signature(like):
            raise CheckpointError(
                f"the checkpoint of epoch {epoch} in {self.directory} belongs to another model (its arrays "
                "differ in shape or number): it was written by a run with other model flags. Rerun with those "
                "flags, or use a new --workdir.")
        abstract = None if like is None else jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        try:
            tree = self._manager.restore(epoch, args=ocp.args.Composite(tree=ocp.args.StandardRestore(abstract))).tree
        except Exception as error:  # tensorstore / zstd errors on damaged bytes, missing array files, ...
            if SIGNATURE not in record:  # written before signatures: a mismatch looks like this too
                raise CheckpointError(
                    f"cannot restore the checkpoint of epoch {epoch} in {self.directory} "
                    f"({type(error).__name__}); it was probably written by a run with other model flags. "
                    "Rerun with those flags, or use a new --workdir.") from error
            raise DamagedCheckpoint(f"its arrays cannot be read ({type(error).__name__})") from error
        if DIGEST not in record:
            logging.warning("the checkpoint of epoch %d in %s predates digests: restored unverified", epoch,
                            self.directory)
        elif (tree_digest(tree, record) if like is not None else self._digest_as_saved(tree, record)) != record[DIGEST]:
            raise DamagedCheckpoint("its arrays do not match the digest written with them")
        return tree, record

    @staticmethod
    def _digest_as_saved(tree: Any, record: dict[str, Any]) -> str:
        """tree_digest of the tree as it was saved, from the same tree restored without its containers: the
        record's signature gives each leaf's saved path, in the saved order."""
        paths = [line[:line.index(" (")] for line in record[SIGNATURE]]
        leaves = leaves_by_path(tree)
        if len(leaves) != len(paths) or any(path_parts(path) not in leaves for path in paths):
            raise DamagedCheckpoint("its arrays do not match the signature written with them")
        return _digest(paths, [leaves[path_parts(path)] for path in paths], record)

    def restore_latest(self, like: Any, set_aside_damaged: bool) -> tuple[int, Any, dict[str, Any]] | None:
        """(epoch, tree, record) of the newest intact checkpoint, or None when there is none at all.

        Each damaged checkpoint on the way is reported in one warning line; with set_aside_damaged it is
        moved (intact, for inspection) to <directory>_damaged/, so the run can rewrite that epoch.
        Raises CheckpointError when checkpoints exist but every one is damaged.
        """
        damaged = []
        for epoch in reversed(self.epochs()):
            try:
                tree, record = self.restore(epoch, like)
            except DamagedCheckpoint as error:
                logging.warning("the checkpoint of epoch %d in %s is damaged (%s); falling back to an older one",
                                epoch, self.directory, error)
                damaged.append(epoch)
                continue
            if set_aside_damaged:
                self._set_aside(damaged)
            return epoch, tree, record
        if damaged:
            raise CheckpointError(
                f"every checkpoint in {self.directory} is damaged (epochs {', '.join(map(str, damaged))}): "
                "nothing can be resumed. Move that folder away to train from scratch, or use a new --workdir.")
        return None

    def verify(self, epoch: int, like: Any) -> bool:
        """Whether the checkpoint of `epoch` reads back and matches its digest."""
        self.wait()
        try:
            _, record = self.restore(epoch, like)
        except (DamagedCheckpoint, CheckpointError):
            return False
        return DIGEST in record

    def _set_aside(self, epochs: list[int]) -> None:
        if not epochs:
            return
        if not distributed.is_writer():  # process 0 moves them; the others wait for it, then reload
            distributed.barrier("damaged checkpoints set aside")
            self._manager.reload()
            return
        aside = f"{self.directory}_damaged"
        os.makedirs(aside, exist_ok=True)
        for epoch in epochs:
            target = os.path.join(aside, f"{epoch}-{time.strftime('%Y%m%d-%H%M%S')}")
            shutil.move(os.path.join(self.directory, str(epoch)), target)
            logging.warning("moved the damaged checkpoint of epoch %d to %s", epoch, target)
        distributed.barrier("damaged checkpoints set aside")
        self._manager.reload()

    def wait(self) -> None:
        """Returns when no save is in flight; raises the error of the one that was (e.g. DiskFull)."""
        if self._writer is not None:
            self._writer.wait()

    def close(self) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
        finally:
            self._manager.close()
