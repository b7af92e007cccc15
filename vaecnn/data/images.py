"""Image datasets as uint8 arrays: MNIST and Fashion-MNIST (IDX files or TFDS), and sklearn's digits.

Where the data comes from, in order:
  1. `data_dir` (the --data_dir flag) or the VAECNN_DATA_DIR environment variable: a folder with
     `<dataset>/` holding the four `*-idx?-ubyte` files, gzipped or not (or the files directly);
  2. TFDS through `tfds.data_source` (ArrayRecord; no TensorFlow), from TFDS's own data folder,
     downloading only when the download host answers -- offline, the run stops within seconds with
     a message saying where to put the files, instead of retrying for minutes.
`digits` (8x8, bundled with scikit-learn) needs neither: an offline demo.

Every loader returns {'train': ImageSplit, 'test': ImageSplit} with images [N, H, W, 1] uint8 in
0..255 and labels [N] int32.
"""

import dataclasses
import gzip
import importlib.util
import os
import struct
import zlib

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from vaecnn.config import option
from vaecnn.data import LocalCopy, data_root, tfds_source
from vaecnn.errors import DataError

IDX_DATASETS = ("mnist", "fashion_mnist")
DATASETS = IDX_DATASETS + ("digits",)


def dataset_option() -> Any:
    """The `dataset` field of every image experiment's config."""
    return option("mnist", "Image dataset.", choices=DATASETS)


def data_dir_option() -> Any:
    """The `data_dir` field of every image experiment's config (a path: a run may resume with another)."""
    return option(None, "Folder with <dataset>/ IDX files (default: $VAECNN_DATA_DIR, then TFDS).", resumable=True)

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


@dataclasses.dataclass(frozen=True)
class ImageSplit:
    images: np.ndarray  # [N, H, W, C] uint8
    labels: np.ndarray  # [N] int32

    def __post_init__(self):
        if len(self.images) != len(self.labels):
            raise DataError(f"{len(self.images)} images but {len(self.labels)} labels")

    @property
    def num_classes(self) -> int:
        return int(self.labels.max()) + 1


def read_idx(path: str) -> np.ndarray:
    """Reads one IDX file (LeCun's MNIST format), gzipped or not, checking its header.

    Header: two zero bytes, a dtype code, the number of dimensions n, then n big-endian uint32 sizes.
    """
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as error:  # gzip raises these for truncated or damaged files
        raise DataError(f"cannot read {path}: {error}. The file is damaged; download it again.") from error
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number {data[:4].hex()}); "
                        "expected LeCun's MNIST format, e.g. train-images-idx3-ubyte.gz")
    dtype, ndim = np.dtype(_IDX_DTYPES[data[2]]), data[3]
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataError(f"{path} is truncated: its header declares {ndim} dimensions but the file ends after "
                        f"{len(data)} bytes. Download it again.")
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    expected = header_size + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise DataError(f"{path} is truncated or damaged: its header promises shape {shape} "
                        f"({expected} bytes) but it has {len(data)} bytes. Download it again.")
    return np.frombuffer(data, dtype, offset=header_size).reshape(shape).astype(dtype.newbyteorder("="))


def _find_idx_file(folder: str, stem: str) -> str | None:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz", stem.replace("-idx", ".idx")):
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    return None


def _idx_folder(name: str, data_dir: str) -> str | None:
    """The folder under data_dir that holds `name`'s IDX files, if any."""
    for folder in (os.path.join(data_dir, name), data_dir):
        if _find_idx_file(folder, _IDX_FILES["train"][0]):
            return folder
    return None


def load_idx_dataset(folder: str) -> dict[str, ImageSplit]:
    """Train and test splits from the four IDX files in `folder`."""
    splits = {}
    for split, (image_stem, label_stem) in _IDX_FILES.items():
        paths = [_find_idx_file(folder, stem) for stem in (image_stem, label_stem)]
        missing = [stem for stem, path in zip((image_stem, label_stem), paths) if path is None]
        if missing:
            raise DataError(f"{folder} lacks {', '.join(missing)} (.gz or uncompressed)")
        images, labels = (read_idx(path) for path in paths)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DataError(f"{paths[0]} holds {images.dtype} of shape {images.shape}, not N x H x W uint8 images")
        splits[split] = ImageSplit(images[..., None], labels.astype(np.int32))
    return splits


