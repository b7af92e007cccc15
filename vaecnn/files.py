"""The files a run writes, written safely: its folder checked before anything runs, and every file
replaced atomically (written beside, then renamed), so an interrupted run never leaves a half-written
results.json or picture. Only the writing process of a multi-process run writes (distributed.is_writer)."""

import contextlib
import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from vaecnn import disk
from vaecnn.distributed import is_writer
from vaecnn.errors import ConfigError, DataError


def check_workdir(path: str) -> None:
    """Raises ConfigError unless `path` is a writable folder or could be created as one, without
    creating anything: its nearest existing ancestor must be a folder this process may write in.

    Why before anything runs: otherwise a typo'd or read-only --workdir fails only after the data has
    loaded (and, for a long run, after the first epoch), with an OS traceback.
    """
    if not path:
        raise ConfigError("--workdir is empty; name the folder for the run's outputs")
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ConfigError(f"--workdir={path} cannot be created: {existing} is a file, not a folder; "
                          "choose another --workdir")
    # os.access reports a read-only mount (EROFS) even to root, whose permission bits are not checked.
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"--workdir={path} cannot be written: {existing} is read-only for this process; "
                          "choose a --workdir on a writable disk")


def make_workdir(path: str) -> None:
    """Creates the folder `path` (and its parents) for a run's outputs, or raises ConfigError."""
    check_workdir(path)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"--workdir={path} cannot be created ({error.strerror}); choose another --workdir") \
            from error


def atomic_write(path: str, data: bytes) -> None:
    """Writes beside, then renames: `path` is either its old or its new content. A write that fails leaves
    no temporary file; for lack of space it is DiskFull's one line."""
    if not is_writer():
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temporary, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        if error.errno in disk.OUT_OF_SPACE:
            raise disk.out_of_space(path) from None
        raise


def jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic) or (hasattr(value, "shape") and getattr(value, "shape") == ()):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf; keep them visible instead of failing the write
    return value


def write_json(path: str, obj: Mapping[str, Any]) -> None:
    atomic_write(path, (json.dumps(jsonable(obj), indent=2, sort_keys=True) + "\n").encode())


def write_text(path: str, text: str) -> None:
    atomic_write(path, text.encode())


def read_json(path: str) -> dict[str, Any]:
    """A JSON object a run wrote; FileNotFoundError when there is none, DataError (one line) when it is
    damaged (cut, garbled, not an object)."""
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as error:
        raise DataError(f"{path} is damaged or unreadable ({type(error).__name__}: {str(error)[:80]}); restore it, "
                        "or remove it and rerun the command that writes it") from None
    if not isinstance(value, dict):
        raise DataError(f"{path} is damaged: it holds no JSON object; restore it, or remove it and rerun the command "
                        "that writes it")
    return value
