"""Room on the disk: free space before a large write, and one error line for a write that found none.

A write that fails for lack of space or quota, anywhere in a run, stops it with one line naming the
folder and its free space (DiskFull), and what was written before stays intact: files are replaced by
renaming (vaecnn.files), checkpoints are saved only where there is room for them and a failed save
never replaces the previous one (vaecnn.checkpoints), and the experiments turn any other such OSError
into the same line (experiments/_cli.py).
"""

import errno
import os
import shutil

from vaecnn.errors import DiskFull

OUT_OF_SPACE = (errno.ENOSPC, errno.EDQUOT)


def _free_bytes(path: str) -> int | None:
    folder = os.path.abspath(path)
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _megabytes(count: int | None) -> str:
    return "unknown space" if count is None else f"{count / 2**20:.1f} MB"


def out_of_space(path: str, what: str | None = None) -> DiskFull:
    """The one-line error of a write to `path` (a file, or the folder written in) that failed for lack of
    space or quota."""
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    what = what or os.path.basename(path)
    return DiskFull(f"no space left in {folder} ({_megabytes(_free_bytes(folder))} free) while writing {what}; "
                    "free some space (or use a --workdir on a larger disk) and rerun the same command to continue: "
                    "everything written before is intact")


def is_out_of_space(error: BaseException) -> bool:
    """A failure for lack of space or quota: an OSError, or the storage libraries' own words for one
    (orbax reports tensorstore's RESOURCE_EXHAUSTED as a ValueError)."""
    if isinstance(error, OSError) and error.errno in OUT_OF_SPACE:
        return True
    text = str(error)
    return any(words in text for words in ("RESOURCE_EXHAUSTED", "No space left on device", "Disk quota exceeded"))


def check_free_space(path: str, needed_bytes: int, what: str) -> None:
    """DiskFull, before anything is written, when the disk of `path` has less than `needed_bytes` free."""
    free = _free_bytes(path)
    if free is not None and free < needed_bytes:
        raise DiskFull(f"{what} needs about {_megabytes(needed_bytes)} but {path} has {_megabytes(free)} free; free "
                       "some space (or use a --workdir on a larger disk) and rerun the same command to continue: "
                       "everything written before is intact")
