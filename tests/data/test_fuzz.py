"""Seeded fuzzing of every file reader: random bytes, truncations and byte flips of valid files.

The contract of each reader: it returns a result, or raises the project's DataError (which the
experiments print as one line). Any other exception -- an IndexError, a UnicodeDecodeError, a
MemoryError from a header that promises 10^12 items -- is a bug these tests exist to find.
"""

import gzip
import os
import struct

import numpy as np
import pytest

from vaecnn import embeddings
from vaecnn.data import images
from vaecnn.data import text as tx
from vaecnn.data.text.tokens import read_json_file
from vaecnn.errors import DataError

CASES_PER_READER = 300
ACCEPT_ANY_BYTES = {"text_lines"}


def _idx_bytes(array: np.ndarray) -> bytes:
    return struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


VALID = {
    "idx": _idx_bytes(np.arange(3 * 4 * 4, dtype=np.uint8).reshape(3, 4, 4)),
    "glue_tsv": b"sentence\tlabel\na fine film\t1\na dull one\t0\nit 's ok\t1\n",
    "kim_lines": b"1 a stirring , funny film\n0 dull and lifeless\n1 gorgeous\n",
    "mr_lines": "a witty film\nsome caf\xe9 charm \x85 still\n".encode("latin-1"),
    "vocab": b'{"format": "vaecnn.text.Vocabulary", "version": 1, "min_freq": 1, "max_size": null, '
             b'"tokens": ["<pad>", "<unk>", "film"]}',
    "glove_txt": b"the 0.1 -0.2 0.3\nfilm 1e-3 2 -3.5\ncaf\xc3\xa9 0 0 1\n",
    "word2vec_bin": b"2 3\nthe " + struct.pack("<3f", 0.1, -0.2, 0.3) + b"\nfilm " + struct.pack("<3f", 1, 2, 3) + b"\n",
    "text_pipeline": b'{"format": "vaecnn.text.TextPipeline", "class_names": ["negative", "positive"], "max_len": '
                     b'1000, "boundaries": [3, 7], "vocab": {"format": "vaecnn.text.Vocabulary", "version": 1, '
                     b'"min_freq": 1, "max_size": null, "tokens": ["<pad>", "<unk>", "film"]}}',
}


def _mutations(valid: bytes, seed: int):
    """CASES_PER_READER inputs: a third random bytes, a third truncations, a third byte flips."""
    rng = np.random.default_rng(seed)
    for case in range(CASES_PER_READER):
        kind = case % 3
        if kind == 0:
            yield rng.integers(0, 256, rng.integers(0, 200), dtype=np.uint8).tobytes()
        elif kind == 1:
            yield valid[:rng.integers(0, len(valid) + 1)]
        else:
            data = bytearray(valid)
            for _ in range(rng.integers(1, 6)):
                data[rng.integers(0, len(data))] = rng.integers(0, 256)
            yield bytes(data)


def _readers(tmp_path):
    """name -> (valid bytes, read(path) -> result). Each reader is called as the pipeline calls it."""

    def mr(path):
        folder = os.path.dirname(path)
        os.replace(path, os.path.join(folder, "rt-polarity.pos"))
        with open(os.path.join(folder, "rt-polarity.neg"), "wb") as f:
            f.write(VALID["mr_lines"])
        return tx.load_mr(folder)

    def text_pipeline(path):
        folder = os.path.dirname(path)
        os.replace(path, os.path.join(folder, tx.PIPELINE_FILE))
        return tx.TextPipeline.load(folder)

    def gzipped_idx(path):
        with open(path, "rb") as f:
            data = f.read()
        with open(path + ".gz", "wb") as f:  # a valid gzip of fuzzed bytes, and fuzzed gzip bytes below
            f.write(gzip.compress(data))
        images.read_idx(path + ".gz")
        return images.read_idx(path)

    return {
        "idx": (VALID["idx"], gzipped_idx),
        "idx_gz_bytes": (gzip.compress(VALID["idx"]), lambda path: images.read_idx(_renamed(path, ".gz"))),
        "glue_tsv": (VALID["glue_tsv"], tx.read_glue_tsv),
        "kim_lines": (VALID["kim_lines"], tx.read_kim_lines),
        "text_lines": (VALID["mr_lines"], tx.read_text_lines),
        "mr": (VALID["mr_lines"], mr),
        "vocab": (VALID["vocab"], lambda path: tx.Vocabulary.from_dict(read_json_file(path, "fuzz"), path)),
        "text_pipeline": (VALID["text_pipeline"], text_pipeline),
        # A fresh path per case: the reader caches by path.
        "glove_txt": (VALID["glove_txt"], lambda path: embeddings.load_vectors_file(_renamed(path, ".txt"))),
        "word2vec_bin": (VALID["word2vec_bin"], lambda path: embeddings.load_vectors_file(_renamed(path, ".bin"))),
    }


def _renamed(path: str, suffix: str) -> str:
    os.replace(path, path + suffix)
    return path + suffix


READERS = ["idx", "idx_gz_bytes", "glue_tsv", "kim_lines", "text_lines", "mr", "vocab", "text_pipeline", "glove_txt",
           "word2vec_bin"]


def _write(folder, data: bytes) -> str:
    folder.mkdir()
    path = str(folder / "input")
    with open(path, "wb") as f:
        f.write(data)
    return path


@pytest.mark.parametrize("name", READERS)
def test_reader_reads_its_valid_seed_input(tmp_path, name):
    """The mutations start from a valid file, so truncations and flips explore real structure."""
    valid, read = _readers(tmp_path)[name]
    assert read(_write(tmp_path / "valid", valid)) is not None


@pytest.mark.parametrize("seed, name", list(enumerate(READERS)))
def test_reader_gives_a_result_or_a_data_error(tmp_path, seed, name):
    valid, read = _readers(tmp_path)[name]
    outcomes = {"result": 0, "DataError": 0}
    for case, data in enumerate(_mutations(valid, seed)):
        path = _write(tmp_path / f"{name}_{case}", data)
        try:
            read(path)
            outcomes["result"] += 1
        except DataError:
            outcomes["DataError"] += 1
        except Exception as error:  # the bug this test looks for: report the input that caused it
            pytest.fail(f"{name} case {case}: {type(error).__name__}: {error}; input {data!r}")
    # Both outcomes occur, so the fuzzing reaches past the first check; plain text lines accept any bytes
    # (Latin-1 decodes every byte), so for them every case is a result.
    assert outcomes["result"] > 0, outcomes
    assert (outcomes["DataError"] == 0) == (name in ACCEPT_ANY_BYTES), outcomes

