"""Runs an experiment main with one injected fault, for tests/test_faults.py.

    python tests/faults.py '<fault as JSON>' experiments.vae_mnist --flag=value ...

The fault names a point of the library and the call at which it strikes:

    {"point": "chunk", "call": 5, "action": "sigterm"}       before the 5th chunk is dispatched
    {"point": "chunk", "call": 5, "action": "sigkill"}
    {"point": "checkpoint", "call": 2, "action": "sigkill"}  after orbax wrote the 2nd checkpoint, before its
                                                             file digests: inside a checkpoint save
    {"point": "checkpoint", "call": 2, "action": "enospc"}   orbax's own out-of-space failure, its temporary
                                                             folder left behind
    {"point": "metrics", "call": 2, "action": "sigkill"}     half of the 2nd metrics line written, then killed
    {"point": "write", "call": 7, "action": "enospc"}        the 7th file write of the library's own Python
                                                             writes (metrics, JSON, pictures, events) fails
                                                             half-way with ENOSPC
    {"point": "fold", "call": 2, "action": "sigkill"}        as the 2nd cross-validation fold starts
    {"point": "time", "seconds": 3.2, "action": "sigkill"}   after that long, wherever the run is
    {"point": "no_space_guard", "action": "none"}           no free-space check before checkpoints

It patches only this process's modules, so the library carries no test hooks.
"""

import builtins
import errno
import json
import os
import runpy
import signal
import sys
import threading

import orbax.checkpoint as ocp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # this tree's vaecnn and experiments, as `python -m` run from ROOT imports them

from vaecnn import checkpoints, disk, engine, events, files, lifecycle, metrics_log, plots, workdir  # noqa: E402


def _strike(action: str) -> None:
    if action == "sigkill":
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "sigterm":
        os.kill(os.getpid(), signal.SIGTERM)
    elif action == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    else:
        raise ValueError(f"unknown action {action!r}")


def _at_call(function, fault, before=True):
    """`function`, striking at its fault["call"]-th call (before it runs, or after)."""
    count = 0

    def wrapped(*args, **kwargs):
        nonlocal count
        count += 1
        if before and count == fault["call"]:
            _strike(fault["action"])
        result = function(*args, **kwargs)
        if not before and count == fault["call"]:
            _strike(fault["action"])
        return result

    return wrapped


class _FailingFile:
    """A file whose write puts down half of its data, then fails with ENOSPC (a disk that filled up)."""

    def __init__(self, file):
        self._file = file

    def write(self, data):
        self._file.write(data[:len(data) // 2])
        self._file.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._file.close()


def install(fault: dict) -> None:
    point, action = fault["point"], fault["action"]
    if point == "chunk":
        engine.ChunkedEpochs.run_chunk = _at_call(engine.ChunkedEpochs.run_chunk, fault)
    elif point == "checkpoint" and action == "sigkill":
        checkpoints.Checkpointer._write_file_digests = _at_call(checkpoints.Checkpointer._write_file_digests, fault)
    elif point == "checkpoint" and action == "enospc":
        original, count = ocp.CheckpointManager.save, 0

        def save(self, step, *args, **kwargs):
            nonlocal count
            count += 1
            if count == fault["call"]:  # what orbax leaves and raises when tensorstore finds the disk full
                os.makedirs(os.path.join(str(self.directory), f"{step}.orbax-checkpoint-tmp-0"), exist_ok=True)
                raise ValueError('RESOURCE_EXHAUSTED: Error writing "state.params" in OCDBT database')
            return original(self, step, *args, **kwargs)

        ocp.CheckpointManager.save = save
    elif point == "metrics":
        original_append, count = metrics_log.MetricsLog.append, 0

        def append(self, line):
            nonlocal count
            count += 1
            if count == fault["call"]:
                with open(self.path, "a") as f:
                    text = json.dumps(line, default=float)
                    f.write(text[:len(text) // 2])
                _strike(action)
            return original_append(self, line)

        metrics_log.MetricsLog.append = append
    elif point == "write":
        count = 0

        def faulty_open(file, mode="r", *args, **kwargs):
            nonlocal count
            opened = builtins.open(file, mode, *args, **kwargs)
            if any(flag in mode for flag in "wax"):
                count += 1
                if count == fault["call"]:
                    return _FailingFile(opened)
            return opened

        for module in (files, metrics_log, plots, workdir, checkpoints, events):
            module.open = faulty_open
    elif point == "fold":
        lifecycle.train_and_evaluate = _at_call(lifecycle.train_and_evaluate, fault)  # each fold is one run
    elif point == "no_space_guard":  # the free-space check skipped: a full disk meets the writes themselves
        disk.check_free_space = lambda *args: None
    elif point == "time":
        timer = threading.Timer(fault["seconds"], _strike, args=(action,))
        timer.daemon = True
        timer.start()
    else:
        raise ValueError(f"unknown fault point {point!r}")


if __name__ == "__main__":
    install(json.loads(sys.argv[1]))
    module = sys.argv[2]
    sys.argv = [module] + sys.argv[3:]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
