"""Stopping a run cleanly when it is asked to: SIGTERM (SLURM, Kubernetes and preemptible VMs send it
before they kill a job) and SIGINT (Ctrl-C).

While `StopRequests` is active, either signal only sets a flag. The train loop looks at it after every
chunk of steps it dispatches: it then lets that chunk finish, saves its exact position inside the epoch
(vaecnn.train) and raises `Preempted`, whose one line says where it stopped; the experiment exits with
`EXIT_STATUS`. Rerunning the same command continues from there and ends with the numbers of a run that
was never stopped. More signals while the checkpoint is written are noted and otherwise ignored, so the
previous checkpoint can never be left half replaced by a second Ctrl-C (SIGKILL cannot be caught, and
orbax's atomic rename keeps the previous checkpoint intact then too).

In a multi-process run every process must stop after the same chunk: `requested()` is then true on
all of them as soon as one was signalled (an all-gather of the flag after each chunk).
"""

import signal
import threading

import jax
import numpy as np
from absl import logging

# EX_TEMPFAIL of sysexits.h: a temporary failure, to be retried (here: rerun the same command).
EXIT_STATUS = 75
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Preempted(Exception):
    """The run stopped on a signal after saving its position; rerunning the same command continues it."""


class StopRequests:
    """Catches SIGTERM and SIGINT for the duration of a `with` block (main thread only; elsewhere, e.g.
    a test runner's worker thread, signals keep their handlers and nothing is requested)."""

    def __init__(self):
        self.signal_name: str | None = None
        self._previous = {}

    def __enter__(self) -> "StopRequests":
        global _active
        if threading.current_thread() is threading.main_thread():
            self._previous = {number: signal.signal(number, self._handle) for number in SIGNALS}
        self._outer, _active = _active, self
        return self

    def __exit__(self, *exc_info) -> None:
        global _active
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous, _active = {}, self._outer

    def _handle(self, number: int, frame) -> None:
        del frame
        name = signal.Signals(number).name
        if self.signal_name is None:
            self.signal_name = name
            logging.warning("%s received: stopping after the current chunk of steps, once its position is saved",
                            name)
        else:
            logging.warning("%s received again: the run is already stopping and stops once its checkpoint is "
                            "written", name)

    def requested(self) -> bool:
        """Whether a signal asked this run, on any of its processes, to stop."""
        local = self.signal_name is not None
        if jax.process_count() == 1:
            return local
        from jax.experimental import multihost_utils
        return bool(np.any(multihost_utils.process_allgather(np.int32(local))))


_active: StopRequests | None = None


def requested() -> bool:
    """Whether the active StopRequests (none outside a run: False) was signalled, on any process."""
    return _active is not None and _active.requested()


def signal_name() -> str:
    """The signal that stopped the run (on another process of it: 'a signal to another process')."""
    return (_active.signal_name if _active is not None else None) or "a signal to another process"