def _sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits file read directly (64 pixel values then the label per row): importing
    sklearn.datasets also imports scipy, which costs each run's start-up seconds for a 500 kB table."""
    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    path = os.path.join(spec.submodule_search_locations[0], "datasets", "data", "digits.csv.gz") if spec else ""
    if not os.path.exists(path):  # another layout of scikit-learn: its own loader
        from sklearn.datasets import load_digits as sklearn_digits

        bunch = sklearn_digits()
        return bunch.data, bunch.target
    table = np.loadtxt(path, delimiter=",")
    return table[:, :-1], table[:, -1]


def load_digits() -> dict[str, ImageSplit]:
    """scikit-learn's 8x8 digits (1,797 images, values 0..16 rescaled to 0..255), split 1,500/297
    with a fixed permutation: an offline demo that needs no download."""
    pixels_Nx64, labels = _sklearn_digits()
    images = np.round(pixels_Nx64.reshape(-1, 8, 8) * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = labels.astype(np.int32)
    order = np.random.default_rng(0).permutation(len(labels))
    train, test = order[:1500], order[1500:]
    return {"train": ImageSplit(images[train], labels[train]), "test": ImageSplit(images[test], labels[test])}


def load_tfds_dataset(name: str, tfds_data_dir: str | None = None) -> dict[str, ImageSplit]:
    """MNIST-like datasets through `tfds.data_source` (ArrayRecord random access; no TensorFlow),
    under vaecnn.data.tfds_source's policy (download only when the host answers)."""
    sources = tfds_source.open_sources(name, {"train": "train", "test": "test"}, tfds_data_dir, _local_copy(name))
    splits = {}
    for split, source in sources.items():
        examples = [source[i] for i in range(len(source))]
        images = np.stack([example["image"] for example in examples]).astype(np.uint8)
        labels = np.asarray([example["label"] for example in examples], np.int32)
        splits[split] = ImageSplit(images, labels)
    return splits


def _local_copy(name: str) -> LocalCopy:
    files = ", ".join(stem + ".gz" for pair in _IDX_FILES.values() for stem in pair)
    return LocalCopy(f"a folder holding {name}/ with the four IDX files ({files})",
                     "or use --dataset=digits for an offline demo")


def load_image_dataset(name: str, data_dir: str | None = None,
                       tfds_data_dir: str | None = None) -> dict[str, ImageSplit]:
    """Resolves and loads `name` (mnist, fashion_mnist, digits) as described in the module docstring."""
    if name == "digits":
        return load_digits()
    if name not in IDX_DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    data_dir = data_root(data_dir)
    if data_dir is not None:
        if not os.path.isdir(data_dir):
            raise tfds_source.missing_data(name, f"the data folder {data_dir} does not exist", _local_copy(name))
        folder = _idx_folder(name, data_dir)
        if folder is None:
            raise tfds_source.missing_data(name, f"{data_dir} has no {name}/ folder of IDX files", _local_copy(name))
        return load_idx_dataset(folder)
    return load_tfds_dataset(name, tfds_data_dir)


def binarize_once(seed: int, images_uint8: np.ndarray) -> np.ndarray:
    """A fixed binarization (e.g. of the test set, so every evaluation sees the same bits): pixels
    become 0 or 255 with probability intensity / 255. `binarize` leaves such images unchanged."""
    draws = np.random.default_rng(seed).random(images_uint8.shape)
    return np.where(draws < images_uint8 / 255.0, 255, 0).astype(np.uint8)


def binarize(key: jax.Array, images_uint8: jax.Array) -> jax.Array:
    """Dynamic binarization: each pixel is 1 with probability intensity / 255, drawn afresh per key.

    Returns float32 in {0, 1} with the images' shape. The draws are made on the [B, H*W*C] view of
    [B, H, W, C] images: the same bits (a key's bits for a shape depend only on the flat index), while
    XLA:CPU, which vectorizes along the minor dimension, ran the draws for a channel of size 1 as
    scalar code.
    """
    flat = images_uint8.reshape(images_uint8.shape[0], -1) if images_uint8.ndim > 2 else images_uint8
    probabilities = flat.astype(jnp.float32) / 255.0
    return jax.random.bernoulli(key, probabilities).astype(jnp.float32).reshape(images_uint8.shape)
