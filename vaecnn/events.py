"""TensorBoard event files in a run's workdir, beside metrics.jsonl, written with tensorboardX (pure
Python: no TensorFlow needed). `tensorboard --logdir runs/` shows every run below runs/.

What a run writes: per-epoch scalars (step = epoch; the same numbers as metrics.jsonl), training means
over each compiled chunk of steps (step = global training step), the resolved config as text, and the
VAE's picture grids of every epoch (step = epoch), so a reader can scrub through them.
"""

import contextlib
import json
import math
import os
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from vaecnn import config as vconfig
from vaecnn import disk, distributed


TIME_SCALARS = ("epoch_seconds", "compile_seconds", "eval_seconds", "train_seconds")


class EventWriter:
    """One run's TensorBoard event file. Every method takes plain host values.

    Written synchronously, in the caller's thread, with tensorboardX's own summaries and record format:
    its SummaryWriter writes from a background thread, where a full disk is a traceback and a queue that
    can block the run forever; here a failed write raises in the run itself (one line, vaecnn.disk).
    The file is created by the first write, not before: a resumed run that stops at once (a damaged
    checkpoint, a checkpoint of another model) leaves the workdir's files as they were. On the processes
    other than 0 of a multi-process run nothing is written.
    """

    def __init__(self, workdir: str):
        self._workdir, self._file, self._pending = workdir, None, []

    def _write(self, summary, step: int) -> None:
        if not distributed.is_writer():
            return
        from tensorboardX.event_file_writer import EventsWriter  # imported here: only runs that write need it
        from tensorboardX.proto import event_pb2

        with self._out_of_space_named():
            if self._file is None:
                self._file = EventsWriter(os.path.join(self._workdir, "events"))
                for pending_summary, pending_step in self._pending:
                    self._file.write_event(event_pb2.Event(wall_time=time.time(), step=pending_step,
                                                           summary=pending_summary))
            self._file.write_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))

    @contextlib.contextmanager
    def _out_of_space_named(self):
        try:
            yield
        except OSError as error:
            if error.errno not in disk.OUT_OF_SPACE:
                raise
            raise disk.out_of_space(self._workdir, "the TensorBoard event file") from None

    def scalars(self, values: Mapping[str, Any], step: int, prefix: str = "") -> None:
        """Every finite number of `values` as the scalar `prefix + name` at `step`; the timing figures
        under time/ (their own group, apart from the test/ and train/ curves)."""
        from tensorboardX import summary

        for name, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                tag = f"time/{name}" if name in TIME_SCALARS and not prefix else prefix + name
                self._write(summary.scalar(tag, float(value)), step)

    def text(self, tag: str, text: str, step: int = 0) -> None:
        """Written with the first scalar or image (a text alone, e.g. the config, creates no file)."""
        from tensorboardX import summary

        # Indented four spaces: TensorBoard renders text as Markdown, and this keeps it verbatim.
        self._pending.append((summary.text(tag, "\n".join("    " + line for line in text.splitlines())), step))

    def image(self, tag: str, image_HxW: np.ndarray, step: int) -> None:
        """A grayscale uint8 picture (e.g. plots.image_grid's)."""
        from tensorboardX import summary

        self._write(summary.image(tag, np.asarray(image_HxW), dataformats="HW"), step)

    def flush(self) -> None:
        """Onto the disk now (once per epoch)."""
        if self._file is not None:
            with self._out_of_space_named():
                self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            with self._out_of_space_named():
                self._file.close()
            self._file = None


def open_events(workdir: str, config: Any) -> EventWriter:
    """The run's writer, with its resolved config as the text "config"."""
    events = EventWriter(workdir)
    events.text("config", json.dumps(vconfig.to_dict(config), indent=2, sort_keys=True))
    return events
