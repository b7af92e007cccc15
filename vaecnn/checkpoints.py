"""Checkpoints with orbax: the train state plus a small JSON record, one per epoch.

A checkpoint is written atomically (orbax writes to a temporary folder and renames it), so an
interrupted run leaves only complete checkpoints behind and resumes from the newest.
"""

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from vaecnn.errors import CheckpointError


class Checkpointer:
    """Saves and restores (pytree, json) pairs under `directory`, keyed by epoch."""

    def __init__(self, directory: str, max_to_keep: int = 2):
        self.directory = os.path.abspath(directory)
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_epoch(self) -> int | None:
        return self._manager.latest_step()

    def save(self, epoch: int, tree: Any, record: dict[str, Any]) -> None:
        self._manager.save(epoch, args=ocp.args.Composite(
            tree=ocp.args.StandardSave(tree), record=ocp.args.JsonSave(record)))

    def restore(self, epoch: int, like: Any) -> tuple[Any, dict[str, Any]]:
        """Restores epoch `epoch` into arrays with the shapes, dtypes and shardings of `like`."""
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        try:
            restored = self._manager.restore(epoch, args=ocp.args.Composite(
                tree=ocp.args.StandardRestore(abstract), record=ocp.args.JsonRestore()))
        except (ValueError, KeyError, FileNotFoundError) as error:
            raise CheckpointError(
                f"cannot restore the checkpoint of epoch {epoch} in {self.directory}: {error}\n"
                "It was probably written by a run with other model flags. Rerun with those flags, or "
                "use a new --workdir.") from error
        return restored.tree, restored.record

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()
