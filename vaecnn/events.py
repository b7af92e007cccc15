"""TensorBoard event files in a run's workdir, beside metrics.jsonl, written with tensorboardX (pure
Python: no TensorFlow needed). `tensorboard --logdir runs/` shows every run below runs/.

What a run writes: per-epoch scalars (step = epoch; the same numbers as metrics.jsonl), training means
over each compiled chunk of steps (step = global training step), the resolved config as text, and the
VAE's picture grids of every epoch (step = epoch), so a reader can scrub through them.
"""

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from vaecnn import config as vconfig
from vaecnn import report


class EventWriter:
    """One run's TensorBoard writer. Every method takes plain host values.

    The event file is created by the first write, not before: a resumed run that stops at once (a damaged
    checkpoint, a checkpoint of another model) leaves the workdir's files as they were.
    """

    def __init__(self, workdir: str):
        self._workdir, self._file, self._pending = workdir, None, []

    @property
    def _writer(self):
        if self._file is None:
            from tensorboardX import SummaryWriter  # imported here: only runs that write events need it
            # write_to_disk=False on the processes other than 0 of a multi-process run: one set of files.
            self._file = SummaryWriter(logdir=self._workdir, flush_secs=30, write_to_disk=report.is_writer())
            for tag, text, step in self._pending:
                self._file.add_text(tag, text, step)
        return self._file

    def scalars(self, values: Mapping[str, Any], step: int, prefix: str = "") -> None:
        """Every finite number of `values` as the scalar `prefix + name` at `step`."""
        for name, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self._writer.add_scalar(prefix + name, float(value), step)

    def text(self, tag: str, text: str, step: int = 0) -> None:
        """Written with the first scalar or image (a text alone, e.g. the config, creates no file)."""
        # Indented four spaces: TensorBoard renders text as Markdown, and this keeps it verbatim.
        self._pending.append((tag, "\n".join("    " + line for line in text.splitlines()), step))

    def image(self, tag: str, image_HxW: np.ndarray, step: int) -> None:
        """A grayscale uint8 picture (e.g. report.image_grid's)."""
        self._writer.add_image(tag, np.asarray(image_HxW), step, dataformats="HW")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def open_events(workdir: str, config: Any) -> EventWriter:
    """The run's writer, with its resolved config as the text "config"."""
    events = EventWriter(workdir)
    events.text("config", json.dumps(vconfig.to_dict(config), indent=2, sort_keys=True))
    return events
