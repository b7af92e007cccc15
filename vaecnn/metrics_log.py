"""metrics.jsonl, one line of means per epoch, and the one-line form of such a line for the log."""

import contextlib
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from absl import logging

from vaecnn import disk
from vaecnn.distributed import is_writer
from vaecnn.errors import DataError
from vaecnn.files import atomic_write, jsonable


class MetricsLog:
    """metrics.jsonl: one JSON object per epoch, appended as training goes."""

    def __init__(self, path: str):
        self.path = path

    def read(self) -> list[dict[str, Any]]:
        """The complete lines. A last line cut mid-write (a crash, a full disk) is dropped with a warning:
        the checkpoint decides where a run stands, and a resumed run rewrites that epoch's line."""
        if not os.path.exists(self.path):
            return []
        with open(self.path) as f:
            lines = [line for line in f if line.strip()]
        parsed = []
        for number, line in enumerate(lines, 1):
            try:
                parsed.append(json.loads(line))
            except ValueError:
                if number < len(lines) or line.endswith("\n"):
                    raise DataError(f"{self.path}: line {number} is not JSON; it was edited or damaged. Remove "
                                    "that line (the checkpoints decide where the run stands) and rerun") from None
                logging.warning("%s: its last line was cut mid-write; dropped (the checkpoint decides where the "
                                "run stands)", self.path)
        return parsed

    def truncate_after(self, epoch: int) -> list[dict[str, Any]]:
        """Keeps the lines of epochs <= `epoch` (those a resumed run's checkpoint covers): a run
        stopped between a metrics line and its checkpoint rewrites that epoch rather than repeat it."""
        kept = [line for line in self.read() if line["epoch"] <= epoch]
        atomic_write(self.path, "".join(json.dumps(jsonable(line)) + "\n" for line in kept).encode())
        return kept

    def append(self, line: Mapping[str, Any]) -> None:
        """One more line; a write that fails takes back what it wrote of it (so no cut line stays)."""
        if not is_writer():
            return
        size = os.path.getsize(self.path) if os.path.exists(self.path) else 0
        try:
            with open(self.path, "a") as f:
                f.write(json.dumps(jsonable(line)) + "\n")
        except OSError as error:
            with contextlib.suppress(OSError), open(self.path, "r+") as f:
                f.truncate(size)
            if error.errno in disk.OUT_OF_SPACE:
                raise disk.out_of_space(self.path, f"epoch {line.get('epoch')}'s line of {self.path}") from None
            raise


def format_metrics(line: Mapping[str, Any], skip: Iterable[str] = ("epoch",)) -> str:
    parts = []
    for key, value in line.items():
        if key in skip or key.endswith("/count"):
            continue
        parts.append(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}")
    return "  ".join(parts)
