"""One training run per workdir: an exclusive lock held for the whole run.

Two runs on one --workdir would write the same checkpoints, metrics.jsonl and results.json and ruin
each other's; on a shared machine that is the commonest way to lose a run. A training run therefore
takes an exclusive `fcntl.flock` on workdir/.lock before it loads any data, and a second one stops at
once with one line naming the holder (host, pid, start time). The operating system drops the lock
when its process dies, however it dies (kill -9 included), so there is never a stale lock to remove.
Reading modes (--mode=evaluate, --mode=sample, --predict) take no lock: they write nowhere a training
run writes. In a multi-process run, process 0 holds it.
"""

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator

from vaecnn import distributed, files
from vaecnn.errors import UserError

LOCK_FILE = ".lock"


class WorkdirBusy(UserError):
    """Another training run holds the workdir."""


def _holder(path: str) -> str:
    try:
        with open(path) as f:
            holder = json.load(f)
        return f"pid {holder['pid']} on {holder['host']}, started {holder['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not yet written its name"


@contextlib.contextmanager
def locked(workdir: str) -> Iterator[None]:
    """Holds workdir/.lock (creating the workdir) for the body; WorkdirBusy if another run holds it."""
    if not distributed.is_writer():
        yield
        return
    files.make_workdir(workdir)
    path = os.path.join(workdir, LOCK_FILE)
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            raise WorkdirBusy(f"--workdir={workdir} is in use by another training run ({_holder(path)}); wait for "
                              "it to finish, stop it, or choose another --workdir") from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}))
        handle.flush()
        yield
    finally:
        handle.close()  # closing the descriptor releases the lock

