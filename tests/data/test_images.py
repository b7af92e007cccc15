"""Image data: IDX parsing and its errors, dataset resolution, TFDS (mocked), binarization."""

import gzip
import os
import struct
import subprocess
import sys
import time

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

from vaecnn.data import DATA_DIR_ENV, LocalCopy, images, tfds_source
from vaecnn.errors import DataError


def write_idx(path: str, array: np.ndarray, compress: bool = True) -> None:
    codes = {np.uint8: 0x08, np.int32: 0x0C}
    header = bytes([0, 0, codes[array.dtype.type], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(payload)


def fake_mnist(folder: str, num_train: int = 12, num_test: int = 5, compress: bool = True) -> dict:
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for split, count, prefix in (("train", num_train, "train"), ("test", num_test, "t10k")):
        pixels = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=count).astype(np.uint8)
        suffix = ".gz" if compress else ""
        write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte{suffix}"), pixels, compress)
        write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte{suffix}"), labels, compress)
        arrays[split] = (pixels, labels)
    return arrays


@pytest.mark.parametrize("compress", [True, False])
def test_idx_round_trip_through_data_dir(tmp_path, compress):
    arrays = fake_mnist(str(tmp_path / "mnist"), compress=compress)
    splits = images.load_image_dataset("mnist", data_dir=str(tmp_path))
    for split, (pixels, labels) in arrays.items():
        np.testing.assert_array_equal(splits[split].images[..., 0], pixels)
        np.testing.assert_array_equal(splits[split].labels, labels)
        assert splits[split].images.dtype == np.uint8 and splits[split].labels.dtype == np.int32


def test_read_idx_big_endian_int32(tmp_path):
    values = np.arange(-3, 9, dtype=np.int32).reshape(3, 4)
    write_idx(str(tmp_path / "x.idx"), values, compress=False)
    np.testing.assert_array_equal(images.read_idx(str(tmp_path / "x.idx")), values)


def test_environment_variable_is_used(tmp_path, monkeypatch):
    fake_mnist(str(tmp_path / "mnist"))
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert len(images.load_image_dataset("mnist")["train"].labels) == 12


@pytest.mark.parametrize("damage", ["bad_magic", "truncated", "not_gzip"])
def test_corrupt_files_give_clear_errors(tmp_path, damage):
    folder = tmp_path / "mnist"
    fake_mnist(str(folder))
    target = folder / "train-images-idx3-ubyte.gz"
    if damage == "bad_magic":
        with gzip.open(target, "wb") as f:
            f.write(b"\x12\x34\x08\x03" + b"\x00" * 64)
        expected = "not an IDX file"
    elif damage == "truncated":
        with gzip.open(target, "rb") as f:
            data = f.read()
        with gzip.open(target, "wb") as f:
            f.write(data[:-100])
        expected = "truncated or damaged"
    else:
        target.write_bytes(b"this is not gzip data at all")
        expected = "damaged"
    with pytest.raises(DataError, match=expected):
        images.load_image_dataset("mnist", data_dir=str(tmp_path))


def test_missing_files_and_folders_say_what_to_do(tmp_path):
    with pytest.raises(DataError, match="--data_dir"):
        images.load_image_dataset("mnist", data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="has no mnist/ folder"):
        images.load_image_dataset("mnist", data_dir=str(tmp_path))
    (tmp_path / "mnist").mkdir()
    write_idx(str(tmp_path / "mnist" / "train-images-idx3-ubyte.gz"), np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DataError, match="lacks"):
        images.load_image_dataset("mnist", data_dir=str(tmp_path))
    with pytest.raises(DataError, match="unknown dataset"):
        images.load_image_dataset("cifar", data_dir=str(tmp_path))


def test_tfds_data_source_path_with_mock_data():
    with tfds.testing.mock_data(num_examples=6):
        splits = images.load_tfds_dataset("mnist")
    for split in ("train", "test"):
        chex.assert_shape(splits[split].images, (6, 28, 28, 1))
        assert splits[split].images.dtype == np.uint8 and splits[split].labels.dtype == np.int32


@pytest.mark.slow  # a subprocess that imports TFDS
def test_offline_without_local_copy_stops_fast_with_instructions(tmp_path):
    """No data_dir, no prepared TFDS copy and no network: one clear message within 30 s."""
    script = ("import sys; from vaecnn.data import images\n"
              "try:\n"
              f"    images.load_image_dataset('mnist', tfds_data_dir={str(tmp_path)!r})\n"
              "except images.DataError as e:\n"
              "    print(e); sys.exit(3)\n")
    env = {k: v for k, v in os.environ.items() if k != DATA_DIR_ENV}
    if tfds_source.host_reachable(timeout=2):
        pytest.skip("the TFDS download host is reachable from here, so this is not an offline machine")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - start
    assert result.returncode == 3, result.stderr[-2000:]
    assert "--data_dir" in result.stdout and "download host cannot be reached" in result.stdout
    assert elapsed < 30, elapsed


def test_digits_offline_demo():
    splits = images.load_digits()
    assert splits["train"].images.shape == (1500, 8, 8, 1) and splits["test"].images.shape == (297, 8, 8, 1)
    assert splits["train"].images.max() == 255 and splits["train"].num_classes == 10


def test_digits_read_from_the_file_equal_scikit_learns_loader(monkeypatch):
    from sklearn.datasets import load_digits

    pixels_Nx64, labels_N = images._sklearn_digits()
    bunch = load_digits()
    np.testing.assert_array_equal(pixels_Nx64, bunch.data)
    np.testing.assert_array_equal(labels_N, bunch.target)
    # No file found: scikit-learn's own loader is asked (a stand-in here, so that the test sees which path ran).
    monkeypatch.setattr(images.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr("sklearn.datasets.load_digits", lambda: type(bunch)(data=bunch.data[:3], target=bunch.target[:3]))
    chex.assert_trees_all_equal(images._sklearn_digits(), (bunch.data[:3], bunch.target[:3]))


def test_dynamic_binarization_statistics_and_keys():
    pixels = jnp.full((20_000,), 64, jnp.uint8)
    first = images.binarize(jax.random.key(0), pixels)
    assert set(np.unique(first)) <= {0.0, 1.0}
    np.testing.assert_allclose(first.mean(), 64 / 255, atol=0.01)
    chex.assert_trees_all_equal(first, images.binarize(jax.random.key(0), pixels))  # same key, same bits
    assert np.mean(first != images.binarize(jax.random.key(1), pixels)) > 0.2       # redrawn per key
    fixed = images.binarize_once(0, np.full((10_000,), 64, np.uint8))
    assert set(np.unique(fixed)) <= {0, 255}
    chex.assert_trees_all_equal(images.binarize(jax.random.key(5), jnp.asarray(fixed)), jnp.asarray(fixed) / 255.0)


@pytest.mark.parametrize("partitionable", [True, False], ids=["partitionable threefry", "classic threefry"])
def test_binarization_draws_the_bits_of_the_images_own_shape(partitionable):
    # binarize draws on the [B, H*W*C] view for speed; the bits must be those of a draw in the images' shape.
    pixels_BxHxWx1 = jnp.asarray(np.random.default_rng(0).integers(0, 256, (5, 6, 7, 1), dtype=np.uint8))
    key = jax.random.key(3)
    with jax.threefry_partitionable(partitionable):
        expected = jax.random.bernoulli(key, pixels_BxHxWx1.astype(jnp.float32) / 255.0).astype(jnp.float32)
        chex.assert_trees_all_equal(images.binarize(key, pixels_BxHxWx1), expected)


def test_real_mnist_files(real_data_dir):
    splits = images.load_image_dataset("mnist", data_dir=real_data_dir)
    assert splits["train"].images.shape == (60_000, 28, 28, 1)
    assert splits["test"].images.shape == (10_000, 28, 28, 1)
    np.testing.assert_array_equal(np.bincount(splits["test"].labels)[:3], [980, 1135, 1032])


def test_a_missing_data_set_names_its_local_copy_as_a_structured_hint(tmp_path):
    with pytest.raises(DataError) as info:
        images.load_image_dataset("mnist", data_dir=str(tmp_path))
    hint = info.value.hint
    assert isinstance(hint, LocalCopy)
    assert "mnist/" in hint.folder and "train-images-idx3-ubyte.gz" in hint.folder
    assert hint.alternative == "or use --dataset=digits for an offline demo"
    assert str(info.value).endswith("; " + hint.alternative) and hint.folder in str(info.value)
