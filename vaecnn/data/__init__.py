"""The data layer: images (IDX, TFDS, digits), text (vaecnn.data.text), device-resident batches.

Every reader finds its files under one datasets root, `data_root`: the --data_dir flag, else
$VAECNN_DATA_DIR. A data set that cannot be found there (nor had through TFDS) is a DataError whose
`hint` says, as a `LocalCopy`, which folder to point --data_dir at and what else would do.
"""

import dataclasses
import os

DATA_DIR_ENV = "VAECNN_DATA_DIR"


def data_root(data_dir: str | os.PathLike | None) -> str | None:
    """The local datasets folder: `data_dir` (the --data_dir flag), else $VAECNN_DATA_DIR, else None.
    The one place either is read, for images and text alike."""
    return os.fspath(data_dir) if data_dir else os.environ.get(DATA_DIR_ENV) or None


@dataclasses.dataclass(frozen=True)
class LocalCopy:
    """Where a data set's local files belong (`folder`, in words) and, optionally, what else would do."""
    folder: str
    alternative: str | None = None
